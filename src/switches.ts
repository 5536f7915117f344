// On/off switches for the data path's techniques, read from the environment once when
// the module that uses them loads (so the JIT sees a constant). Each exists so that a benchmark
// can run the same build with a technique on and off; all default to on.
//
//   WONTUN_WIDE_CSUM=0          checksums sum bytes one at a time (checksum.ts) instead of
//                               32-bit words through aligned typed-array views
//   WONTUN_TRUST_INNER_CSUM=0   the coalescer verifies every TCP (and IPv4 header) checksum
//                               before gluing segments (coalesce.ts); on, it trusts them, since
//                               WireGuard's Poly1305 tag already authenticated every byte
//   WONTUN_TUN_WRITEV=0         a super-packet is copied together before its write to the TUN
//                               (tun-kernel.ts) instead of written with writev(2) from where its
//                               segments were decrypted
//   WONTUN_LINGER=0             the device loop visits Bun's event loop right after a round that
//                               did work instead of first waiting up to 1 ms for the answer
//                               (device.ts: what an isolated packet such as a ping pays)
//   WONTUN_TUN_STEERING=0       with several data-path threads, the kernel's default picks a
//                               packet's TUN queue (a flow follows its peer's receiving thread)
//                               instead of the flow's hash (thread-pool.ts, tun-steering.ts)

/** The values a switch accepts, in any case; anything else (a typo) leaves the default. */
const ON = new Set(["1", "on", "true", "yes"]);
const OFF = new Set(["0", "off", "false", "no"]);

/**
 * The switch `name` from `env`: "1"/"on"/"true"/"yes" or "0"/"off"/"false"/"no" in any case;
 * unset, empty or anything else gives `fallback`.
 */
export function envSwitch(name: string, fallback: boolean, env: Record<string, string | undefined> = process.env): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === "") return fallback;
  if (ON.has(raw)) return true;
  if (OFF.has(raw)) return false;
  return fallback;
}

export const WIDE_CSUM_ENV = "WONTUN_WIDE_CSUM";
export const TRUST_INNER_CSUM_ENV = "WONTUN_TRUST_INNER_CSUM";
export const TUN_WRITEV_ENV = "WONTUN_TUN_WRITEV";
export const LINGER_ENV = "WONTUN_LINGER";
export const TUN_STEERING_ENV = "WONTUN_TUN_STEERING";
