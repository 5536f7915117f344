// The etcd v3 client: the registry's `etcd3` package (gRPC over HTTP/2 through @grpc/grpc-js),
// which works under Bun and inside the `bun build --compile` executable. This module only builds
// the client from [Mesh] (endpoints, TLS files, credentials) and turns its errors into sentences.
import { readFileSync } from "node:fs";
import { Etcd3, type IOptions } from "etcd3";
import type { MeshConfig } from "./config.ts";

export function createStoreClient(mesh: MeshConfig): Etcd3 {
  const options: IOptions = {
    hosts: mesh.store,
    dialTimeout: 3000,
  };
  if (mesh.store.some((url) => url.startsWith("https:"))) {
    const read = (path: string | undefined, what: string) => {
      if (path === undefined) return undefined;
      try {
        return readFileSync(path);
      } catch (err) {
        throw new Error(`[Mesh] ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    };
    options.credentials = {
      rootCertificate: read(mesh.caFile, "CAFile") ?? Buffer.alloc(0),
      ...(mesh.certFile ? { certChain: read(mesh.certFile, "CertFile"), privateKey: read(mesh.keyFile, "KeyFile") } : {}),
    } as IOptions["credentials"];
    if (!mesh.caFile) delete (options.credentials as { rootCertificate?: Buffer }).rootCertificate;
  }
  // HTTP/2 pings find a connection that died without a word (a partition, a crashed host, a server
  // restarted while our link was down) within ~10 s; etcd accepts pings every 5 s or slower.
  options.grpcOptions = { "grpc.keepalive_time_ms": 6000, "grpc.keepalive_timeout_ms": 4000, "grpc.keepalive_permit_without_calls": 1 };
  if (mesh.serverName) Object.assign(options.grpcOptions, { "grpc.ssl_target_name_override": mesh.serverName, "grpc.default_authority": mesh.serverName });
  if (mesh.username !== undefined) options.auth = { username: mesh.username, password: mesh.password ?? "" };
  return new Etcd3(options);
}

/** A short sentence for a store error (gRPC's messages carry a code and a long tail). */
export function describeStoreError(err: unknown): string {
  const message = (err as Error)?.message ?? String(err);
  const line = message.split("\n")[0].replace(/^\d+ [A-Z_]+: /, "");
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/**
 * When the store answered but refused this node (etcd authentication or roles), what to tell the
 * operator; null for anything else (an outage, which the node rides out).
 */
export function storeAuthProblem(err: unknown, mesh: MeshConfig): string | null {
  const message = (err as Error)?.message ?? String(err);
  const user = mesh.username === undefined ? "" : JSON.stringify(mesh.username);
  if (/authentication failed|invalid user ID or password/i.test(message)) {
    return `authentication failed for user ${user}: wrong [Mesh] Username or Password`;
  }
  if (/user name is empty|user name not found|invalid auth token/i.test(message) && mesh.username === undefined) {
    return "the store requires authentication: set [Mesh] Username and Password";
  }
  if (/authentication is not enabled/i.test(message)) {
    return "[Mesh] Username is set but the store has authentication off (anyone may write the mesh's records): run `etcdctl auth enable`, or remove Username and Password";
  }
  if (/permission denied/i.test(message)) {
    return `permission denied${user ? ` for user ${user}` : ""} on ${mesh.prefix}/: its role needs readwrite on that prefix (etcdctl role grant-permission ROLE readwrite --prefix=true ${mesh.prefix}/)`;
  }
  return null;
}

/** True when the error says the server's certificate was not trusted (a wrong CAFile). */
export function isTlsTrustError(err: unknown): boolean {
  return /certificate|self[- ]signed|unable to verify|SSL|TLS|handshake/i.test((err as Error)?.message ?? String(err));
}

/** `promise`, or a rejection after `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
