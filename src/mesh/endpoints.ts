// This node's own [Mesh] Endpoint values as the addresses it publishes. A name (Endpoint =
// vpn.example.org:51820) is resolved here, by the node it names, and the record carries the
// address: records stay IP literals, so the other nodes need no resolver and their data plane
// never waits for DNS (a record is checked and applied the moment it arrives). The name is
// resolved again every `intervalMs` (the agent uses the lease TTL, at most 30 s); when its
// answer changes, onChange() has the record published again, and the others move the peer's
// endpoint in place. Lookups run off the device loop (getaddrinfo on a thread pool), each limited
// in time; a name that does not resolve is left out of the record (or keeps its last address)
// and is retried with backoff, so it never holds up the start.
import { lookup as dnsLookup } from "node:dns/promises";
import { formatIp, parseIp, specialAddress } from "../net/ip.ts";
import type { Logger } from "../log.ts";
import { type HostLookup, lookupOnce, REAL_CLOCK, type ResolverClock } from "../daemon/endpoint-resolver.ts";

export interface HostPort {
  host: string;
  port: number;
}

export interface OwnEndpointsOptions {
  log: Logger;
  /** Called when the list to publish changed (a name resolved, or its answer changed). */
  onChange: () => void;
  /** How often a resolved name is looked up again. */
  intervalMs: number;
  lookup?: HostLookup;
  clock?: ResolverClock;
  /** One lookup's limit (default 5 s). */
  attemptTimeoutMs?: number;
  /** First retry after a failure, doubling up to intervalMs (default 1 s). */
  firstRetryMs?: number;
}

interface Name {
  host: string;
  /** The last good answer ("192.0.2.1", "2001:db8::1"), or null before the first. */
  address: string | null;
  failures: number;
  /** True once the first lookup has finished, whatever its result. */
  answered: boolean;
  timer: unknown;
  stopped: boolean;
}

const systemLookup: HostLookup = async (host) => (await dnsLookup(host)).address;

export class OwnEndpoints {
  private configured: HostPort[] = [];
  private readonly names = new Map<string, Name>();
  private readonly lookup: HostLookup;
  private readonly clock: ResolverClock;
  private readonly attemptTimeoutMs: number;
  private readonly firstRetryMs: number;
  private stopped = false;
  private waiters: (() => void)[] = [];

  constructor(endpoints: readonly HostPort[], private readonly options: OwnEndpointsOptions) {
    this.lookup = options.lookup ?? systemLookup;
    this.clock = options.clock ?? REAL_CLOCK;
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? 5000;
    this.firstRetryMs = options.firstRetryMs ?? 1000;
    this.set(endpoints);
  }

  /** True when some Endpoint is a name (the others are IP literals and need nothing). */
  get hasNames(): boolean {
    return this.names.size > 0;
  }

  /**
   * What to publish, in the configured order: IP literals as written, names as their last
   * address (a name with none yet is left out), each address:port once.
   */
  current(): HostPort[] {
    const out: HostPort[] = [];
    const seen = new Set<string>();
    for (const e of this.configured) {
      const host = parseIp(e.host) ? e.host : this.names.get(e.host)?.address;
      if (!host) continue;
      const text = `${formatIp(parseIp(host) as Uint8Array)}|${e.port}`;
      if (seen.has(text)) continue;
      seen.add(text);
      out.push({ host: formatIp(parseIp(host) as Uint8Array), port: e.port });
    }
    return out;
  }

  /** The configured Endpoint values (a reload): names kept keep their answers; new ones are looked up now. */
  set(endpoints: readonly HostPort[]): void {
    this.configured = [...endpoints];
    const wanted = new Set(endpoints.filter((e) => !parseIp(e.host)).map((e) => e.host));
    for (const [host, name] of this.names) {
      if (wanted.has(host)) continue;
      name.stopped = true;
      if (name.timer !== null) this.clock.clearTimeout(name.timer);
      this.names.delete(host);
    }
    for (const host of wanted) {
      if (this.names.has(host) || this.stopped) continue;
      const name: Name = { host, address: null, failures: 0, answered: false, timer: null, stopped: false };
      this.names.set(host, name);
      void this.attempt(name);
    }
    this.wake();
  }

  /** Resolves when every name has had its first answer (or failure), or after `ms`, whichever is first. */
  firstAnswers(ms: number): Promise<void> {
    if (this.allAnswered()) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = this.clock.setTimeout(done, ms);
      const self = this;
      function done() {
        self.clock.clearTimeout(timer);
        self.waiters = self.waiters.filter((w) => w !== done);
        resolve();
      }
      this.waiters.push(done);
    });
  }

  stop(): void {
    this.stopped = true;
    for (const name of this.names.values()) {
      name.stopped = true;
      if (name.timer !== null) this.clock.clearTimeout(name.timer);
      name.timer = null;
    }
    this.wake(true);
  }

  private allAnswered(): boolean {
    for (const name of this.names.values()) if (!name.answered) return false;
    return true;
  }

  private wake(force = false): void {
    if (!force && !this.allAnswered()) return;
    for (const w of [...this.waiters]) w();
  }

  private async attempt(name: Name): Promise<void> {
    let { address, why } = await lookupOnce(this.lookup, this.clock, name.host, this.attemptTimeoutMs);
    const special = address ? specialAddress(address) : null;
    if (address && special && special !== "loopback") {
      why = `it resolves to ${formatIp(address)}, ${special === "unspecified" ? "the unspecified" : `a ${special}`} address`;
      address = null;
    }
    if (this.stopped || name.stopped) return;
    const first = !name.answered;
    name.answered = true;
    const log = this.options.log;
    if (!address) {
      name.failures++;
      const wait = Math.min(this.options.intervalMs, this.firstRetryMs * 2 ** Math.min(name.failures - 1, 20));
      const keeps = name.address ? `still publishing ${name.address}` : "not published until it resolves";
      const line = `mesh: cannot resolve Endpoint ${name.host} (${why}); ${keeps}; retrying in ${wait / 1000} s`;
      if (name.failures === 1) log.warn(line);
      else log.debug(line);
      name.timer = this.clock.setTimeout(() => { name.timer = null; void this.attempt(name); }, wait);
      if (first) this.wake();
      return;
    }
    const text = formatIp(address);
    const before = name.address;
    name.failures = 0;
    name.address = text;
    name.timer = this.clock.setTimeout(() => { name.timer = null; void this.attempt(name); }, this.options.intervalMs);
    if (before === text) {
      if (first) this.wake();
      return;
    }
    if (before === null) log.info(`mesh: Endpoint ${name.host} resolves to ${text}`);
    else log.info(`mesh: Endpoint ${name.host} now resolves to ${text} (was ${before}); publishing the changed record`);
    if (first) this.wake();
    this.options.onChange();
  }
}
