// Argument reading (issue 11, defects 4, 7, 8 and 10): every bad or negated form of an option is a
// usage error with a plain message, extra arguments are errors, the causes named are the real ones.
import { afterAll, describe, expect, test } from "bun:test";
import { ConfigDir, MAIN } from "../helpers/wontun-node.ts";
import { hasFlag, parseCommandLine, parseIntegerOption } from "../../src/cli/args.ts";
import { UsageError } from "../../src/cli/errors.ts";
import { upArgs } from "../../src/cli/commands/up.ts";
import { confArgs } from "../../src/cli/commands/conf.ts";
import { forcedAeadBackend } from "../../src/crypto/aead.ts";
import { validateInterfaceName } from "../../src/sys/tun.ts";
import { summarizeList } from "../../src/text.ts";

const dir = new ConfigDir();
afterAll(() => dir.remove());
const GOOD = dir.write("good.conf", "[Interface]\nName=a\nAddress=10.1.0.1/24\n\n[Peer]\nName=b\nAllowedIPs=10.1.0.0/24\n");

function wontun(args: string[], opts: { env?: Record<string, string>; stdin?: string | Bun.BunFile } = {}) {
  const stdin = typeof opts.stdin === "string" ? new TextEncoder().encode(opts.stdin) : opts.stdin ?? "ignore";
  const r = Bun.spawnSync([process.execPath, MAIN, ...args], { env: { ...process.env, ...opts.env }, stdin, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

function usageMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof UsageError) return err.message;
    throw err;
  }
  throw new Error("expected a UsageError");
}

describe("parseCommandLine", () => {
  test("values, defaults and booleans", () => {
    expect(parseCommandLine("up", ["a.conf", "--interface", "wt0", "--fwmark=0x10"], upArgs)).toEqual(
      Object.assign(Object.create(null), { config: "a.conf", interface: "wt0", fwmark: "0x10", "log-level": "info" }));
    const conf = parseCommandLine("conf", ["--pretty", "a.conf", "--to", "ini"], confArgs);
    expect([conf.pretty, conf.to, conf.config]).toEqual([true, "ini", "a.conf"]);
    expect(parseCommandLine("conf", ["a.conf", "--no-pretty"], confArgs).pretty).toBe(false);
    expect(parseCommandLine("up", ["--", "-odd.conf"], upArgs).config).toBe("-odd.conf");
  });

  test("negated string options are usage errors naming the option", () => {
    for (const name of ["interface", "offload", "fwmark", "log-level"]) {
      expect(usageMessage(() => parseCommandLine("up", ["a.conf", `--no-${name}`], upArgs)))
        .toBe(`--${name} takes a value; it has no --no-${name} form`);
    }
    expect(usageMessage(() => parseCommandLine("conf", ["a.conf", "--no-to"], confArgs))).toContain("--to takes a value");
  });

  test("a missing or empty value, or one that looks like an option, is 'needs a value'", () => {
    for (const args of [["--offload"], ["--offload="], ["--interface", "-h"], ["--interface", "--help"], ["--log-level", "--offload", "none"]]) {
      expect(usageMessage(() => parseCommandLine("up", ["a.conf", ...args], upArgs))).toMatch(/^--[a-z-]+ needs a value$/);
    }
    // A negative number is a value, for the option's own check to reject.
    expect(parseCommandLine("up", ["a.conf", "--fwmark", "-3"], upArgs).fwmark).toBe("-3");
  });

  test("extra arguments, repeated options, values on booleans, unknown options", () => {
    expect(usageMessage(() => parseCommandLine("up", ["a.conf", "b.conf"], upArgs))).toBe('up takes CONFIG and nothing more, got "b.conf"');
    expect(usageMessage(() => parseCommandLine("up", ["a.conf", "--interface", "x", "--interface", "y"], upArgs))).toContain("more than once");
    expect(usageMessage(() => parseCommandLine("conf", ["a.conf", "--pretty=yes"], confArgs))).toContain("--pretty takes no value");
    expect(usageMessage(() => parseCommandLine("conf", ["a.conf", "--\x1b[2J"], confArgs))).toBe("unknown option --\\x1b[2J");
    expect(usageMessage(() => parseCommandLine("genkey", ["x"], {}))).toBe('genkey takes no arguments, got "x"');
  });

  test("-h after an option that takes a value is that option's value, not a help request", () => {
    expect(hasFlag(["up", "a.conf", "--interface", "-h"], ["--help", "-h"], upArgs)).toBe(false);
    expect(hasFlag(["up", "a.conf", "-h"], ["--help", "-h"], upArgs)).toBe(true);
    expect(hasFlag(["up", "a.conf", "--interface=x", "-h"], ["--help", "-h"], upArgs)).toBe(true);
  });

  test("--fwmark off means 0, as FwMark = off does", () => {
    expect(parseIntegerOption("fwmark", "off", 0, 0xffffffff, { off: true })).toBe(0);
    expect(parseIntegerOption("fwmark", "0x20", 0, 0xffffffff, { off: true })).toBe(32);
    expect(usageMessage(() => parseIntegerOption("fwmark", "of", 0, 10, { off: true }))).toBe('--fwmark must be an integer 0-10 or "off", got "of"');
  });
});

describe("the CLI, run", () => {
  const cases: [string[], RegExp][] = [
    [["up", GOOD, "--no-interface"], /--interface takes a value; it has no --no-interface form/],
    [["up", GOOD, "--no-offload"], /--offload takes a value/],
    [["up", GOOD, "--no-fwmark"], /--fwmark takes a value/],
    [["up", GOOD, "--no-log-level"], /--log-level takes a value/],
    [["conf", GOOD, "--no-to"], /--to takes a value/],
    [["up", GOOD, GOOD], /up takes CONFIG and nothing more/],
    [["up", GOOD, "--interface", "-h"], /--interface needs a value/],
    [["up", GOOD, "--offload"], /--offload needs a value/],
    [["--conf="], /--conf needs a config file/],
    [["--conf", "--log-level", "debug"], /--conf needs a config file/],
    [["up", GOOD, "--interface", "all"], /interface name "all" is reserved by the kernel/],
    [["up", GOOD, "--interface", "default"], /interface name "default" is reserved by the kernel/],
    [["constructor"], /Unknown command constructor/],
    [["__proto__"], /Unknown command __proto__/],
  ];
  for (const [args, message] of cases) {
    test(`${args.map((a) => a.replace(GOOD, "good.conf")).join(" ")}: exit 2, one line`, () => {
      const r = wontun(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).not.toMatch(/TypeError|is not a function|Received type|got "false"/);
    });
  }

  test("WONTUN_AEAD naming no backend is a usage error, exit 2", () => {
    expect(forcedAeadBackend("rot13")).toEqual({ error: expect.stringContaining('not "rot13"') });
    expect(forcedAeadBackend(" Noble ")).toBe("noble");
    expect(forcedAeadBackend(undefined)).toBeNull();
    const r = wontun(["up", GOOD], { env: { WONTUN_AEAD: "rot13" } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("WONTUN_AEAD must be one of");
  });

  test("pubkey stops reading at 1 KiB of input (a stdin that never ends is not a key)", () => {
    const r = wontun(["pubkey"], { stdin: Bun.file("/dev/zero") });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("the input is longer than 1024 bytes");
    const long = wontun(["pubkey"], { stdin: "A".repeat(5000) });
    expect(long.code).toBe(2);
  });
});

describe("kernel rules and messages", () => {
  test("interface names the kernel refuses are refused before the kernel is asked", () => {
    for (const name of ["all", "default", ".", "..", "a b", "a/b", "a:b", ""]) expect(validateInterfaceName(name)).not.toBeNull();
    for (const name of ["wg0", "allx", "defaults", "tun-0"]) expect(validateInterfaceName(name)).toBeNull();
  });

  test("summarizeList keeps a start-up line short", () => {
    expect(summarizeList(["a", "b"], 3)).toBe("a, b");
    expect(summarizeList(["a", "b", "c", "d", "e"], 3)).toBe("a, b, c and 2 more");
  });
});
