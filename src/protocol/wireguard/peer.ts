// One WireGuard peer's state: keys, the handshake in flight, and wireguard-go's timers as
// absolute deadlines (Infinity = not armed). The timer methods are named for the events that
// arm or disarm them, as in the WireGuard paper's timer table.
import {
  KEEPALIVE_TIMEOUT,
  REKEY_TIMEOUT,
  REKEY_TIMEOUT_JITTER,
  ZERO_KEYS_AFTER,
} from "./constants.ts";
import { CookieJar } from "./cookie.ts";
import type { Keypair } from "./keypair.ts";
import type { IKInitiator } from "./noise.ts";
import type { PeerId } from "../tunnel.ts";

const OFF = Number.POSITIVE_INFINITY;

/** Our initiation in flight, waiting for its response. */
export class PendingHandshake {
  constructor(
    readonly peer: WgPeer,
    readonly localIndex: number,
    readonly noise: IKInitiator,
  ) {}
}

export class WgPeer {
  readonly cookies: CookieJar;
  /** 32 zero bytes when none (Noise mixes it in either way). */
  presharedKey: Uint8Array;
  persistentKeepaliveMs: number;
  hasEndpoint = false;

  current: Keypair | null = null;
  previous: Keypair | null = null;
  /** Responder's new keypair, until the initiator's first packet confirms it. */
  next: Keypair | null = null;
  pending: PendingHandshake | null = null;
  /** DH(our static, this peer's static): undefined until first needed, null if degenerate. */
  staticStatic: Uint8Array | null | undefined = undefined;

  /** Greatest TAI64N timestamp seen in an initiation from this peer (replay protection). */
  lastTimestamp: Uint8Array | null = null;
  lastInitiationConsumedAt = Number.NEGATIVE_INFINITY;
  lastHandshakeSentAt = Number.NEGATIVE_INFINITY;
  /** Wall-clock ms of the last completed handshake, for status output; 0 = never. */
  lastHandshakeWallTime = 0;
  handshakeAttempts = 0;

  retransmitAt = OFF;
  sendKeepaliveAt = OFF;
  needAnotherKeepalive = false;
  newHandshakeAt = OFF;
  zeroKeysAt = OFF;
  persistentKeepaliveAt = OFF;
  deadline = OFF;

  constructor(
    readonly id: PeerId,
    readonly publicKey: Uint8Array,
    presharedKey: Uint8Array,
    persistentKeepaliveMs: number,
    private readonly jitter: () => number,
  ) {
    this.presharedKey = presharedKey;
    this.persistentKeepaliveMs = persistentKeepaliveMs;
    this.cookies = new CookieJar(publicKey);
  }

  /** A new persistent keepalive interval (0 = off), counted from now. */
  setPersistentKeepalive(ms: number, now: number): void {
    this.persistentKeepaliveMs = ms;
    this.persistentKeepaliveAt = ms > 0 ? now + ms : OFF;
    this.updateDeadline();
  }

  /**
   * Our static key changed: the sessions were made with the old one, so none may send any more
   * (the next packet starts a handshake); they still open what the peer sends until replaced.
   */
  expireSending(): void {
    this.current?.counters.expire();
    this.next?.counters.expire();
    this.lastHandshakeSentAt = Number.NEGATIVE_INFINITY;
  }

  // ---- timer events (wireguard-go's timers.go) -----------------------------------------------

  /** Sent a data packet (not a keepalive): expect an answer within 15 s. */
  dataSent(now: number): void {
    if (this.newHandshakeAt === OFF) {
      this.newHandshakeAt = now + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + this.jitter();
      if (this.newHandshakeAt < this.deadline) this.deadline = this.newHandshakeAt;
    }
  }

  /** Received a data packet: owe the peer a keepalive unless we send something first. */
  dataReceived(now: number): void {
    if (this.sendKeepaliveAt === OFF) {
      this.sendKeepaliveAt = now + KEEPALIVE_TIMEOUT;
      if (this.sendKeepaliveAt < this.deadline) this.deadline = this.sendKeepaliveAt;
    } else {
      this.needAnotherKeepalive = true;
    }
  }

  /** Sent any authenticated packet: no keepalive owed any more. */
  authenticatedSent(): void {
    this.sendKeepaliveAt = OFF;
  }

  /** Received any authenticated packet: the peer is alive. */
  authenticatedReceived(): void {
    this.newHandshakeAt = OFF;
  }

  /** Sent or received any authenticated packet: push the persistent keepalive back. */
  authenticatedTraversal(now: number): void {
    if (this.persistentKeepaliveMs > 0) {
      this.persistentKeepaliveAt = now + this.persistentKeepaliveMs;
      if (this.persistentKeepaliveAt < this.deadline) this.deadline = this.persistentKeepaliveAt;
    }
  }

  handshakeInitiated(now: number): void {
    this.retransmitAt = now + REKEY_TIMEOUT + this.jitter();
    this.updateDeadline();
  }

  handshakeComplete(wallNow: number): void {
    this.retransmitAt = OFF;
    this.handshakeAttempts = 0;
    this.lastHandshakeWallTime = wallNow;
    this.updateDeadline();
  }

  sessionDerived(now: number): void {
    this.zeroKeysAt = now + ZERO_KEYS_AFTER;
    this.updateDeadline();
  }

  updateDeadline(): void {
    this.deadline = Math.min(
      this.retransmitAt,
      this.sendKeepaliveAt,
      this.newHandshakeAt,
      this.zeroKeysAt,
      this.persistentKeepaliveAt,
    );
  }

  static readonly jitter = (random: () => number) => () => Math.floor(random() * REKEY_TIMEOUT_JITTER);
}
