// The first line of a UAPI request: which operation it is. A request is that line, for `set` the
// body lines, and a blank line: "get=1\n\n", "get=wontun\n\n", "set=1\nkey=value\n…\n\n".
import { ControlError, UAPI_EPROTO } from "./model.ts";

/** get = `get=1` (WireGuard's), status = `get=wontun` (wontun's extension), set = `set=1`. */
export type RequestKind = "get" | "status" | "set";

/**
 * `line` is the first line without its "\n". Throws ControlError(EPROTO) for anything else:
 * wireguard-go answers an unknown operation by hanging up without an errno line, and so does the
 * control server.
 */
export function parseRequestHead(line: string): RequestKind {
  switch (line) {
    case "get=1": return "get";
    case "get=wontun": return "status";
    case "set=1": return "set";
    default: {
      const shown = line.length > 40 ? `${line.slice(0, 40)}…` : line;
      throw new ControlError(UAPI_EPROTO, `invalid UAPI operation: "${shown}"`);
    }
  }
}
