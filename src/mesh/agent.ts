// The mesh agent: a background model like the endpoint resolver, stopped with the daemon. It
// claims this node's address, publishes its record under a lease it keeps alive, watches the
// prefix and applies every change through the operations API. The data plane never waits for
// it: while the store is unreachable nothing is removed, and the last applied store contents are
// cached on disk for a restart while the store is down. When the store is back the watch resumes
// from the last revision (or everything is read again if that revision was compacted) and the
// difference is applied and logged.
import type { Etcd3, Lease, Watcher } from "etcd3";
import { type Cidr, formatIp, parseIp } from "../net/ip.ts";
import { hostname } from "node:os";
import { formatEndpoint } from "../net/endpoint.ts";
import { encodeKey, publicKeyOf } from "../crypto/keys.ts";
import type { Config } from "../config/model.ts";
import type { Logger } from "../log.ts";
import type { DeviceChange, DeviceStatus, MeshStatus } from "../control/model.ts";
import { type MeshConfig } from "./config.ts";
import { addressKey, addressesPrefix, encodeRecord, nodeKey, ownRecord } from "./record.ts";
import { type DecodeCache, type DesiredPeer, desiredPeers, diffPeers, type Membership, readMembership, type StoreEntry } from "./membership.ts";
import { candidateAddresses } from "./allocate.ts";
import { readCache, writeCache } from "./cache.ts";
import { createStoreClient, describeStoreError, isTlsTrustError, storeAuthProblem, withTimeout } from "./store.ts";
import { OwnEndpoints } from "./endpoints.ts";

export type StoreState = MeshStatus["storeState"];

export type { MeshStatus } from "../control/model.ts";

export interface MeshAgentOptions {
  config: Config;
  mesh: MeshConfig;
  log: Logger;
  version: string;
  cachePath: string;
  /** One store call's limit at start (default 5 s). */
  startTimeoutMs?: number;
}

interface Operations {
  apply(change: DeviceChange): void;
  status(): DeviceStatus;
}

const CALL_TIMEOUT_MS = 5000;

export class MeshAgent {
  readonly publicKey: Uint8Array;
  readonly ownKey: string;
  name: string;
  address: Uint8Array | null = null;
  private mesh: MeshConfig;
  private readonly log: Logger;
  private readonly client: Etcd3;
  private view = new Map<string, StoreEntry>();
  private revision = 0;
  private applied = new Map<string, DesiredPeer>();
  private membership: Membership | null = null;
  private operations: Operations | null = null;
  private lease: Lease | null = null;
  private watcher: Watcher | null = null;
  private state: StoreState = "connecting";
  private lastError = "";
  private published = false;
  private stopped = false;
  private readonly warned = new Map<string, string>();
  private recomputeQueued = false;
  private lastRecompute = 0;
  /** Until when (performance.now()) store traffic is expected (see deviceTimer). */
  private busyUntil = 0;
  /**
   * For device.addTimer: while store traffic flows, the device loop waits at most 5 ms at a time
   * and so gives Bun's event loop (where the gRPC client runs) a turn that often; otherwise it
   * would wait up to 1 s between turns, and a burst of watch responses would take seconds to
   * read. Idle, it asks for nothing.
   */
  readonly deviceTimer = {
    nextDeadline: (): number => {
      const now = performance.now();
      return now < this.busyUntil ? now + 5 : Infinity;
    },
    tick: (_now: number): void => {},
  };
  private readonly decoded: DecodeCache = new WeakMap();
  private cacheTimer: ReturnType<typeof setTimeout> | null = null;
  private syncing = false;
  private publishing = false;
  private lastRepublish = 0;
  private ownCheckTimer: ReturnType<typeof setTimeout> | null = null;
  /** The config's own [Peer] sections (keys and prefixes win over mesh records); a reload renews them. */
  private staticKeys: Set<string>;
  private staticPrefixes: Cidr[];
  /** This node's Endpoint values as published addresses (names resolved here, see endpoints.ts). */
  private readonly endpoints: OwnEndpoints;

  constructor(private readonly options: MeshAgentOptions) {
    const key = options.config.interface.privateKey;
    if (!key) throw new Error("[Mesh] needs a private key");
    this.mesh = options.mesh;
    this.log = options.log;
    this.publicKey = publicKeyOf(key);
    this.ownKey = encodeKey(this.publicKey);
    this.name = options.mesh.name || options.config.interface.name || hostName();
    this.staticKeys = staticKeysOf(options.config);
    this.staticPrefixes = staticPrefixesOf(options.config);
    this.client = createStoreClient(options.mesh);
    this.endpoints = new OwnEndpoints(options.mesh.endpoints, {
      log: this.log,
      intervalMs: Math.min(options.mesh.ttl, 30) * 1000,
      onChange: () => this.endpointsChanged(),
    });
  }

  /**
   * Before the interface is set up: this node's mesh address, claimed in the store, or taken from
   * the config or the cache when the store cannot be reached. Throws when there is none, or when
   * the store's TLS certificate is not trusted.
   */
  async prepare(): Promise<Cidr> {
    const configured = this.options.config.interface.addresses.find((a) => a.address.length === this.mesh.network.address.length && inNetwork(this.mesh.network, a.address));
    const cached = readCache(this.options.cachePath, this.mesh.prefix, this.ownKey);
    // With a cache to fall back on, a store that does not answer holds up the tunnel for 2 s only.
    const timeout = this.options.startTimeoutMs ?? (cached || configured ? 2000 : CALL_TIMEOUT_MS);
    try {
      await withTimeout(this.sync(), timeout, `store ${this.mesh.store.join(",")}`);
      // Endpoint names: publish what they resolve to, waiting a little for the first answers (a
      // name that does not resolve is left out and published later).
      await this.endpoints.firstAnswers(Math.min(timeout, 2000));
      const preferred = configured?.address ?? (cached ? parseAddress(cached.cache.address) : null);
      await withTimeout(this.claim(preferred, configured !== undefined), timeout, "address allocation");
    } catch (err) {
      if (isTlsTrustError(err) && this.mesh.store.some((u) => u.startsWith("https:"))) {
        this.client.close();
        this.endpoints.stop();
        throw new Error(`store ${this.mesh.store.join(",")}: TLS failed, the server's certificate is not trusted${this.mesh.caFile ? ` by CAFile ${this.mesh.caFile}` : ""} (${describeStoreError(err)})`);
      }
      if (err instanceof AllocationError) {
        this.client.close();
        this.endpoints.stop();
        throw err;
      }
      // The store answered and refused us: wrong credentials are a config error, not an outage.
      const refused = storeAuthProblem(err, this.mesh);
      if (refused) {
        this.client.close();
        this.endpoints.stop();
        throw new Error(`store ${this.mesh.store.join(",")}: ${refused}`);
      }
      this.storeDown(err);
      this.watcher?.cancel().catch(() => {});
      this.watcher = null;
      const address = configured?.address ?? (cached ? parseAddress(cached.cache.address) : null);
      if (!address) {
        this.client.close();
        this.endpoints.stop();
        throw new Error(`store ${this.mesh.store.join(",")} unreachable (${describeStoreError(err)}) and no cached address in ${this.options.cachePath}: give [Interface] Address or start when the store is up`);
      }
      this.address = address;
      if (cached) {
        this.view = cached.view;
        this.revision = cached.cache.revision;
        this.log.warn(`mesh: store unreachable; starting with ${this.options.cachePath} (revision ${this.revision})`);
      } else {
        this.log.warn("mesh: store unreachable and no cache; starting with no mesh peers");
      }
    }
    const address = this.address as Uint8Array;
    return { address, prefix: this.mesh.network.prefix };
  }

  /** After the device is up: applies what is known and keeps following the store. */
  start(operations: Operations): void {
    this.operations = operations;
    this.recompute();
    if (!this.watcher) void this.syncLoop();
    if (!this.published) void this.publishLoop();
  }

  /** Revokes the lease (others drop this node at once), closes the client, writes the cache. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.cacheTimer) clearTimeout(this.cacheTimer);
    if (this.ownCheckTimer) clearTimeout(this.ownCheckTimer);
    this.endpoints.stop();
    this.saveCache();
    const lease = this.lease;
    this.lease = null;
    try {
      await withTimeout(Promise.all([this.watcher?.cancel(), lease && this.published ? lease.revoke() : undefined]), 1500, "lease revoke");
      if (lease && this.published) this.log.info("mesh: record withdrawn (lease revoked)");
    } catch (err) {
      this.log.warn(`mesh: could not revoke the lease (${describeStoreError(err)}); others drop this node after ${this.mesh.ttl} s`);
    }
    this.client.close();
  }

  /**
   * After a reload: a changed Endpoint, Subnets or Name is published in place (others update the
   * peer without a new handshake), the static [Peer] sections' keys and prefixes are renewed;
   * other [Mesh] settings need a restart.
   */
  reconfigure(config: Config): void {
    const next = config.mesh;
    this.staticKeys = staticKeysOf(config);
    this.staticPrefixes = staticPrefixesOf(config);
    if (!next) {
      this.recompute();
      this.log.warn("mesh: [Mesh] was removed from the config; restart to leave the mesh (still a member)");
      return;
    }
    const old = this.mesh;
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    const fixed = (["store", "network", "prefix", "ttl", "caFile", "certFile", "keyFile", "serverName", "username", "password", "cacheFile"] as const).filter((k) => !same(old[k], next[k]));
    if (fixed.length > 0) this.log.warn(`mesh: ${fixed.join(", ")} changed; that takes a restart (kept as they were)`);
    const publish = !same(old.endpoints, next.endpoints) || !same(old.subnets, next.subnets) || old.name !== next.name;
    const name = next.name || this.options.config.interface.name || this.name;
    this.mesh = { ...old, endpoints: next.endpoints, subnets: next.subnets, name: next.name };
    this.name = name;
    this.endpoints.set(next.endpoints);
    if (publish) {
      const published = this.endpoints.current();
      this.log.info(`mesh: publishing the changed record (endpoints ${published.map(hostPort).join(", ") || "none"})`);
      this.republish();
    }
    this.recompute();
  }

  /** An Endpoint name resolved, or its answer changed: publish the record again, and re-check the topology. */
  private endpointsChanged(): void {
    if (this.stopped) return;
    this.republish();
    this.recompute();
  }

  /** The record this node publishes, as stored. */
  private recordText(address: Uint8Array): string {
    return encodeRecord(ownRecord(this.publicKey, this.name, address, this.endpoints.current(), this.mesh.subnets, this.options.version));
  }

  /** Puts this node's record again under its lease (after a change of its own settings). */
  private republish(): void {
    if (!this.published || !this.lease || !this.address) return;
    this.lastRepublish = Date.now(); // the watch shows the old record until the put lands
    this.markBusy(CALL_TIMEOUT_MS);
    const record = this.recordText(this.address);
    const key = nodeKey(this.mesh.prefix, this.publicKey);
    void this.lease.grant()
      .then((id) => this.client.put(key).value(record).lease(id))
      .catch((err) => this.storeDown(err));
  }

  status(): MeshStatus {
    const members: MeshStatus["members"] = [];
    const m = this.membership;
    if (m) {
      for (const member of m.members) {
        const peered = this.applied.has(member.key);
        members.push({
          name: member.name, key: member.key, address: formatIp(member.address),
          endpoint: member.endpoints[0] ? formatEndpoint(member.endpoints[0]) : "",
          state: peered ? "peer" : "not peered (neither side has an endpoint)",
        });
      }
      for (const [key, why] of m.ignored) members.push({ name: "", key, address: "", endpoint: "", state: `ignored: ${why}` });
    }
    return {
      store: this.mesh.store.join(","),
      storeState: this.state,
      storeError: this.state === "connected" ? "" : this.lastError,
      revision: this.revision,
      address: this.address ? formatIp(this.address) : "",
      published: this.published,
      members,
    };
  }

  // ---------------------------------------------------------------------------------------------

  /** Reads everything under the prefix and watches from the next revision. */
  private async sync(): Promise<void> {
    const res = await this.client.getAll().prefix(`${this.mesh.prefix}/`).exec();
    const view = new Map<string, StoreEntry>();
    for (const kv of res.kvs) view.set(kv.key.toString(), { value: new Uint8Array(kv.value), createRevision: Number(kv.create_revision) });
    const revision = Number(res.header.revision);
    const first = this.revision === 0 && this.membership === null;
    if (!first) this.log.info(`mesh: read the store again at revision ${revision} (had ${this.revision})`);
    this.view = view;
    this.revision = revision;
    this.storeUp(first ? null : `resynchronised at revision ${revision}`);
    this.schedule();
    await this.watch(revision + 1);
  }

  private async watch(from: number): Promise<void> {
    const watcher = await this.client.watch().prefix(`${this.mesh.prefix}/`).withPreviousKV().startRevision(String(from)).create();
    if (this.stopped) {
      void watcher.cancel().catch(() => {});
      return;
    }
    this.watcher = watcher;
    watcher.on("data", (res) => {
      for (const ev of res.events) {
        const key = ev.kv.key.toString();
        if (ev.type === "Put") this.view.set(key, { value: new Uint8Array(ev.kv.value), createRevision: Number(ev.kv.create_revision) });
        else this.view.delete(key);
      }
      this.revision = Math.max(this.revision, Number(res.header.revision));
      this.schedule();
    });
    watcher.on("disconnected", (err) => this.storeDown(err));
    watcher.on("connected", () => this.storeUp(`watch resumed after revision ${this.revision}`));
    watcher.on("error", (err) => {
      // A canceled watch (the revision was compacted): read everything again.
      if (this.watcher !== watcher) return;
      const why = describeStoreError(err).replace(/^Watcher canceled: ?$/, "");
      this.log.warn(`mesh: watch ended (${why || "canceled by the store: the revision it resumes from was compacted"}); reading the store again`);
      this.watcher = null;
      void watcher.cancel().catch(() => {});
      void this.syncLoop();
    });
  }

  /** Store traffic is expected for the next `ms`. */
  private markBusy(ms = 1000): void {
    this.busyUntil = Math.max(this.busyUntil, performance.now() + ms);
  }

  private async syncLoop(): Promise<void> {
    if (this.syncing) return;
    this.syncing = true;
    let wait = 1000;
    while (!this.stopped && !this.watcher) {
      this.markBusy(CALL_TIMEOUT_MS);
      try {
        await withTimeout(this.sync(), CALL_TIMEOUT_MS, "store read");
      } catch (err) {
        this.storeDown(err);
        await sleep(wait);
        wait = Math.min(wait * 2, 5000);
      }
    }
    this.syncing = false;
  }

  /** Publishes (again) until it works: after a start without the store, or a lost lease. */
  private async publishLoop(): Promise<void> {
    if (this.publishing) return;
    this.publishing = true;
    let wait = 1000;
    while (!this.stopped && !this.published) {
      this.markBusy(CALL_TIMEOUT_MS);
      try {
        await withTimeout(this.claim(this.address, true), CALL_TIMEOUT_MS, "publish");
      } catch (err) {
        if (err instanceof AllocationError) this.log.error(`mesh: ${err.message}`);
        else this.storeDown(err);
        await sleep(wait);
        wait = Math.min(wait * 2, 5000);
      }
    }
    this.publishing = false;
  }

  private async newLease(): Promise<string> {
    const lease = this.client.lease(this.mesh.ttl, { autoKeepAlive: true });
    lease.on("lost", (err) => {
      if (this.lease !== lease || this.stopped) return;
      this.lease = null;
      this.published = false;
      this.log.warn(`mesh: lease lost (${describeStoreError(err)}); publishing again when the store answers`);
      void this.publishLoop();
    });
    lease.on("keepaliveFailed", (err) => this.storeDown(err));
    lease.on("keepaliveSucceeded", () => this.storeUp(null));
    const id = await lease.grant();
    const old = this.lease;
    this.lease = lease;
    if (old) void old.revoke().catch(() => {});
    return id;
  }

  /**
   * Takes an address with one transaction per try: the address key is created only if no one has
   * it (or it is already ours, from before a restart), together with the record, under our lease.
   */
  private async claim(preferred: Uint8Array | null, only: boolean): Promise<void> {
    const leaseId = this.lease ? await this.lease.grant() : await this.newLease();
    const addresses = addressesPrefix(this.mesh.prefix);
    const taken = new Set<string>();
    for (const [key, entry] of this.view) {
      if (key.startsWith(addresses) && Buffer.from(entry.value).toString() !== this.ownKey) taken.add(key.slice(addresses.length));
    }
    const tries: Iterable<Uint8Array> = only && preferred ? [preferred]
      : (function* (network: Cidr, seed: Uint8Array, first: Uint8Array | null) {
        if (first) yield first;
        yield* candidateAddresses(network, seed, taken, formatIp);
      })(this.mesh.network, this.publicKey, preferred);
    let attempts = 0;
    for (const address of tries) {
      if (++attempts > 64) break;
      const aKey = addressKey(this.mesh.prefix, address);
      const record = this.recordText(address);
      const puts = () => [
        this.client.put(aKey).value(this.ownKey).lease(leaseId),
        this.client.put(nodeKey(this.mesh.prefix, this.publicKey)).value(record).lease(leaseId),
      ];
      let res = await this.client.if(aKey, "Create", "==", 0).then(...puts()).commit();
      if (!res.succeeded) res = await this.client.if(aKey, "Value", "==", this.ownKey).then(...puts()).commit();
      if (res.succeeded) {
        const fresh = this.address === null;
        this.address = address;
        this.published = true;
        this.lastRepublish = Date.now();
        this.log.info(`mesh: ${fresh ? "joined" : "published again"} as ${this.name} with ${formatIp(address)} (lease ${this.mesh.ttl} s)`);
        // An Endpoint name's answer that came while the transaction was under way.
        if (this.recordText(address) !== record) this.republish();
        return;
      }
      this.log.debug(`mesh: ${formatIp(address)} is taken; trying another`);
    }
    throw new AllocationError(only && preferred ? `address ${formatIp(preferred)} is held by another node` : `no free address found in the mesh network`);
  }

  /**
   * The first change after a quiet spell is applied at once (a microtask; events that arrive in
   * one response go together); during a burst at most every 100 ms, so that thousands of members
   * written in many transactions are not diffed once per transaction. (The timer fires on time
   * because markBusy keeps the device loop's waits short.)
   */
  private schedule(): void {
    this.markBusy();
    if (this.recomputeQueued || this.stopped) return;
    this.recomputeQueued = true;
    const run = () => {
      this.recomputeQueued = false;
      this.lastRecompute = performance.now();
      this.recompute();
    };
    const wait = this.lastRecompute + 100 - performance.now();
    if (wait <= 0) queueMicrotask(run);
    else setTimeout(run, wait);
  }

  /** The store's contents → members → peers; applies the difference. */
  private recompute(): void {
    if (!this.operations || this.stopped) return;
    const m = readMembership(this.view, {
      prefix: this.mesh.prefix, network: this.mesh.network, ownKey: this.ownKey, staticKeys: this.staticKeys, staticPrefixes: this.staticPrefixes,
    }, this.decoded);
    this.membership = m;
    for (const [key, why] of m.ignored) {
      if (this.warned.get(key) !== why) this.log.warn(`mesh: ignoring ${key}: ${why}`);
    }
    this.warned.clear();
    for (const [key, why] of m.ignored) this.warned.set(key, why);
    this.checkOwnRecord(m);
    // What others see decides the topology: an Endpoint name not resolved yet is not an endpoint.
    const desired = desiredPeers(m.members, this.endpoints.current().length > 0);
    const { change, lines } = diffPeers(this.applied, desired);
    if (change.peers.length > 0) {
      try {
        this.operations.apply(change);
        this.applied = desired;
        for (const line of lines) this.log.info(line);
      } catch (err) {
        // One bad peer must not hold up the others: apply them one by one.
        this.log.warn(`mesh: change refused whole (${(err as Error).message}); applying peer by peer`);
        for (const peer of change.peers) {
          const key = encodeKey(peer.publicKey as Uint8Array);
          try {
            this.operations.apply({ replacePeers: false, peers: [peer] });
            if (peer.remove) this.applied.delete(key);
            else this.applied.set(key, desired.get(key) as DesiredPeer);
          } catch (e) {
            this.log.warn(`mesh: peer ${key.slice(0, 8)}… not applied: ${(e as Error).message}`);
          }
        }
      }
    }
    this.scheduleCache();
  }

  /** Someone wrote our key with something else (another name): put ours back, at most every 2 s. */
  private checkOwnRecord(m: Membership): void {
    if (!this.published || !this.lease || !this.address) return;
    const key = nodeKey(this.mesh.prefix, this.publicKey);
    const entry = this.view.get(key);
    const held = this.view.get(addressKey(this.mesh.prefix, this.address));
    const mine = this.recordText(this.address);
    const recordOk = entry !== undefined && Buffer.from(entry.value).toString() === mine;
    const addressOk = held !== undefined && Buffer.from(held.value).toString() === this.ownKey;
    if (recordOk && addressOk) return;
    const wait = 2000 - (Date.now() - this.lastRepublish);
    if (wait > 0) {
      // Just published (the watch may not show it yet): look again later.
      if (!this.ownCheckTimer) this.ownCheckTimer = setTimeout(() => { this.ownCheckTimer = null; this.recompute(); }, wait);
      return;
    }
    this.lastRepublish = Date.now();
    const what = !entry ? "was deleted"
      : !recordOk ? `was replaced (${m.own ? `name ${JSON.stringify(m.own.name).slice(0, 60)}` : (m.ignored.get(key) ?? "another value")})`
      : "lost its address key";
    this.log.warn(`mesh: the record under our own key ${what}; ignoring that and publishing ours again`);
    this.published = false;
    void this.publishLoop();
  }

  private scheduleCache(): void {
    if (this.cacheTimer || this.stopped) return;
    this.cacheTimer = setTimeout(() => {
      this.cacheTimer = null;
      this.saveCache();
    }, 500);
  }

  private saveCache(): void {
    if (!this.address) return;
    try {
      writeCache(this.options.cachePath, { version: 1, prefix: this.mesh.prefix, publicKey: this.ownKey, address: formatIp(this.address), revision: this.revision }, this.view);
    } catch (err) {
      this.log.warn(`mesh: cannot write the cache ${this.options.cachePath}: ${(err as Error).message}`);
    }
  }

  private storeDown(err: unknown): void {
    this.lastError = describeStoreError(err);
    if (this.state !== "unreachable") this.log.warn(`mesh: store unreachable (${this.lastError}); keeping the ${this.applied.size} mesh peer(s) as they are`);
    this.state = "unreachable";
  }

  private storeUp(what: string | null): void {
    if (this.state === "unreachable") this.log.info(`mesh: store reachable again${what ? `; ${what}` : ""}`);
    this.state = "connected";
  }
}

class AllocationError extends Error {}

function inNetwork(network: Cidr, address: Uint8Array): boolean {
  const bits = network.prefix;
  for (let bit = 0; bit < bits; bit++) {
    const mask = 0x80 >> (bit & 7);
    if ((network.address[bit >> 3] & mask) !== (address[bit >> 3] & mask)) return false;
  }
  return true;
}

function parseAddress(text: string): Uint8Array | null {
  return parseIp(text);
}

function hostPort(e: { host: string; port: number }): string {
  return e.host.includes(":") ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}

function hostName(): string {
  return hostname().slice(0, 100) || "node";
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function staticKeysOf(config: Config): Set<string> {
  return new Set(config.peers.flatMap((p) => (p.publicKey ? [encodeKey(p.publicKey)] : [])));
}

function staticPrefixesOf(config: Config): Cidr[] {
  return config.peers.flatMap((p) => p.allowedIps);
}
