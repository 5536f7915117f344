// Mutators: bytes (flip, set interesting values, insert, delete, duplicate, truncate) and text
// (the same on characters, plus lines, keys and values of "key = value" lines).
import type { Rng } from "./rng.ts";

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x0a, 0x0d, 0x20, 0x3d, 0x5b, 0x5d, 0x22];

/** 1..rounds random byte-level edits of a copy of `input`. */
export function mutateBytes(rng: Rng, input: Uint8Array, rounds = 1 + rng.int(4)): Uint8Array {
  let b: Uint8Array = input.slice();
  for (let r = 0; r < rounds; r++) {
    const at = rng.int(b.length + 1);
    switch (rng.int(8)) {
      case 0: // flip one bit
        if (b.length > 0) b[Math.min(at, b.length - 1)] ^= 1 << rng.int(8);
        break;
      case 1: // an interesting byte
        if (b.length > 0) b[Math.min(at, b.length - 1)] = rng.pick(INTERESTING_BYTES);
        break;
      case 2: // a random byte
        if (b.length > 0) b[Math.min(at, b.length - 1)] = rng.int(256);
        break;
      case 3: { // insert random bytes
        const add = rng.bytes(1 + rng.int(8));
        b = concat(b.subarray(0, at), add, b.subarray(at));
        break;
      }
      case 4: { // delete a range
        const n = 1 + rng.int(Math.max(1, b.length >> 3));
        b = concat(b.subarray(0, at), b.subarray(Math.min(b.length, at + n)));
        break;
      }
      case 5: // truncate
        b = b.slice(0, at);
        break;
      case 6: { // duplicate a range
        const n = 1 + rng.int(16);
        b = concat(b.subarray(0, at), b.subarray(at, at + n), b.subarray(at));
        break;
      }
      default: // a 16- or 32-bit field set to a boundary value
        if (b.length >= 4) {
          const i = rng.int(b.length - 3);
          const v = rng.pick([0, 1, 0xffffffff, 0x7fffffff, 0x80000000, 0xffff, 0x10000]);
          for (let k = 0; k < (rng.chance(0.5) ? 2 : 4); k++) b[i + k] = (v >>> (8 * k)) & 0xff;
        }
    }
  }
  return b;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const INTERESTING_CHARS = ["\0", "\r", "\n", "\t", " ", "=", "[", "]", "\"", "'", "#", ";", ",", "/", ":", "\\", "é", "\uFFFD", "\x1b", "\u2028", "\uD800", "0", "-", "."];

export interface TextDictionary {
  keys: string[];
  values: string[];
  lines: string[];
}

/** 1..rounds edits of `text`: characters, lines, the key or value of a `key = value` line. */
export function mutateText(rng: Rng, text: string, dict: TextDictionary, rounds = 1 + rng.int(4)): string {
  let s = text;
  for (let r = 0; r < rounds; r++) {
    const lines = s.split("\n");
    const li = rng.int(lines.length);
    switch (rng.int(10)) {
      case 0: { // a character replaced, inserted or deleted
        const at = rng.int(s.length + 1);
        const op = rng.int(3);
        const c = rng.pick(INTERESTING_CHARS);
        s = op === 0 ? s.slice(0, at) + c + s.slice(at + 1) : op === 1 ? s.slice(0, at) + c + s.slice(at) : s.slice(0, at) + s.slice(at + 1);
        break;
      }
      case 1: // a line deleted
        lines.splice(li, 1);
        s = lines.join("\n");
        break;
      case 2: // a line duplicated
        lines.splice(li, 0, lines[li]);
        s = lines.join("\n");
        break;
      case 3: { // two lines swapped
        const lj = rng.int(lines.length);
        [lines[li], lines[lj]] = [lines[lj], lines[li]];
        s = lines.join("\n");
        break;
      }
      case 4: // a line from the dictionary inserted
        lines.splice(li, 0, rng.pick(dict.lines));
        s = lines.join("\n");
        break;
      case 5:
      case 6: { // a value replaced
        const eq = lines[li].indexOf("=");
        if (eq >= 0) lines[li] = `${lines[li].slice(0, eq + 1)} ${rng.pick(dict.values)}`;
        s = lines.join("\n");
        break;
      }
      case 7: { // a key replaced (or its case changed)
        const eq = lines[li].indexOf("=");
        if (eq >= 0) {
          const key = rng.chance(0.2) ? flipCase(rng, lines[li].slice(0, eq)) : rng.pick(dict.keys);
          lines[li] = `${key} ${lines[li].slice(eq)}`;
        }
        s = lines.join("\n");
        break;
      }
      case 8: { // a range of characters deleted or duplicated
        const at = rng.int(s.length + 1);
        const n = 1 + rng.int(20);
        s = rng.chance(0.5) ? s.slice(0, at) + s.slice(at + n) : s.slice(0, at) + s.slice(at, at + n) + s.slice(at);
        break;
      }
      default: // line endings or a trailing newline changed
        s = rng.chance(0.5) ? s.replaceAll("\n", "\r\n") : s.endsWith("\n") ? s.slice(0, -1) : `${s}\n`;
    }
  }
  return s;
}

function flipCase(rng: Rng, s: string): string {
  return [...s].map((c) => (rng.chance(0.5) ? c.toUpperCase() : c.toLowerCase())).join("");
}
