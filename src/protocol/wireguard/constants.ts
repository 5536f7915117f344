// WireGuard's protocol constants (from the WireGuard paper and wireguard-go). Times in ms.

export const CONSTRUCTION = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
export const IDENTIFIER = new TextEncoder().encode("WireGuard v1 zx2c4 Jason@zx2c4.com");
export const LABEL_MAC1 = new TextEncoder().encode("mac1----");
export const LABEL_COOKIE = new TextEncoder().encode("cookie--");

export const REKEY_AFTER_MESSAGES = 2 ** 60;
export const REKEY_AFTER_TIME = 120_000;
export const REJECT_AFTER_TIME = 180_000;
export const REKEY_ATTEMPT_TIME = 90_000;
export const REKEY_TIMEOUT = 5_000;
export const REKEY_TIMEOUT_JITTER = 334;
export const KEEPALIVE_TIMEOUT = 10_000;
export const COOKIE_REFRESH_TIME = 120_000;
/** Initiations from one peer faster than this are floods (wireguard-go: 50 per second). */
export const HANDSHAKE_INITIATION_RATE = 20;
/** Handshake attempts before giving up: REKEY_ATTEMPT_TIME / REKEY_TIMEOUT. */
export const MAX_HANDSHAKE_ATTEMPTS = REKEY_ATTEMPT_TIME / REKEY_TIMEOUT;
/** Keys are wiped after three times REJECT_AFTER_TIME without a new handshake. */
export const ZERO_KEYS_AFTER = 3 * REJECT_AFTER_TIME;
/** A receiving initiator renews its session this long before the responder's keys expire. */
export const REKEY_ON_RECEIVE_AFTER = REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT;

/** More handshake messages than this per second puts the responder "under load": cookies. */
export const UNDER_LOAD_HANDSHAKES_PER_SECOND = 100;
/** How long "under load" lasts after the rate falls back. */
export const UNDER_LOAD_HOLD = 1_000;
