// The session state every data-path thread shares, in one SharedArrayBuffer: per keypair its keys,
// its send-counter blocks and its replay window; per peer the keypair it sends with and what the
// threads did (for the handshake thread's timers and the transfer counters).
//
// One thread (the main one) runs the handshakes: it alone publishes and retires keypairs. Every
// thread seals and opens. The rules that keep that safe:
// - A keypair slot has a generation: odd while the slot holds a live keypair, even while it is
//   empty or being rewritten. Publishing writes the fields, then makes the generation odd;
//   retiring makes it even first. A thread that read the fields under generation g uses them only
//   while the generation is still g (a seqlock; Atomics are sequentially consistent).
// - Send counters are handed out in blocks of COUNTER_BLOCK by a compare-and-swap on the slot's
//   highest block, and a block is used only if the generation is unchanged after it was taken.
//   Retiring bumps the generation before the block count is reset, so a block taken from a reset
//   count is never used with the old key: no (key, counter) pair is ever sent twice.
// - A thread whose block fell STALE_BLOCKS behind the newest takes a fresh one, so a quiet
//   thread's counters stay inside the receiver's replay window while a busy one runs ahead.
// - The replay window is one per keypair (SHARED_WINDOW_SIZE wide), behind a spinlock held for
//   a few dozen instructions.
import { MAX_COUNTER } from "../protocol/wireguard/replay.ts";

/** Most data-path threads a tunnel may have. */
export const MAX_THREADS = 16;
/** Counters per block (a power of two: the receiver's steering shifts by 8). */
export const COUNTER_BLOCK = 256;
/**
 * A thread drops the rest of its block once other threads took this many blocks after it: its
 * counters would otherwise fall behind the peer's replay window (8128 below the highest seen)
 * while a busy thread runs ahead, and a quiet thread's packets would all be refused as old.
 */
export const STALE_BLOCKS = 8;
/** Low bits of a local index that name its keypair slot; the high bits are random. */
const SLOT_BITS = 16;
const SLOT_MASK = (1 << SLOT_BITS) - 1;

// Keypair slot, in Int32 words.
const K_GEN = 0;
const K_LOCAL = 1;
const K_REMOTE = 2;
const K_PEER = 3;
const K_FLAGS = 4;
const K_BLOCK = 5; // highest block handed out (-1: none)
const K_LOCK = 6; // replay window lock
const K_EMPTY = 7; // replay window has seen nothing yet
const K_LAST_F64 = 8; // replay window's highest counter (a float64 over words 8-9)
const K_CREATED_F64 = 10; // creation time (words 10-11)
const K_SEND_KEY = 12; // 32 bytes: words 12-19
const K_RECV_KEY = 20; // 32 bytes: words 20-27
const K_RING = 32; // replay bitmap: RING_WORDS words
const RING_WORDS = 1024;
const RING_BITS = RING_WORDS * 32;
/**
 * Largest accepted distance below the highest counter seen: 4 times the 8128 of the kernel and
 * wireguard-go. One thread sees its peer's packets in order; several threads open them out of
 * order by however long one of them was off its core with a batch in hand (tens of ms on a busy
 * machine, thousands of packets at Gbit/s), and a narrow window turns that into drops. Replay
 * protection is as exact as with the narrow window: each counter is accepted at most once.
 */
export const SHARED_WINDOW_SIZE = RING_BITS - 64;
const K_STRIDE = K_RING + RING_WORDS;

/** Keypair flags. */
export const KF_INITIATOR = 1;
/** Our static key changed: this keypair may still open, but not send. */
export const KF_EXPIRED = 2;
/** The responder's keypair the initiator has not confirmed yet. */
export const KF_NEXT = 4;

// Peer record, in Int32 words.
const P_CURRENT = 0; // keypair slot it sends with (-1: none)
const P_WANT_HANDSHAKE = 1;
const P_CONFIRM = 2; // keypair slot + 1 that a thread opened while it was "next" (0: none)
const P_HELD = 3; // packets handed to the main thread for lack of a session
const P_STRIDE = 4;

/** A peer with no traffic for this long is quiet (see noteActivity). */
export const QUIET_MS = 1000;

// Peer activity: per thread and peer one 64-byte line of float64s (a thread writes only its own
// lines, several times per packet: shared lines would bounce between cores), when the thread
// last sent/received (ms on the shared clock) and the datagram bytes it moved.
export const A_DATA_SENT = 0;
export const A_DATA_RECEIVED = 1;
export const A_AUTH_SENT = 2;
export const A_AUTH_RECEIVED = 3;
const A_RX = 4;
const A_TX = 5;
const A_LINE = 8;

/** What a data-path thread counts as dropped, published for `wontun show` (see publishDrops). */
export const THREAD_DROP_NAMES = [
  "unknownIndex", "expiredKeypair", "decryptFailed", "replayedData", "malformed", "badInnerPacket", "noSession",
  "noRoute", "sourceRejected", "notIp", "tunWriteErrors", "udpErrors", "offloadErrors",
] as const;
const DROP_STRIDE = 16;

export interface SharedSessionsLayout {
  buffer: SharedArrayBuffer;
  peerCapacity: number;
}

export class SharedSessions {
  readonly buffer: SharedArrayBuffer;
  readonly peerCapacity: number;
  readonly keypairCapacity: number;
  private readonly kp: Int32Array;
  private readonly kpF64: Float64Array;
  private readonly kpBytes: Uint8Array;
  private readonly peers: Int32Array;
  private readonly activity: Float64Array;
  private readonly threadDrops: Float64Array;

  /** Counters this thread refused as older than the window (the rest of its refusals were repeats). */
  tooOld = 0;

  // Main thread only: free slots.
  private freeKeypairs: number[] | null = null;
  private freePeers: number[] | null = null;
  private readonly peerSlotById = new Map<number, number>();

  /** A new table (main thread), or a view of an existing one (a data-path thread). */
  constructor(layout?: SharedSessionsLayout, peerCapacity = 4096) {
    this.peerCapacity = layout?.peerCapacity ?? peerCapacity;
    // A peer has at most 3 keypairs and 1 handshake in flight, each with an index.
    this.keypairCapacity = Math.min(this.peerCapacity * 4, 1 << SLOT_BITS);
    const kpBytes = this.keypairCapacity * K_STRIDE * 4;
    const peerBytes = this.peerCapacity * P_STRIDE * 4;
    const activityBytes = MAX_THREADS * this.peerCapacity * A_LINE * 8;
    const dropBytes = MAX_THREADS * DROP_STRIDE * 8;
    this.buffer = layout?.buffer ?? new SharedArrayBuffer(kpBytes + activityBytes + dropBytes + peerBytes);
    this.kp = new Int32Array(this.buffer, 0, this.keypairCapacity * K_STRIDE);
    this.kpF64 = new Float64Array(this.buffer, 0, kpBytes / 8);
    this.kpBytes = new Uint8Array(this.buffer, 0, kpBytes);
    this.activity = new Float64Array(this.buffer, kpBytes, activityBytes / 8);
    this.threadDrops = new Float64Array(this.buffer, kpBytes + activityBytes, MAX_THREADS * DROP_STRIDE);
    this.peers = new Int32Array(this.buffer, kpBytes + activityBytes + dropBytes, this.peerCapacity * P_STRIDE);
    if (layout === undefined) {
      this.freeKeypairs = [];
      for (let s = this.keypairCapacity - 1; s >= 0; s--) this.freeKeypairs.push(s);
      this.freePeers = [];
      for (let s = this.peerCapacity - 1; s >= 0; s--) this.freePeers.push(s);
    }
  }

  get layout(): SharedSessionsLayout {
    return { buffer: this.buffer, peerCapacity: this.peerCapacity };
  }

  // ---- main thread: peers ----------------------------------------------------------------

  /** The peer's record slot, taken on first use. */
  peerSlot(id: number): number {
    let slot = this.peerSlotById.get(id);
    if (slot !== undefined) return slot;
    slot = this.freePeers!.pop();
    if (slot === undefined) throw new Error(`more than ${this.peerCapacity} peers in multi-threaded mode`);
    const p = slot * P_STRIDE;
    Atomics.store(this.peers, p + P_CURRENT, -1);
    Atomics.store(this.peers, p + P_WANT_HANDSHAKE, 0);
    Atomics.store(this.peers, p + P_CONFIRM, 0);
    Atomics.store(this.peers, p + P_HELD, 0);
    for (let t = 0; t < MAX_THREADS; t++) this.activity.fill(0, this.line(t, slot), this.line(t, slot) + A_LINE);
    this.peerSlotById.set(id, slot);
    return slot;
  }

  /** Forgets a removed peer (its keypairs were retired first). */
  releasePeer(id: number): void {
    const slot = this.peerSlotById.get(id);
    if (slot === undefined) return;
    Atomics.store(this.peers, slot * P_STRIDE + P_CURRENT, -1);
    this.peerSlotById.delete(id);
    this.freePeers!.push(slot);
  }

  /** The keypair slot the peer sends with, or -1. */
  setCurrent(peerSlot: number, keypairSlot: number): void {
    Atomics.store(this.peers, peerSlot * P_STRIDE + P_CURRENT, keypairSlot);
  }

  // ---- main thread: keypairs ---------------------------------------------------------------

  /** A new local index whose low bits name a free keypair slot; `random16` fills the rest. */
  allocateIndex(random16: number): number {
    const slot = this.freeKeypairs!.pop();
    if (slot === undefined) throw new Error(`more than ${this.keypairCapacity} sessions in multi-threaded mode`);
    return (((random16 & 0xffff) << SLOT_BITS) | slot) >>> 0;
  }

  /** The index (and its keypair, if published) is gone: the slot is free again. */
  releaseIndex(index: number): void {
    const slot = index & SLOT_MASK;
    this.unpublish(slot);
    this.freeKeypairs!.push(slot);
  }

  /** Makes the keypair of `index` usable by every thread. */
  publish(
    index: number,
    peerSlot: number,
    remoteIndex: number,
    sendKey: Uint8Array,
    recvKey: Uint8Array,
    flags: number,
    createdAt: number,
  ): void {
    const slot = index & SLOT_MASK;
    const k = slot * K_STRIDE;
    const kp = this.kp;
    if ((Atomics.load(kp, k + K_GEN) & 1) === 1) this.unpublish(slot);
    kp[k + K_LOCAL] = index | 0;
    kp[k + K_REMOTE] = remoteIndex | 0;
    kp[k + K_PEER] = peerSlot;
    Atomics.store(kp, k + K_FLAGS, flags);
    // The generation is even here: a thread that takes a block from this reset count sees the
    // generation changed and drops the block.
    Atomics.store(kp, k + K_BLOCK, -1);
    kp.fill(0, k + K_RING, k + K_RING + RING_WORDS);
    kp[k + K_EMPTY] = 1;
    this.kpF64[(k + K_LAST_F64) / 2] = 0;
    this.kpF64[(k + K_CREATED_F64) / 2] = createdAt;
    this.kpBytes.set(sendKey, (k + K_SEND_KEY) * 4);
    this.kpBytes.set(recvKey, (k + K_RECV_KEY) * 4);
    Atomics.add(kp, k + K_GEN, 1); // odd: live
  }

  setFlag(index: number, flag: number, on: boolean): void {
    const k = (index & SLOT_MASK) * K_STRIDE;
    if (on) Atomics.or(this.kp, k + K_FLAGS, flag);
    else Atomics.and(this.kp, k + K_FLAGS, ~flag);
  }

  private unpublish(slot: number): void {
    const k = slot * K_STRIDE;
    if ((Atomics.load(this.kp, k + K_GEN) & 1) === 0) return;
    Atomics.add(this.kp, k + K_GEN, 1); // even: gone
    this.kpBytes.fill(0, (k + K_SEND_KEY) * 4, (k + K_RECV_KEY + 8) * 4);
  }

  // ---- any thread: reading keypairs --------------------------------------------------------

  /** The keypair slot of a live keypair with local index `index`, or -1. */
  slotOfIndex(index: number): number {
    const slot = index & SLOT_MASK;
    if (slot >= this.keypairCapacity) return -1;
    const k = slot * K_STRIDE;
    if ((Atomics.load(this.kp, k + K_GEN) & 1) === 0 || this.kp[k + K_LOCAL] !== (index | 0)) return -1;
    return slot;
  }

  generation(slot: number): number {
    return Atomics.load(this.kp, slot * K_STRIDE + K_GEN);
  }

  /** Generation g is live (odd). */
  static live(generation: number): boolean {
    return (generation & 1) === 1;
  }

  flags(slot: number): number {
    return Atomics.load(this.kp, slot * K_STRIDE + K_FLAGS);
  }

  remoteIndex(slot: number): number {
    return this.kp[slot * K_STRIDE + K_REMOTE] >>> 0;
  }

  peerSlotOf(slot: number): number {
    return this.kp[slot * K_STRIDE + K_PEER];
  }

  createdAt(slot: number): number {
    return this.kpF64[(slot * K_STRIDE + K_CREATED_F64) / 2];
  }

  /** Copies the keys of slot under `generation`; false if it changed meanwhile (copy unusable). */
  readKeys(slot: number, generation: number, sendKey: Uint8Array, recvKey: Uint8Array): boolean {
    const k = slot * K_STRIDE;
    sendKey.set(this.kpBytes.subarray((k + K_SEND_KEY) * 4, (k + K_SEND_KEY) * 4 + 32));
    recvKey.set(this.kpBytes.subarray((k + K_RECV_KEY) * 4, (k + K_RECV_KEY) * 4 + 32));
    return Atomics.load(this.kp, k + K_GEN) === generation;
  }

  /**
   * A block of counters on slot's keypair under `generation`: returns the block number (counters
   * block*COUNTER_BLOCK ... +COUNTER_BLOCK-1), or -1 if the keypair changed (the block must not
   * be used) or ran out of counters.
   */
  reserveBlock(slot: number, generation: number): number {
    const kp = this.kp;
    const block = Atomics.add(kp, slot * K_STRIDE + K_BLOCK, 1) + 1;
    if (block < 0 || block === 0x7fffffff) return -1; // 2^39 counters: never in a 3-minute session
    return Atomics.load(kp, slot * K_STRIDE + K_GEN) === generation ? block : -1;
  }

  /** The highest block handed out on slot's keypair (-1: none). */
  highestBlock(slot: number): number {
    return Atomics.load(this.kp, slot * K_STRIDE + K_BLOCK);
  }

  /**
   * The replay check of slot's keypair (RFC 6479 window, as ReplayWindow): true if `counter`
   * is new and inside the window, and then records it. Call only for authenticated counters.
   */
  acceptCounter(slot: number, counter: number): boolean {
    if (!Number.isSafeInteger(counter) || counter < 0 || counter > MAX_COUNTER) return false;
    const kp = this.kp;
    const k = slot * K_STRIDE;
    const lock = k + K_LOCK;
    while (Atomics.compareExchange(kp, lock, 0, 1) !== 0) {
      // Another thread holds it for a few dozen instructions.
    }
    try {
      const lastAt = (k + K_LAST_F64) / 2;
      const ring = k + K_RING;
      const block = Math.floor(counter / 32);
      if (kp[k + K_EMPTY] === 1) {
        kp[k + K_EMPTY] = 0;
        this.kpF64[lastAt] = counter;
      } else {
        const last = this.kpF64[lastAt];
        if (counter > last) {
          const current = Math.floor(last / 32);
          let diff = block - current;
          if (diff > RING_WORDS) diff = RING_WORDS;
          for (let i = 1; i <= diff; i++) kp[ring + ((current + i) % RING_WORDS)] = 0;
          this.kpF64[lastAt] = counter;
        } else if (last - counter > SHARED_WINDOW_SIZE) {
          this.tooOld++;
          return false;
        }
      }
      const word = ring + (block % RING_WORDS);
      const mask = 1 << (counter % 32);
      const old = kp[word];
      if ((old & mask) !== 0) return false;
      kp[word] = old | mask;
      return true;
    } finally {
      Atomics.store(kp, lock, 0);
    }
  }

  // ---- any thread: peers -------------------------------------------------------------------

  currentSlot(peerSlot: number): number {
    return Atomics.load(this.peers, peerSlot * P_STRIDE + P_CURRENT);
  }

  /** A thread wants a handshake (no usable keypair, or time to rekey); true if newly asked. */
  askHandshake(peerSlot: number): boolean {
    return Atomics.exchange(this.peers, peerSlot * P_STRIDE + P_WANT_HANDSHAKE, 1) === 0;
  }

  takeHandshakeRequest(peerSlot: number): boolean {
    return Atomics.exchange(this.peers, peerSlot * P_STRIDE + P_WANT_HANDSHAKE, 0) === 1;
  }

  /** A thread opened a packet with the peer's unconfirmed keypair; true if newly asked. */
  askConfirm(peerSlot: number, keypairSlot: number): boolean {
    return Atomics.compareExchange(this.peers, peerSlot * P_STRIDE + P_CONFIRM, 0, keypairSlot + 1) === 0;
  }

  /** The keypair slot a thread asked to confirm, or -1; clears the request. */
  takeConfirmRequest(peerSlot: number): number {
    return Atomics.exchange(this.peers, peerSlot * P_STRIDE + P_CONFIRM, 0) - 1;
  }

  /** Counts a packet handed to the main thread for lack of a session; false past `cap`. */
  countHeld(peerSlot: number, cap: number): boolean {
    return Atomics.add(this.peers, peerSlot * P_STRIDE + P_HELD, 1) < cap;
  }

  resetHeld(peerSlot: number): void {
    Atomics.store(this.peers, peerSlot * P_STRIDE + P_HELD, 0);
  }

  /**
   * Records that a thread sent or received (A_* field) at `now`. True if the last such event was
   * over QUIET_MS ago: the main thread, which sleeps while the tunnel is quiet, should be woken
   * to take up the peer's timers again.
   */
  noteActivity(thread: number, peerSlot: number, field: number, now: number): boolean {
    const at = this.line(thread, peerSlot) + field;
    const resumed = now - this.activity[at] > QUIET_MS;
    this.activity[at] = now;
    return resumed;
  }

  /** The latest time any thread recorded for the peer (A_* field). */
  lastActivity(peerSlot: number, field: number): number {
    let latest = 0;
    for (let t = 0; t < MAX_THREADS; t++) latest = Math.max(latest, this.activity[this.line(t, peerSlot) + field]);
    return latest;
  }

  addTransfer(thread: number, peerSlot: number, rxBytes: number, txBytes: number): void {
    const a = this.line(thread, peerSlot);
    if (rxBytes !== 0) this.activity[a + A_RX] += rxBytes;
    if (txBytes !== 0) this.activity[a + A_TX] += txBytes;
  }

  /** Bytes the threads from `firstThread` on moved for the peer. */
  transfer(peerSlot: number, firstThread = 0): { rxBytes: number; txBytes: number } {
    let rxBytes = 0;
    let txBytes = 0;
    for (let t = firstThread; t < MAX_THREADS; t++) {
      const a = this.line(t, peerSlot);
      rxBytes += this.activity[a + A_RX];
      txBytes += this.activity[a + A_TX];
    }
    return { rxBytes, txBytes };
  }

  private line(thread: number, peerSlot: number): number {
    return (thread * this.peerCapacity + peerSlot) * A_LINE;
  }

  /** A data-path thread's drop counters (named as THREAD_DROP_NAMES), as it last published them. */
  publishDrops(thread: number, counts: Record<string, number>): void {
    THREAD_DROP_NAMES.forEach((name, i) => (this.threadDrops[thread * DROP_STRIDE + i] = counts[name] ?? 0));
  }

  /** Drops over the threads from `firstThread` on, by name. */
  drops(firstThread: number): Record<string, number> {
    const out: Record<string, number> = {};
    THREAD_DROP_NAMES.forEach((name, i) => {
      let n = 0;
      for (let t = firstThread; t < MAX_THREADS; t++) n += this.threadDrops[t * DROP_STRIDE + i];
      out[name] = n;
    });
    return out;
  }

  /** Bytes thread `thread` moved over all peers (to show each thread carries traffic). */
  threadTransfer(thread: number): number {
    let total = 0;
    for (const slot of this.peerSlotById.values()) {
      const a = this.line(thread, slot);
      total += this.activity[a + A_RX] + this.activity[a + A_TX];
    }
    return total;
  }
}

