// The CLI's side of the control socket: one request, one answer, with errors a user can act on.
import { createConnection } from "node:net";
import { basename } from "node:path";

/** Why a request to a running wontun failed; `message` is one line for the user. */
export class ControlClientError extends Error {
  constructor(
    /** "not-running" (no socket / stale socket), "denied", "timeout", "closed", or "io". */
    readonly kind: "not-running" | "denied" | "timeout" | "closed" | "io",
    message: string,
  ) {
    super(message);
    this.name = "ControlClientError";
  }
}

/** An answer is complete at its errno line and the blank line after it. */
const ANSWER_END = /(^|\n)errno=-?\d+\n\n$/;

/**
 * Sends `requestText` (e.g. "get=wontun\n\n") to the control socket at `path` and resolves with
 * the whole answer, errno line included. Rejects with ControlClientError.
 */
export function controlRequest(path: string, requestText: string, timeoutMs: number): Promise<string> {
  const iface = basename(path).replace(/\.sock$/, "");
  return new Promise((resolve, reject) => {
    let answer = "";
    let settled = false;
    const socket = createConnection({ path });
    const finish = (error: ControlClientError | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(answer);
    };
    const timer = setTimeout(
      () => finish(new ControlClientError("timeout", `${iface}: no answer from wontun on ${path} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.setEncoding("utf8");
    socket.on("connect", () => socket.write(requestText));
    socket.on("data", (chunk: string) => {
      answer += chunk;
      if (ANSWER_END.test(answer)) finish(null);
    });
    socket.on("end", () =>
      finish(new ControlClientError("closed", `${iface}: wontun on ${path} closed the connection without a complete answer`)),
    );
    socket.on("error", (e: NodeJS.ErrnoException) => finish(describe(e, iface, path)));
  });
}

function describe(e: NodeJS.ErrnoException, iface: string, path: string): ControlClientError {
  switch (e.code) {
    case "ENOENT":
      return new ControlClientError("not-running", `no wontun running for ${iface}: ${path} does not exist`);
    case "ECONNREFUSED":
      return new ControlClientError("not-running", `no wontun running for ${iface}: nothing accepts on ${path} (a stale socket)`);
    case "EACCES":
    case "EPERM":
      return new ControlClientError("denied", `${iface}: permission denied on ${path} (the control socket is root's: run as root)`);
    default:
      return new ControlClientError("io", `${iface}: ${path}: ${e.code ?? "error"}: ${e.message.split("\n")[0]}`);
  }
}
