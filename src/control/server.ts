// The control socket: a unix stream socket (by default /var/run/wireguard/IFACE.sock, where `wg`
// looks) that speaks the WireGuard UAPI, served from the device's epoll loop. Like wireguard-go's
// IpcHandle, a connection may carry several requests in a row; each gets its answer, ending with
// an errno line; end of stream closes it. Unlike it, nothing here can grow without bound or block
// the loop: requests are capped in size, clients in number, and every client in idle time.
import { lstatSync, mkdirSync, chmodSync, unlinkSync, existsSync } from "node:fs";
import { dirname } from "node:path";
import { ptr } from "bun:ffi";
import { libc } from "../sys/libc.ts";
import { EADDRINUSE, EAGAIN, SysError } from "../sys/errno.ts";
import { acceptUnix, listenUnix, probeUnix, readSome, writeSome } from "../sys/unix-socket.ts";
import type { Logger } from "../log.ts";
import { UAPI_EINVAL, UAPI_ENOMEM, UAPI_EPROTO } from "./model.ts";
import { parseRequestHead, type RequestKind } from "./uapi-request.ts";
import { errnoLine } from "./uapi-values.ts";

/** Answers one request each; every answer is complete, including its "errno=N\n\n" line. */
export interface ControlHandler {
  /** `get=1`. */
  get(): string;
  /** `get=wontun`. */
  status(): string;
  /** `set=1`; `body` is the lines between it and the blank line (each ending in "\n"). */
  set(body: string): string;
}

/**
 * The device's epoll loop as the server sees it. `watch` registers `fd` edge-triggered for input
 * AND output (EPOLLIN | EPOLLOUT | EPOLLET, Epoll.addReadWritable) and calls `onReady` on every
 * event; `unwatch` forgets it (called before the fd is closed).
 */
export interface FdWatcher {
  watch(fd: number, onReady: () => void): void;
  unwatch(fd: number): void;
}

export interface ControlServerOptions {
  path: string;
  handler: ControlHandler;
  watcher: FdWatcher;
  log?: Logger;
  /** Milliseconds on the clock `tick(now)` is given; performance.now() by default. */
  clock?: () => number;
  /** Test knobs; the defaults are the documented limits. */
  limits?: Partial<ControlLimits>;
}

export interface ControlLimits {
  /** A request larger than this is answered with errno=-ENOMEM and its connection closed. */
  maxRequestBytes: number;
  /** Connections beyond this many are closed as soon as they are accepted. */
  maxClients: number;
  /** A client that neither completes a request nor reads its answer for this long is closed. */
  idleMs: number;
}

export const DEFAULT_CONTROL_LIMITS: ControlLimits = {
  maxRequestBytes: 1 << 20,
  maxClients: 64,
  idleMs: 5000,
};

/** wireguard-go's answer for an error that is not an IPC error (ENOANO). */
const UAPI_ENOANO = 55;
/** The longest valid first line is "get=wontun"; more without a newline is not an operation. */
const MAX_HEAD_BYTES = 16;
const READ_CHUNK = 64 * 1024;
// Room for a burst of connections beyond maxClients: the extra ones are accepted and closed, not
// left to fail with EAGAIN in connect().
const LISTEN_BACKLOG = 256;
const NEWLINE = 0x0a;

const decoder = new TextDecoder();
const encoder = new TextEncoder();

class Client {
  /** Received bytes not yet consumed: inbox[0..inboxLength). */
  inbox = new Uint8Array(0);
  inboxLength = 0;
  /** Where the search for a set request's blank line resumes. */
  scanFrom = 0;
  /** Answers not yet written; the first one from `outboxOffset`. */
  readonly outbox: Uint8Array[] = [];
  outboxOffset = 0;
  /** No more requests: close once the outbox is written. */
  closing = false;
  closed = false;
  constructor(
    readonly fd: number,
    public deadline: number,
  ) {}
}

export class ControlServer {
  readonly path: string;
  private readonly handler: ControlHandler;
  private readonly watcher: FdWatcher;
  private readonly log: Logger | undefined;
  private readonly clock: () => number;
  private readonly limits: ControlLimits;
  private listenFd = -1;
  /** The socket file we created, so close() never removes a successor's. */
  private socketIdentity: { dev: number; ino: number } | null = null;
  private readonly clients = new Set<Client>();
  /** Shared read buffer, allocated once (its address is handed to read()). */
  private readonly chunk = new Uint8Array(new ArrayBuffer(READ_CHUNK));
  private readonly chunkPtr = ptr(this.chunk);
  private peakInbox = 0;

  constructor(options: ControlServerOptions) {
    this.path = options.path;
    this.handler = options.handler;
    this.watcher = options.watcher;
    this.log = options.log;
    this.clock = options.clock ?? (() => performance.now());
    this.limits = { ...DEFAULT_CONTROL_LIMITS, ...options.limits };
  }

  /**
   * Creates the socket's directory (0755) if missing, binds the socket with mode 0600 and starts
   * accepting. A stale socket file (nobody accepts on it) is replaced; a live one, or a file that
   * is not a socket, is an Error saying so.
   */
  open(): void {
    if (this.listenFd >= 0) throw new Error("control socket already open");
    const dir = dirname(this.path);
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o755 });
    let fd = this.bindWithPrivateMode();
    if (fd === -EADDRINUSE) {
      this.removeStaleSocket();
      fd = this.bindWithPrivateMode();
    }
    if (fd < 0) throw new SysError(`bind(${this.path})`, -fd);
    this.listenFd = fd;
    chmodSync(this.path, 0o600);
    const st = lstatSync(this.path);
    this.socketIdentity = { dev: st.dev, ino: st.ino };
    this.watcher.watch(fd, () => this.acceptAll());
  }

  // umask 077 while binding: the socket file must never exist with a mode that lets others in,
  // not even between bind and chmod.
  private bindWithPrivateMode(): number {
    const old = process.umask(0o077);
    try {
      return listenUnix(this.path, LISTEN_BACKLOG);
    } finally {
      process.umask(old);
    }
  }

  private removeStaleSocket(): void {
    const st = lstatSync(this.path, { throwIfNoEntry: false });
    if (st && !st.isSocket()) throw new Error(`${this.path} exists and is not a socket; not touching it`);
    const state = probeUnix(this.path);
    if (state === "live") {
      throw new Error(`${this.path}: another daemon is already listening on this control socket (is this interface up already?)`);
    }
    if (state === "stale") {
      this.log?.info(`control socket ${this.path} was left behind by a process that is gone; replacing it`);
      unlinkSync(this.path);
    }
  }

  /** Closes clients past their deadline. `now` is on the server's clock (ms). */
  tick(now: number): void {
    if (this.clients.size === 0) return; // the device asks every round: no iterator then
    for (const c of this.clients) {
      if (now >= c.deadline) {
        this.log?.debug(`control: closing a client idle for ${this.limits.idleMs} ms`);
        this.drop(c);
      }
    }
  }

  /** The earliest client deadline (ms, the server's clock), Infinity with no clients. */
  nextDeadline(): number {
    if (this.clients.size === 0) return Infinity; // asked every round of the device loop: no iterator then
    let next = Infinity;
    for (const c of this.clients) if (c.deadline < next) next = c.deadline;
    return next;
  }

  /** Closes every connection and the socket, and removes the socket file (if still ours). */
  close(): void {
    for (const c of [...this.clients]) this.drop(c);
    if (this.listenFd >= 0) {
      this.watcher.unwatch(this.listenFd);
      libc.close(this.listenFd);
      this.listenFd = -1;
    }
    if (this.socketIdentity) {
      const st = lstatSync(this.path, { throwIfNoEntry: false });
      if (st && st.dev === this.socketIdentity.dev && st.ino === this.socketIdentity.ino) unlinkSync(this.path);
      this.socketIdentity = null;
    }
  }

  /** For tests and diagnostics: open connections and the most request bytes ever held at once. */
  stats(): { clients: number; peakBufferedBytes: number } {
    return { clients: this.clients.size, peakBufferedBytes: this.peakInbox };
  }

  private acceptAll(): void {
    for (;;) {
      const fd = acceptUnix(this.listenFd);
      if (fd < 0) return;
      if (this.clients.size >= this.limits.maxClients) {
        this.log?.warn(`control: more than ${this.limits.maxClients} clients at once; refusing one`);
        libc.close(fd);
        continue;
      }
      const client = new Client(fd, this.clock() + this.limits.idleMs);
      this.clients.add(client);
      this.watcher.watch(fd, () => this.serve(client));
    }
  }

  /** One readiness event: finish pending output, then read and answer until the input runs dry. */
  private serve(c: Client): void {
    if (c.closed) return;
    if (!this.flush(c)) return;
    while (!c.closing && c.outbox.length === 0) {
      this.answerBuffered(c);
      if (c.closed || c.closing || c.outbox.length > 0) break;
      const n = readSome(c.fd, this.chunkPtr, READ_CHUNK);
      if (n === -EAGAIN) return;
      if (n <= 0) {
        // End of stream (the client may still read what it asked for) or a reset.
        if (n < 0) return this.drop(c);
        c.closing = true;
        break;
      }
      this.append(c, n);
    }
    if (c.closing && c.outbox.length === 0) this.drop(c);
  }

  private append(c: Client, n: number): void {
    const needed = c.inboxLength + n;
    if (needed > c.inbox.length) {
      const grown = new Uint8Array(Math.max(needed, c.inbox.length * 2, 4096));
      grown.set(c.inbox.subarray(0, c.inboxLength));
      c.inbox = grown;
    }
    c.inbox.set(this.chunk.subarray(0, n), c.inboxLength);
    c.inboxLength = needed;
    if (needed > this.peakInbox) this.peakInbox = needed;
  }

  /** Answers every complete request in the inbox, in order, while answers can be written at once. */
  private answerBuffered(c: Client): void {
    while (!c.closing && c.outbox.length === 0 && c.inboxLength > 0) {
      const consumed = this.answerOne(c);
      if (consumed === 0 || c.closed) break;
      c.inbox.copyWithin(0, consumed, c.inboxLength);
      c.inboxLength -= consumed;
      c.scanFrom = 0;
      c.deadline = this.clock() + this.limits.idleMs;
    }
    if (!c.closing && c.inboxLength > this.limits.maxRequestBytes) {
      this.log?.warn(`control: a request over ${this.limits.maxRequestBytes} bytes; closing its connection`);
      this.reply(c, errnoLine(UAPI_ENOMEM));
      c.closing = true;
      c.inbox = new Uint8Array(0);
      c.inboxLength = 0;
    }
  }

  /** Answers the request at the start of the inbox; returns the bytes it took, 0 if incomplete. */
  private answerOne(c: Client): number {
    const buf = c.inbox;
    const len = c.inboxLength;
    const headEnd = buf.subarray(0, Math.min(len, MAX_HEAD_BYTES + 1)).indexOf(NEWLINE);
    if (headEnd < 0) {
      if (len > MAX_HEAD_BYTES) this.hangUp(c, decoder.decode(buf.subarray(0, MAX_HEAD_BYTES)));
      return 0;
    }
    const head = decoder.decode(buf.subarray(0, headEnd));
    let kind: RequestKind;
    try {
      kind = parseRequestHead(head);
    } catch {
      this.hangUp(c, head);
      return 0;
    }
    const bodyStart = headEnd + 1;
    if (kind !== "set") {
      if (len <= bodyStart) return 0;
      if (buf[bodyStart] !== NEWLINE) {
        // wireguard-go: "trailing character in UAPI get". What follows is not a request we can
        // find the start of, so the connection ends after the answer.
        this.reply(c, errnoLine(UAPI_EINVAL));
        c.closing = true;
        return 0;
      }
      this.reply(c, this.callHandler(kind, ""));
      return bodyStart + 1;
    }
    // set=1: the body runs to the first empty line (possibly right away: "set=1\n\n").
    if (len <= bodyStart) return 0;
    let blank = -1;
    if (buf[bodyStart] === NEWLINE) {
      blank = bodyStart;
    } else {
      const from = Math.max(bodyStart, c.scanFrom);
      for (let i = from; i + 1 < len; i++) {
        if (buf[i] === NEWLINE && buf[i + 1] === NEWLINE) {
          blank = i + 1;
          break;
        }
      }
      if (blank < 0) {
        c.scanFrom = Math.max(bodyStart, len - 1);
        return 0;
      }
    }
    const body = decoder.decode(buf.subarray(bodyStart, blank));
    this.reply(c, this.callHandler("set", body));
    return blank + 1;
  }

  private callHandler(kind: RequestKind, body: string): string {
    try {
      if (kind === "get") return this.handler.get();
      if (kind === "status") return this.handler.status();
      return this.handler.set(body);
    } catch (e) {
      this.log?.error(`control: ${kind} failed: ${(e as Error).message}`);
      return errnoLine(UAPI_ENOANO);
    }
  }

  /**
   * An unknown operation: wireguard-go hangs up without a word; we say EPROTO first, so a
   * client (or a person with socat) learns why, then hang up, since what follows cannot be framed.
   */
  private hangUp(c: Client, head: string): void {
    this.log?.debug(`control: invalid UAPI operation ${JSON.stringify(head.slice(0, 40))}; closing`);
    this.reply(c, errnoLine(UAPI_EPROTO));
    c.closing = true;
  }

  private reply(c: Client, text: string): void {
    if (text === "") return;
    c.outbox.push(encoder.encode(text));
    this.flush(c);
  }

  /** Writes what it can; false if the client is gone (and has been dropped). */
  private flush(c: Client): boolean {
    while (c.outbox.length > 0) {
      const head = c.outbox[0];
      const left = head.length - c.outboxOffset;
      const n = writeSome(c.fd, ptr(head, c.outboxOffset), left);
      if (n === -EAGAIN) return true;
      if (n < 0) {
        this.drop(c);
        return false;
      }
      c.deadline = this.clock() + this.limits.idleMs;
      if (n === left) {
        c.outbox.shift();
        c.outboxOffset = 0;
      } else {
        c.outboxOffset += n;
      }
    }
    return true;
  }

  private drop(c: Client): void {
    if (c.closed) return;
    c.closed = true;
    this.clients.delete(c);
    this.watcher.unwatch(c.fd);
    libc.close(c.fd);
    c.outbox.length = 0;
    c.inbox = new Uint8Array(0);
    c.inboxLength = 0;
  }
}
