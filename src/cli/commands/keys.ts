// `wontun genkey`, `wontun pubkey`, `wontun genpsk`: WireGuard keys in the formats `wg` uses, so
// that either tool can make keys for the other. Keys are 32 bytes, printed as 44 characters of
// base64 and a newline.
import { fstatSync, readSync } from "node:fs";
import { defineCommand } from "citty";
import { decodeKey, encodeKey, generatePresharedKey, generatePrivateKey, publicKeyOf } from "../../crypto/keys.ts";
import { parseCommandLine } from "../args.ts";
import { UsageError } from "../errors.ts";
import { writeOut } from "../output.ts";

const noArgs = {} as const;

function rejectArguments(command: string, rawArgs: string[]): void {
  parseCommandLine(command, rawArgs, noArgs);
}

/** Like wg: a secret written to a file others can read deserves a warning (on stderr). */
function warnIfWorldReadable(): void {
  try {
    const stat = fstatSync(1);
    if (stat.isFile() && (stat.mode & 0o007) !== 0) {
      console.error("wontun: warning: writing a secret key to a world-accessible file; consider `umask 077` and trying again");
    }
  } catch {
    // stdout is not something fstat can look at: nothing to warn about.
  }
}

function printKey(key: Uint8Array): void {
  writeOut(`${encodeKey(key)}\n`);
}

/** More than any key line with its whitespace; stdin longer than this is not a key (e.g. /dev/zero). */
export const MAX_KEY_INPUT = 1024;

/** All of stdin up to `max` bytes; throws a UsageError when there is more. */
export function readBoundedStdin(max: number, fd = 0): string {
  const buf = new Uint8Array(max + 1);
  let length = 0;
  while (length < buf.length) {
    let n: number;
    try {
      n = readSync(fd, buf, length, buf.length - length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EAGAIN" || code === "EWOULDBLOCK") {
        Bun.sleepSync(1); // a non-blocking stdin with nothing yet: wait for the writer
        continue;
      }
      if (code === "EOF") break;
      throw new Error(`cannot read stdin: ${code ?? (err as Error).message}`);
    }
    if (n === 0) break;
    length += n;
  }
  if (length > max) throw new UsageError(`pubkey: the input is longer than ${max} bytes; expected one base64 private key`);
  const text = new TextDecoder().decode(buf.subarray(0, length));
  buf.fill(0);
  return text;
}

export const genkeyCommand = defineCommand({
  meta: { name: "genkey", description: "Print a new random WireGuard private key (base64), as `wg genkey` does" },
  args: noArgs,
  run({ rawArgs }) {
    rejectArguments("genkey", rawArgs);
    warnIfWorldReadable();
    printKey(generatePrivateKey());
  },
});

export const genpskCommand = defineCommand({
  meta: { name: "genpsk", description: "Print a new random WireGuard preshared key (base64), as `wg genpsk` does" },
  args: noArgs,
  run({ rawArgs }) {
    rejectArguments("genpsk", rawArgs);
    warnIfWorldReadable();
    printKey(generatePresharedKey());
  },
});

/** The public key for a private key given as text (surrounding whitespace allowed), or a reason. */
export function publicKeyFromText(text: string): string | { error: string } {
  const privateKey = decodeKey(text.trim());
  if (typeof privateKey === "string") return { error: privateKey.replace(/^not a WireGuard key:\s*/, "") };
  return encodeKey(publicKeyOf(privateKey));
}

export const pubkeyCommand = defineCommand({
  meta: {
    name: "pubkey",
    description: "Read a WireGuard private key (base64) on stdin and print its public key, as `wg pubkey` does",
  },
  args: noArgs,
  run({ rawArgs }) {
    rejectArguments("pubkey", rawArgs);
    const result = publicKeyFromText(readBoundedStdin(MAX_KEY_INPUT));
    // The reason never repeats the input: it may be someone's private key.
    if (typeof result !== "string") throw new UsageError(`pubkey: not a WireGuard private key (${result.error})`);
    writeOut(`${result}\n`);
  },
});
