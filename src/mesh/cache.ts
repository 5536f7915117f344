// The last store contents this node applied, on disk (mode 0600, written atomically), so that a
// node restarted while etcd is down comes back with its peers and its address. Only public data.
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { StoreEntry } from "./membership.ts";

export interface MeshCache {
  version: 1;
  prefix: string;
  /** This node's base64 public key and mesh address. */
  publicKey: string;
  address: string;
  revision: number;
  entries: { key: string; value: string; createRevision: number }[];
}

/** The cache, or null when there is none or it is not ours (another prefix or key). */
export function readCache(path: string, prefix: string, publicKey: string): { cache: MeshCache; view: Map<string, StoreEntry> } | null {
  let cache: MeshCache;
  try {
    cache = JSON.parse(readFileSync(path, "utf8")) as MeshCache;
  } catch {
    return null;
  }
  if (cache?.version !== 1 || cache.prefix !== prefix || cache.publicKey !== publicKey || !Array.isArray(cache.entries)) return null;
  const view = new Map<string, StoreEntry>();
  for (const e of cache.entries) {
    if (typeof e?.key !== "string" || typeof e.value !== "string") continue;
    view.set(e.key, { value: Buffer.from(e.value, "base64"), createRevision: Number(e.createRevision) || 0 });
  }
  return { cache, view };
}

export function writeCache(path: string, cache: Omit<MeshCache, "entries">, view: ReadonlyMap<string, StoreEntry>): void {
  const body: MeshCache = {
    ...cache,
    entries: [...view].map(([key, e]) => ({ key, value: Buffer.from(e.value).toString("base64"), createRevision: e.createRevision })),
  };
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(body), { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}
