// The Prometheus endpoint: `GET /metrics` over HTTP with Bun.serve, on Bun's event loop (the
// device loop visits it at least every 2 ms of work and whenever it goes idle, so a scrape waits
// at most that long). Each scrape asks every source to write into a fresh MetricsWriter; sources
// are plain functions, so other parts of wontun (the mesh, later) add their gauges with
// addSource() without touching this file.
import { parseIp } from "../net/ip.ts";
import { quote } from "../text.ts";
import type { Logger } from "../log.ts";
import { CONTENT_TYPE, MetricsWriter } from "./text-format.ts";

/** Writes some metric families into one scrape. Must be synchronous and must not keep `out`. */
export type MetricsSource = (out: MetricsWriter) => void;

export interface MetricsAddress {
  /** An IP literal without brackets, or "localhost". */
  host: string;
  port: number;
}

/** The port the WireGuard exporters use. */
export const DEFAULT_METRICS_PORT = 9586;

const PATH = "/metrics";

/**
 * Parses `HOST:PORT` (HOST an IPv4 address or `localhost`) or `[IPv6]:PORT`; PORT 1-65535.
 * Returns the address or a one-line reason.
 */
export function parseMetricsAddress(text: string): MetricsAddress | string {
  const shown = quote(text);
  let host: string;
  let portText: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0 || text[close + 1] !== ":") return `${shown} is not [IPv6]:PORT`;
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    if (!host.includes(":") || parseIp(host) === null) return `${shown}: ${quote(host)} is not an IPv6 address`;
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) return `${shown} has no port (expected HOST:PORT, e.g. 127.0.0.1:${DEFAULT_METRICS_PORT})`;
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(":")) return `${shown}: an IPv6 address is written [ADDRESS]:PORT`;
    if (host !== "localhost" && parseIp(host) === null) return `${shown}: ${quote(host)} is not an IPv4 address or localhost`;
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) return `${shown}: ${quote(portText)} is not a port (1-65535)`;
  return { host, port: Number(portText) };
}

export function formatMetricsAddress(address: MetricsAddress): string {
  return address.host.includes(":") ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/** The endpoint could not be opened (port in use, address not on this host, …). */
export class MetricsListenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MetricsListenError";
  }
}

export class MetricsServer {
  private readonly sources = new Set<MetricsSource>();
  private server: ReturnType<typeof Bun.serve> | null;
  /** Only the first failing scrape of a run of failures is logged. */
  private failing = false;

  private constructor(
    private readonly log: Logger | null,
    address: MetricsAddress,
  ) {
    try {
      this.server = Bun.serve({
        hostname: address.host,
        port: address.port,
        reusePort: false,
        development: false,
        fetch: (request) => this.answer(request),
        error: () => new Response("internal error\n", { status: 500 }),
      });
    } catch (err) {
      const e = err as Error & { code?: string };
      const code = e.code ?? /\b(E[A-Z]+)\b/.exec(e.message)?.[1];
      const why = code === "EADDRINUSE" || /in use/i.test(e.message) ? "the port is in use"
        : code === "EADDRNOTAVAIL" ? "the address is not on this host"
        : code === "EACCES" ? "permission denied"
        : e.message;
      throw new MetricsListenError(`metrics: cannot listen on ${formatMetricsAddress(address)}: ${why}`);
    }
  }

  /** Opens the endpoint at once; throws MetricsListenError if it cannot. */
  static listen(address: MetricsAddress, log: Logger | null = null): MetricsServer {
    return new MetricsServer(log, address);
  }

  /** The address it listens on (the kernel's port if 0 was asked for). */
  get address(): MetricsAddress {
    const server = this.server;
    if (!server) throw new Error("metrics server closed");
    return { host: server.hostname ?? "", port: server.port ?? 0 };
  }

  get url(): string {
    return `http://${formatMetricsAddress(this.address)}${PATH}`;
  }

  /** Adds a source to every later scrape; the returned function removes it. */
  addSource(source: MetricsSource): () => void {
    this.sources.add(source);
    return () => this.sources.delete(source);
  }

  /** One scrape's body, in the order the sources were added. Throws if a source does. */
  scrape(): string {
    const out = new MetricsWriter();
    for (const source of this.sources) source(out);
    return out.render();
  }

  private answer(request: Request): Response {
    if (new URL(request.url).pathname !== PATH) return new Response("not found; metrics are at /metrics\n", { status: 404 });
    if (request.method !== "GET") return new Response("method not allowed\n", { status: 405, headers: { Allow: "GET" } });
    let body: string;
    try {
      body = this.scrape();
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.log?.warn(`metrics scrape failed: ${(err as Error).message}`);
      this.failing = true;
      return new Response(`scrape failed: ${(err as Error).message}\n`, { status: 500 });
    }
    return new Response(body, { headers: { "Content-Type": CONTENT_TYPE } });
  }

  /** Stops listening (idempotent); a scrape in flight is cut. */
  close(): void {
    this.server?.stop(true);
    this.server = null;
  }
}
