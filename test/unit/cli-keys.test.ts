// `wontun genkey`, `wontun pubkey`, `wontun genpsk`, run as real processes: the same formats as
// `wg genkey`, `wg pubkey`, `wg genpsk`, checked against `wg` itself when it is installed.
import { describe, expect, test } from "bun:test";
import { MAIN } from "../helpers/wontun-node.ts";
import { loadConfig } from "../../src/config/load.ts";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(cmd: string[], stdin?: string): Promise<Run> {
  const proc = Bun.spawn(cmd, {
    stdout: "pipe",
    stderr: "pipe",
    stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin),
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}

const wontun = (args: string[], stdin?: string) => run([process.execPath, MAIN, ...args], stdin);
const WG = Bun.which("wg");
const KEY_LINE = /^[A-Za-z0-9+/]{43}=\n$/;

function bytesOf(line: string): Uint8Array {
  return new Uint8Array(Buffer.from(line.trim(), "base64"));
}

describe("wontun genkey / pubkey / genpsk", () => {
  test("genkey prints a clamped 32-byte private key in base64 and a newline, different each time", async () => {
    const a = await wontun(["genkey"]);
    const b = await wontun(["genkey"]);
    for (const r of [a, b]) {
      expect(r.code).toBe(0);
      expect(r.stderr).toBe("");
      expect(r.stdout).toMatch(KEY_LINE);
      const key = bytesOf(r.stdout);
      expect(key.length).toBe(32);
      // Clamped as Curve25519 wants (and as wg genkey does): low 3 bits clear, bit 255 clear, bit 254 set.
      expect(key[0] & 7).toBe(0);
      expect(key[31] & 0x80).toBe(0);
      expect(key[31] & 0x40).toBe(0x40);
    }
    expect(a.stdout).not.toBe(b.stdout);
  });

  test("genpsk prints 32 random bytes in base64", async () => {
    const a = await wontun(["genpsk"]);
    const b = await wontun(["genpsk"]);
    expect(a.code).toBe(0);
    expect(a.stdout).toMatch(KEY_LINE);
    expect(bytesOf(a.stdout).length).toBe(32);
    expect(a.stdout).not.toBe(b.stdout);
  });

  test("pubkey of a known key (computed with wg pubkey)", async () => {
    const r = await wontun(["pubkey"], "gJnJwhUM+UFTfh+bSADsxHKfFOxLZj4+Wqg7aWPlBHc=\n");
    expect(r).toEqual({ code: 0, stdout: "6NaISLXHYLiQk6rJUDRWpZKubW4VIm9yLxM2TqJELXc=\n", stderr: "" });
    // Without the newline, and with surrounding whitespace, too.
    expect((await wontun(["pubkey"], "  gJnJwhUM+UFTfh+bSADsxHKfFOxLZj4+Wqg7aWPlBHc=\t\r\n")).stdout)
      .toBe("6NaISLXHYLiQk6rJUDRWpZKubW4VIm9yLxM2TqJELXc=\n");
  });

  test.skipIf(!WG)("wontun genkey | wontun pubkey equals wg pubkey; wg accepts wontun's keys and vice versa", async () => {
    for (let i = 0; i < 3; i++) {
      const priv = (await wontun(["genkey"])).stdout;
      const ours = await wontun(["pubkey"], priv);
      const theirs = await run([WG!, "pubkey"], priv);
      expect(theirs.code).toBe(0);
      expect(ours.code).toBe(0);
      expect(ours.stdout).toBe(theirs.stdout);
    }
    const wgPriv = (await run([WG!, "genkey"])).stdout;
    expect((await wontun(["pubkey"], wgPriv)).stdout).toBe((await run([WG!, "pubkey"], wgPriv)).stdout);
    // A wontun preshared key is something wg reads as a key (wg pubkey takes any 32 bytes).
    const psk = (await wontun(["genpsk"])).stdout;
    expect((await run([WG!, "pubkey"], psk)).code).toBe(0);
  });

  test("pubkey with anything but a private key exits 2 without echoing the input", async () => {
    const inputs = [
      "garbage\n",
      "",
      "gJnJwhUM+UFTfh+bSADsxHKfFOxLZj4+Wqg7aWPlBHc\n", // 43 characters
      "gJnJwhUM+UFTfh+bSADsxHKfFOxLZj4+Wqg7aWPlBHc==\n", // 45 characters
      `${Buffer.alloc(31, 1).toString("base64")}\n`, // base64 of 31 bytes
      "gJnJwhUM+UFTfh+bSADsxHKfFOxLZj4+Wqg7aWPlBHc= extra\n",
    ];
    for (const input of inputs) {
      const r = await wontun(["pubkey"], input);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr).toStartWith("wontun: pubkey: not a WireGuard private key");
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      if (input.trim().length > 8) expect(r.stderr).not.toContain(input.trim());
    }
  });

  test("--help for each command; extra arguments and unknown options are usage errors", async () => {
    for (const [cmd, words] of [["genkey", "private key"], ["pubkey", "stdin"], ["genpsk", "preshared key"]]) {
      const help = await wontun([cmd, "--help"]);
      expect(help.code).toBe(0);
      expect(help.stdout + help.stderr).toContain(`wontun ${cmd}`);
      expect(help.stdout + help.stderr).toContain(words);
      const extra = await wontun([cmd, "x"]);
      expect(extra.code).toBe(2);
      expect(extra.stderr).toContain(`${cmd} takes no arguments`);
      const option = await wontun([cmd, "--bogus"]);
      expect(option.code).toBe(2);
      expect(option.stderr).toContain("unknown option --bogus");
    }
    const top = await wontun(["--help"]);
    for (const cmd of ["genkey", "pubkey", "genpsk"]) expect(top.stdout + top.stderr).toContain(cmd);
  });
});

describe("WireGuard configs on the command line", () => {
  const FIXTURE = `${import.meta.dir}/../fixtures/config/wg0.conf`;

  test("conf prints a wg-quick config without warnings (DNS, hooks, Table, SaveConfig are acted on by up), output parseable by wg's own key tools", async () => {
    const r = await wontun(["conf", FIXTURE]);
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout);
    expect(json.interface.public_key).toBe("6NaISLXHYLiQk6rJUDRWpZKubW4VIm9yLxM2TqJELXc=");
    // wg-quick's keys are read into the config `wontun up` acts on, so nothing is "ignored" any more.
    expect(r.stderr).toBe("");
    const host = loadConfig(FIXTURE, { wireguard: true }).interface.host!;
    expect(host.dns).toEqual(["10.8.0.53", "fd08::53"]);
    expect(host.dnsSearch).toEqual(["corp.example"]);
    expect(host.postUp).toEqual([
      "iptables -A FORWARD -i %i -j ACCEPT; iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE",
      "ip6tables -A FORWARD -i %i -j ACCEPT",
    ]);
    expect(host.postDown).toEqual(["iptables -D FORWARD -i %i -j ACCEPT; iptables -t nat -D POSTROUTING -o eth0 -j MASQUERADE"]);
    expect(host.table).toBe("auto");
    expect(host.saveConfig).toBe(false);
    if (WG) {
      const derived = await run([WG, "pubkey"], `${json.interface.private_key}\n`);
      expect(derived.stdout.trim()).toBe(json.interface.public_key);
    }
  });
});
