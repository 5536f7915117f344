// Peer endpoints written as hostnames, resolved without ever holding up the tunnel. The daemon
// applies IP-literal endpoints at once; this resolves each name in the background (getaddrinfo runs
// on a thread pool, so the device loop never waits), retries a name that does not resolve with
// backoff until it does, and re-resolves a name whose peer has had no handshake for a while, as
// wireguard-tools' reresolve-dns does (a dynamic-DNS server that moved). Every result goes in
// through the operations API as an update_only endpoint change, so a peer removed meanwhile
// (`wg set … remove`) is not brought back.
import { lookup as dnsLookup } from "node:dns/promises";
import { formatIp, parseIp } from "../net/ip.ts";
import type { Endpoint } from "../net/endpoint.ts";
import { encodeKey } from "../crypto/keys.ts";
import { peerLabel, type PeerConfig } from "../config/model.ts";
import type { Logger } from "../log.ts";
import type { DeviceChange, DeviceStatus } from "../control/model.ts";

/** Timers and wall-clock time, injectable so the schedule can be tested without waiting. */
export interface ResolverClock {
  /** Wall-clock ms (handshake times are wall-clock). */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const REAL_CLOCK: ResolverClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    // Never what keeps the process alive: the device loop is, and after stop() nothing is.
    (t as { unref?: () => void }).unref?.();
    return t;
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** The name's address as text ("192.0.2.1", "2001:db8::1"); rejects when it does not resolve. */
export type HostLookup = (host: string) => Promise<string>;

const systemLookup: HostLookup = async (host) => (await dnsLookup(host)).address;

export interface EndpointResolverOptions {
  operations: { apply(change: DeviceChange): void; status(): DeviceStatus };
  log: Logger;
  lookup?: HostLookup;
  clock?: ResolverClock;
  /** One lookup's limit: a hung name server must not hold the retries (default 5 s). */
  attemptTimeoutMs?: number;
  /** Backoff after a failed attempt: first, doubling up to max (defaults 1 s, 60 s). */
  firstRetryMs?: number;
  maxRetryMs?: number;
  /** reresolve-dns's rule: a peer whose latest handshake is older than this is re-resolved (135 s). */
  staleHandshakeMs?: number;
  /** How often resolved peers are checked against that rule (default 30 s). */
  recheckMs?: number;
}

/** A peer whose endpoint is a name, as the daemon hands it over. */
export interface NamedEndpoint {
  publicKey: Uint8Array | null;
  name: string;
  host: string;
  port: number;
}

interface Tracked {
  target: NamedEndpoint;
  label: string;
  /** Failed attempts in a row (sets the next backoff). */
  failures: number;
  timer: unknown;
  /** Bumped when the peer is dropped or its endpoint changes: late lookup results are ignored. */
  generation: number;
  resolved: Endpoint | null;
}

/** The peers of a config whose endpoint is a hostname (IP literals need no resolver). */
export function namedEndpoints(peers: readonly PeerConfig[]): NamedEndpoint[] {
  const out: NamedEndpoint[] = [];
  for (const peer of peers) {
    const ep = peer.endpoint;
    if (ep && !parseIp(ep.host)) out.push({ publicKey: peer.publicKey, name: peer.name, host: ep.host, port: ep.port });
  }
  return out;
}

/** An EndpointResolver for changeFromConfig/reloadChange that answers IP literals only, never waiting. */
export function literalEndpoint(ep: { host: string; port: number }): Endpoint | null {
  const address = parseIp(ep.host);
  return address ? { address, port: ep.port } : null;
}

/**
 * One lookup of `host`, limited to `timeoutMs`: the address, or null and why not in words
 * (shared with the mesh's own-endpoint resolver).
 */
export async function lookupOnce(
  lookup: HostLookup,
  clock: ResolverClock,
  host: string,
  timeoutMs: number,
): Promise<{ address: Uint8Array | null; why: string }> {
  let timeout: unknown = null;
  try {
    const timedOut = new Promise<never>((_, reject) => {
      timeout = clock.setTimeout(() => reject(new Error(`no answer in ${timeoutMs / 1000} s`)), timeoutMs);
    });
    const text = await Promise.race([lookup(host), timedOut]);
    const address = parseIp(text);
    return address ? { address, why: "" } : { address: null, why: `the resolver answered "${text}", not an address` };
  } catch (err) {
    return { address: null, why: (err as Error).message || String(err) };
  } finally {
    if (timeout !== null) clock.clearTimeout(timeout);
  }
}

export class EndpointResolver {
  private readonly peers = new Map<string, Tracked>();
  private readonly lookup: HostLookup;
  private readonly clock: ResolverClock;
  private readonly attemptTimeoutMs: number;
  private readonly firstRetryMs: number;
  private readonly maxRetryMs: number;
  private readonly staleHandshakeMs: number;
  private readonly recheckMs: number;
  private stopped = false;

  constructor(private readonly options: EndpointResolverOptions) {
    this.lookup = options.lookup ?? systemLookup;
    this.clock = options.clock ?? REAL_CLOCK;
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? 5_000;
    this.firstRetryMs = options.firstRetryMs ?? 1_000;
    this.maxRetryMs = options.maxRetryMs ?? 60_000;
    this.staleHandshakeMs = options.staleHandshakeMs ?? 135_000;
    this.recheckMs = options.recheckMs ?? 30_000;
  }

  /** How long to wait after the n-th failure in a row (n >= 1). */
  backoffMs(failures: number): number {
    return Math.min(this.maxRetryMs, this.firstRetryMs * 2 ** Math.min(failures - 1, 30));
  }

  /** Names are being resolved or watched (the answers and timers run on Bun's event loop). */
  get active(): boolean {
    return !this.stopped && this.peers.size > 0;
  }

  /**
   * Makes `targets` the peers to resolve. A peer already tracked with the same host:port keeps
   * its state (a reload that did not change it); a new or changed one is resolved now; peers no
   * longer named are dropped.
   */
  track(targets: readonly NamedEndpoint[]): void {
    if (this.stopped) return;
    const wanted = new Map(targets.map((t) => [keyOf(t), t]));
    for (const [key, tracked] of this.peers) {
      const next = wanted.get(key);
      if (!next || next.host !== tracked.target.host || next.port !== tracked.target.port) this.drop(key);
    }
    for (const [key, target] of wanted) {
      if (this.peers.has(key)) continue;
      const tracked: Tracked = { target, label: peerLabel(target), failures: 0, timer: null, generation: 0, resolved: null };
      this.peers.set(key, tracked);
      void this.attempt(key, tracked);
    }
  }

  /** Peers currently tracked (for tests and logs). */
  get size(): number {
    return this.peers.size;
  }

  /** Cancels every timer; lookups still running are left to finish and their results ignored. */
  stop(): void {
    this.stopped = true;
    for (const key of [...this.peers.keys()]) this.drop(key);
  }

  private drop(key: string): void {
    const tracked = this.peers.get(key);
    if (!tracked) return;
    tracked.generation++;
    if (tracked.timer !== null) this.clock.clearTimeout(tracked.timer);
    tracked.timer = null;
    this.peers.delete(key);
  }

  private schedule(tracked: Tracked, ms: number, run: () => void): void {
    if (tracked.timer !== null) this.clock.clearTimeout(tracked.timer);
    const generation = tracked.generation;
    tracked.timer = this.clock.setTimeout(() => {
      tracked.timer = null;
      if (!this.stopped && tracked.generation === generation) run();
    }, ms);
  }

  /** One lookup, limited by attemptTimeoutMs; then apply and recheck later, or back off. */
  private async attempt(key: string, tracked: Tracked): Promise<void> {
    const generation = tracked.generation;
    const { host, port } = tracked.target;
    const { address, why } = await lookupOnce(this.lookup, this.clock, host, this.attemptTimeoutMs);
    if (this.stopped || tracked.generation !== generation || this.peers.get(key) !== tracked) return;
    if (!address) {
      tracked.failures++;
      const wait = this.backoffMs(tracked.failures);
      // The first failure is worth a warning; the retries after it only at debug.
      const line = `peer ${tracked.label}: cannot resolve endpoint ${host} (${why}); retrying in ${wait / 1000} s`;
      if (tracked.failures === 1) this.options.log.warn(line);
      else this.options.log.debug(line);
      this.schedule(tracked, wait, () => void this.attempt(key, tracked));
      return;
    }
    tracked.failures = 0;
    this.applyEndpoint(tracked, { address, port });
    this.schedule(tracked, this.recheckMs, () => this.recheck(key, tracked));
  }

  private applyEndpoint(tracked: Tracked, endpoint: Endpoint): void {
    const { publicKey, name, host } = tracked.target;
    try {
      this.options.operations.apply({
        replacePeers: false,
        peers: [{ publicKey, name, remove: false, updateOnly: true, replaceAllowedIps: false, allowedIps: [], endpoint }],
      });
    } catch (err) {
      this.options.log.warn(`peer ${tracked.label}: endpoint ${host} not applied: ${(err as Error).message}`);
      return;
    }
    const text = `${endpoint.address.length === 16 ? `[${formatIp(endpoint.address)}]` : formatIp(endpoint.address)}:${endpoint.port}`;
    const before = tracked.resolved;
    if (!before) this.options.log.info(`peer ${tracked.label}: endpoint ${host} resolved to ${text}`);
    else if (formatIp(before.address) !== formatIp(endpoint.address)) this.options.log.info(`peer ${tracked.label}: endpoint ${host} now resolves to ${text}`);
    tracked.resolved = endpoint;
  }

  /** reresolve-dns's rule: no handshake within staleHandshakeMs (or none ever) → resolve again. */
  private recheck(key: string, tracked: Tracked): void {
    const status = this.options.operations.status().peers.find((p) => keyOf(p) === key);
    const lastMs = status ? status.lastHandshake.sec * 1000 + status.lastHandshake.nsec / 1e6 : 0;
    if (status && lastMs > 0 && this.clock.now() - lastMs <= this.staleHandshakeMs) {
      this.schedule(tracked, this.recheckMs, () => this.recheck(key, tracked));
      return;
    }
    if (status && lastMs > 0) this.options.log.debug(`peer ${tracked.label}: no handshake for ${Math.round((this.clock.now() - lastMs) / 1000)} s; resolving ${tracked.target.host} again`);
    void this.attempt(key, tracked);
  }
}

/** A peer's identity outside: base64 public key (WireGuard) or name (wontun). */
function keyOf(peer: { publicKey: Uint8Array | null; name: string }): string {
  return peer.publicKey ? `k:${encodeKey(peer.publicKey)}` : `n:${peer.name}`;
}
