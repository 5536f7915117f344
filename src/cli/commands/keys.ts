// `wontun genkey`, `wontun pubkey`, `wontun genpsk`: WireGuard keys in the formats `wg` uses, so
// that either tool can make keys for the other. Keys are 32 bytes, printed as 44 characters of
// base64 and a newline.
import { fstatSync } from "node:fs";
import { defineCommand } from "citty";
import { decodeKey, encodeKey, generatePresharedKey, generatePrivateKey, publicKeyOf } from "../../crypto/keys.ts";
import { rejectUnknownOptions } from "../args.ts";
import { UsageError } from "../errors.ts";

const noArgs = {} as const;

function rejectArguments(command: string, rawArgs: string[]): void {
  rejectUnknownOptions(rawArgs, noArgs);
  const extra = rawArgs.find((a) => !a.startsWith("-"));
  if (extra !== undefined) throw new UsageError(`${command} takes no arguments, got "${extra}"`);
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
  process.stdout.write(`${encodeKey(key)}\n`);
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
  async run({ rawArgs }) {
    rejectArguments("pubkey", rawArgs);
    const result = publicKeyFromText(await Bun.stdin.text());
    // The reason never repeats the input: it may be someone's private key.
    if (typeof result !== "string") throw new UsageError(`pubkey: not a WireGuard private key (${result.error})`);
    process.stdout.write(`${result}\n`);
  },
});
