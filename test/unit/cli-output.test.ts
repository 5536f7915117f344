// What the commands print reaches its reader whole, or the command fails (issue 11, defect 1), and
// --help into a pipe has no colours (defect 10).
import { afterAll, describe, expect, test } from "bun:test";
import { ConfigDir, MAIN } from "../helpers/wontun-node.ts";

const dir = new ConfigDir();
afterAll(() => dir.remove());

/** Runs a shell line with $W set to the wontun command. */
function sh(line: string, stdin?: string): { code: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync(["sh", "-c", line], {
    env: { ...process.env, W: `${process.execPath} ${MAIN}` },
    stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** A hub with 1000 peers: its JSON is about 100 KB, more than a pipe holds. */
function hubConfig(): string {
  const peers = Array.from({ length: 1000 }, (_, i) =>
    `[Peer]\nName=peer-${i}\nEndpoint=192.0.2.${1 + (i % 250)}:${20000 + i}\nAllowedIPs=10.${i >> 8}.${i & 255}.0/24\n`);
  return `[Interface]\nName=hub\nAddress=172.16.0.1/16\n\n${peers.join("\n")}`;
}

describe("output", () => {
  const big = dir.write("big.conf", hubConfig());

  for (const to of ["json", "toml", "ini"]) {
    test(`conf --to ${to} into a slow pipe arrives whole`, () => {
      const file = sh(`$W conf '${big}' --to ${to} > '${dir.path}/out.${to}'`);
      expect(file.code).toBe(0);
      const expected = Bun.file(`${dir.path}/out.${to}`).size;
      expect(expected).toBeGreaterThan(65536);
      // The reader starts late, so the pipe is full when wontun is done: it must wait, not exit.
      const piped = sh(`$W conf '${big}' --to ${to} | (sleep 0.3; wc -c)`);
      expect(Number(piped.stdout.trim())).toBe(expected);
    });
  }

  test("the JSON read through a pipe parses", () => {
    const piped = sh(`$W conf '${big}' | (sleep 0.3; cat)`);
    expect(JSON.parse(piped.stdout).peers).toHaveLength(1000);
  });

  for (const [what, line] of [
    ["genkey", "$W genkey > /dev/full"],
    ["genpsk", "$W genpsk > /dev/full"],
    ["pubkey", "$W genkey | $W pubkey > /dev/full"],
    ["conf", `$W conf '${big}' > /dev/full`],
    ["--version", "$W --version > /dev/full"],
  ] as const) {
    test(`${what} into /dev/full fails with exit 1 and one line`, () => {
      const r = sh(line);
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split("\n")).toEqual(["wontun: cannot write the output: ENOSPC: no space left on device"]);
    });
  }

  test("--help into a pipe has no ANSI colours, and the text is complete", () => {
    for (const args of ["--help", "up --help", "conf -h"]) {
      const r = sh(`$W ${args} | cat`);
      expect(r.code).toBe(0);
      expect(r.stdout).not.toContain("\x1b");
      expect(r.stdout).toContain("USAGE");
    }
  });
});
