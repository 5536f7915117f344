// A raw client of the WireGuard cross-platform userspace API (the unix control socket), for
// timing requests without `wg` in the way: one connection per request, as `wg` itself does.

export interface UapiAnswer {
  /** Connect + request + the whole answer, in milliseconds. */
  ms: number;
  /** The answer's size in bytes, including its final "errno=N\n\n". */
  bytes: number;
  text: string;
  errno: number;
}

/** The answer ends with "errno=N" and an empty line; the server may keep the connection open. */
const ANSWER_END = /(?:^|\n)errno=(-?\d+)\n\n$/;

/** Sends `request` (e.g. "get=1\n\n") to the control socket at `path` and reads the whole answer. */
export function uapiRequest(path: string, request: string, timeoutMs = 10_000): Promise<UapiAnswer> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let size = 0;
    let tail = "";
    let settled = false;
    const t0 = performance.now();
    const finish = (err: Error | null, socket?: { end(): void }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket?.end();
      if (err) return reject(err);
      const ms = performance.now() - t0;
      const text = Buffer.concat(chunks).toString("utf8");
      resolve({ ms, bytes: size, text, errno: Number(ANSWER_END.exec(text)?.[1] ?? Number.NaN) });
    };
    const timer = setTimeout(() => finish(new Error(`no complete answer from ${path} within ${timeoutMs} ms`)), timeoutMs);
    Bun.connect({
      unix: path,
      socket: {
        open(socket) {
          socket.write(request);
        },
        data(socket, data) {
          chunks.push(new Uint8Array(data));
          size += data.length;
          // Only the last few bytes can hold the end marker; keep them across chunk borders.
          tail = (tail + data.toString("latin1")).slice(-32);
          if (ANSWER_END.test(tail)) finish(null, socket);
        },
        close() {
          finish(size > 0 && ANSWER_END.test(tail) ? null : new Error(`${path} closed the connection after ${size} bytes`));
        },
        error(_socket, err) {
          finish(err);
        },
        connectError(_socket, err) {
          finish(err);
        },
      },
    }).catch((err) => finish(err as Error));
  });
}
