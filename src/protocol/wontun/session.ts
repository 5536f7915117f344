// One peer's side of the wontun handshake, with the timers the seed lacked. Pure logic: every
// method takes the time and returns which control message (if any) to send; the protocol turns
// that into bytes.
//
// States are the seed's: None -> HandshakeSent -> Connected on our Init/Response, and
// None|any -> HandshakeReceived -> Connected on their Init/first Data. Fixes, wire unchanged:
// - a lost Init is retransmitted with backoff (1 s doubling to 8 s, plus jitter) for 90 s;
// - an Init is accepted in every state, so a restarted peer is taken back at once;
// - a Response is accepted while we await one *or* after we answered their Init, so two peers
//   that initiate at the same time both end Connected (indices are static, nothing conflicts);
// - Data from a peer we lost track of (we restarted) is delivered and makes us handshake back;
// - data sent and nothing heard for 15 s starts a new handshake; a peer that sends us data
//   gets a keepalive after 10 s of silence from us, so a healthy link always answers.

export const enum HandshakeState {
  None = 0,
  HandshakeSent = 1,
  HandshakeReceived = 2,
  Connected = 3,
}

export const STATE_NAMES = ["none", "handshake-sent", "handshake-received", "connected"];

/** What the session wants sent to its peer. */
export const enum Control {
  Nothing = 0,
  Init = 1,
  Response = 2,
  Keepalive = 3,
}

export const RETRY_BASE_MS = 1000;
export const RETRY_MAX_MS = 8000;
export const RETRY_JITTER_MS = 333;
export const HANDSHAKE_GIVE_UP_MS = 90_000;
export const KEEPALIVE_AFTER_MS = 10_000;
export const NEW_HANDSHAKE_AFTER_MS = 15_000;

const NEVER = Number.POSITIVE_INFINITY;

export class WontunSession {
  state = HandshakeState.None;
  /** The index the peer gave us for itself, learnt in the handshake; -1 until then. */
  remoteIndex = -1;
  /** The device knows where to send (configured or learnt endpoint). */
  hasEndpoint = false;
  /** When tick() next has something to do. */
  deadline = NEVER;

  lastHandshakeAt = -1;
  lastReceivedAt = -1;
  lastSentAt = -1;
  private handshakeStartedAt = -1;
  private retries = 0;
  private retryAt = NEVER;
  /** Set when we received a packet with payload and have not sent anything since. */
  private keepaliveAt = NEVER;
  /** First data sent since we last heard from the peer. */
  private unansweredSince = NEVER;

  /** Wall-clock ms when the session last became Connected (the protocol sets it); 0 = never. */
  lastHandshakeWallMs = 0;

  constructor(
    readonly localIndex: number,
    public persistentKeepaliveMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  /** A new keepalive interval (0 = off); the session goes on. */
  setPersistentKeepalive(ms: number): void {
    this.persistentKeepaliveMs = ms;
    this.updateDeadline();
  }

  get canSend(): boolean {
    return this.remoteIndex >= 0;
  }

  endpointKnown(now: number): Control {
    this.hasEndpoint = true;
    if (this.state === HandshakeState.None && this.remoteIndex < 0) return this.beginHandshake(now);
    this.updateDeadline();
    return Control.Nothing;
  }

  /** Their HandshakeInit, telling us the index they gave us. Answer with a Response. */
  onInit(assignedIdx: number, now: number): Control {
    this.remoteIndex = assignedIdx;
    this.state = HandshakeState.HandshakeReceived;
    this.stopRetrying();
    this.heard(now);
    this.lastHandshakeAt = now;
    this.updateDeadline();
    return Control.Response;
  }

  /** A HandshakeResponse only answers an Init of ours, possibly crossing theirs. */
  expectsResponse(): boolean {
    return this.state === HandshakeState.HandshakeSent || this.state === HandshakeState.HandshakeReceived;
  }

  /** Their HandshakeResponse to an Init of ours (or a crossing one). Confirm with a keepalive. */
  onResponse(assignedIdx: number, now: number): Control {
    this.remoteIndex = assignedIdx;
    this.state = HandshakeState.Connected;
    this.stopRetrying();
    this.heard(now);
    this.lastHandshakeAt = now;
    this.updateDeadline();
    return Control.Keepalive;
  }

  /** A Data message (empty = keepalive) addressed to our index for this peer. */
  onData(hasPayload: boolean, now: number): Control {
    this.heard(now);
    if (this.state === HandshakeState.HandshakeReceived) this.state = HandshakeState.Connected;
    if (hasPayload && this.keepaliveAt === NEVER) this.keepaliveAt = now + KEEPALIVE_AFTER_MS;
    if (this.remoteIndex < 0 && this.hasEndpoint && this.state === HandshakeState.None) {
      return this.beginHandshake(now); // we restarted; they still know us: handshake back
    }
    this.updateDeadline();
    return Control.Nothing;
  }

  /**
   * An outgoing packet (or keepalive) is about to be sent if canSend. Returns Init when the
   * packet has to wait for a handshake that this starts.
   */
  onSend(isData: boolean, now: number): Control {
    if (this.remoteIndex < 0) {
      if (this.state !== HandshakeState.HandshakeSent && this.hasEndpoint) return this.beginHandshake(now);
      return Control.Nothing;
    }
    this.lastSentAt = now;
    this.keepaliveAt = NEVER;
    if (isData && this.unansweredSince === NEVER) this.unansweredSince = now;
    // Only ever moves deadlines later, except unansweredSince, which is checked here cheaply.
    if (this.unansweredSince + NEW_HANDSHAKE_AFTER_MS < this.deadline) this.updateDeadline();
    return Control.Nothing;
  }

  /** A control message built by the protocol went out. */
  sent(now: number): void {
    this.lastSentAt = now;
    this.keepaliveAt = NEVER;
    this.updateDeadline();
  }

  /**
   * Runs whichever timer is due (one per call: call again while deadline <= now). Every branch
   * moves its own deadline past `now`, so a due timer can never spin.
   */
  tick(now: number): Control {
    if (now < this.deadline) return Control.Nothing;
    let control = Control.Nothing;
    if (this.state === HandshakeState.HandshakeSent) {
      if (now >= this.retryAt) {
        if (now - this.handshakeStartedAt >= HANDSHAKE_GIVE_UP_MS) {
          // Stop until traffic or a persistent keepalive asks again.
          this.state = HandshakeState.None;
          this.stopRetrying();
          this.unansweredSince = NEVER;
        } else {
          this.retries++;
          this.retryAt = now + this.retryDelay();
          control = Control.Init;
        }
      } else if (this.canSend && now >= this.keepaliveAt) {
        control = Control.Keepalive;
      } else if (this.pkDue(now)) {
        control = Control.Keepalive;
      }
    } else if (this.hasEndpoint && now >= this.unansweredSince + NEW_HANDSHAKE_AFTER_MS) {
      this.unansweredSince = NEVER;
      control = this.beginHandshake(now);
    } else if (this.canSend && now >= this.keepaliveAt) {
      control = Control.Keepalive;
    } else if (this.pkDue(now)) {
      control = this.canSend ? Control.Keepalive : this.beginHandshake(now);
    }
    if (control === Control.Keepalive) {
      this.lastSentAt = now;
      this.keepaliveAt = NEVER;
    }
    this.updateDeadline();
    return control;
  }

  private pkDue(now: number): boolean {
    return this.pkArmed() && now >= this.persistentKeepaliveDue();
  }

  /** Persistent keepalive applies once we can reach the peer, and is not needed mid-handshake. */
  private pkArmed(): boolean {
    return (
      this.persistentKeepaliveMs > 0 &&
      this.hasEndpoint &&
      (this.canSend || this.state !== HandshakeState.HandshakeSent)
    );
  }

  private persistentKeepaliveDue(): number {
    return this.lastSentAt < 0 ? 0 : this.lastSentAt + this.persistentKeepaliveMs;
  }

  private beginHandshake(now: number): Control {
    this.state = HandshakeState.HandshakeSent;
    this.handshakeStartedAt = now;
    this.retries = 0;
    this.retryAt = now + this.retryDelay();
    this.updateDeadline();
    return Control.Init;
  }

  private retryDelay(): number {
    return Math.min(RETRY_BASE_MS * 2 ** this.retries, RETRY_MAX_MS) + this.random() * RETRY_JITTER_MS;
  }

  private stopRetrying(): void {
    this.retryAt = NEVER;
    this.handshakeStartedAt = -1;
    this.retries = 0;
  }

  private heard(now: number): void {
    this.lastReceivedAt = now;
    this.unansweredSince = NEVER;
  }

  private updateDeadline(): void {
    const handshaking = this.state === HandshakeState.HandshakeSent;
    let d = handshaking ? this.retryAt : NEVER;
    if (this.hasEndpoint && !handshaking) d = Math.min(d, this.unansweredSince + NEW_HANDSHAKE_AFTER_MS);
    if (this.canSend) d = Math.min(d, this.keepaliveAt);
    if (this.pkArmed()) d = Math.min(d, this.persistentKeepaliveDue());
    this.deadline = d;
  }
}
