// The command line, run as a real process: usage errors exit 2 with a one-line reason, config
// errors exit 2 naming file, line and key, --help and --version work everywhere.
import { afterAll, describe, expect, test } from "bun:test";
import { ConfigDir, MAIN } from "../helpers/wontun-node.ts";
import { rewriteLegacyInvocation } from "../../src/cli/main.ts";

const dir = new ConfigDir();
afterAll(() => dir.remove());

async function wontun(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([process.execPath, MAIN, ...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

const GOOD = dir.write("good.conf", "[Interface]\nName=a\nAddress=10.1.0.1/24\n\n[Peer]\nName=b\nEndpoint=192.0.2.9:19988\nAllowedIPs=10.1.0.0/24\n");

describe("wontun CLI", () => {
  test("--version and -v print the version", async () => {
    for (const args of [["--version"], ["-v"], ["up", "--version"], ["conf", "--version"]]) {
      const r = await wontun(...args);
      expect(r.code).toBe(0);
      expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    }
  });

  test("--help works at the top and for each command", async () => {
    const top = await wontun("--help");
    expect(top.code).toBe(0);
    expect(top.stdout + top.stderr).toMatch(/up.*conf|conf.*up/s);
    const up = await wontun("up", "--help");
    expect(up.code).toBe(0);
    expect(up.stdout + up.stderr).toContain("--log-level");
    const conf = await wontun("conf", "-h");
    expect(conf.code).toBe(0);
    expect(conf.stdout + conf.stderr).toContain("--pretty");
  });

  test("no arguments: usage, exit 2", async () => {
    const r = await wontun();
    expect(r.code).toBe(2);
  });

  const usageErrors: [string, string[], RegExp][] = [
    ["unknown command", ["frobnicate"], /Unknown command frobnicate/],
    ["unknown option", ["conf", GOOD, "--bogus"], /unknown option --bogus/],
    ["missing config", ["up"], /Missing required positional argument: CONFIG/],
    ["bad log level", ["up", GOOD, "--log-level", "loud"], /--log-level must be one of/],
    ["bad --to", ["conf", GOOD, "--to", "yaml"], /--to must be json, toml or ini/],
    ["bad fwmark", ["up", GOOD, "--fwmark", "-3"], /--fwmark must be an integer/],
    ["bad interface name", ["up", GOOD, "--interface", "this-name-is-far-too-long"], /longer than 15 bytes/],
    ["--conf without a file", ["--conf"], /--conf needs a config file/],
    ["unknown offload", ["up", GOOD, "--offload", "tso,warp"], /--offload: unknown offload "warp"/],
    ["zero threads", ["up", GOOD, "--threads", "0"], /--threads must be between 1 and 16, got 0/],
    ["too many threads", ["up", GOOD, "--threads", "17"], /--threads must be between 1 and 16, got 17/],
    ["threads not a number", ["up", GOOD, "--threads", "lots"], /--threads must be a number of threads \(1-16\) or "auto", got "lots"/],
  ];
  for (const [what, args, message] of usageErrors) {
    test(`usage error exits 2: ${what}`, async () => {
      const r = await wontun(...args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stdout).toBe("");
    });
  }

  /** `wontun up GOOD ARGS` with the environment variable `name` set to `value`. */
  const upWithEnv = (name: string, value: string, ...args: string[]) => {
    const r = Bun.spawnSync([process.execPath, MAIN, "up", GOOD, ...args], { env: { ...process.env, [name]: value }, stdout: "pipe", stderr: "pipe" });
    return { code: r.exitCode, stderr: r.stderr.toString() };
  };

  test("a bad WONTUN_OFFLOAD is a usage error; --offload overrides it", async () => {
    const run = (value: string, ...args: string[]) => upWithEnv("WONTUN_OFFLOAD", value, ...args);
    const bad = run("fast");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/WONTUN_OFFLOAD: unknown offload "fast"/);
    // With a valid --offload the bad variable is not consulted: the next check (the interface
    // name) is what fails.
    const overridden = run("fast", "--offload", "none", "--interface", "bad/name");
    expect(overridden.code).toBe(2);
    expect(overridden.stderr).not.toContain("WONTUN_OFFLOAD");
    expect(overridden.stderr).toContain("may not contain");
  });

  test("a bad WONTUN_THREADS is a usage error; --threads overrides it", async () => {
    const run = (value: string, ...args: string[]) => upWithEnv("WONTUN_THREADS", value, ...args);
    const bad = run("-2");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/WONTUN_THREADS must be a number of threads/);
    const overridden = run("-2", "--threads", "2", "--interface", "bad/name");
    expect(overridden.code).toBe(2);
    expect(overridden.stderr).not.toContain("WONTUN_THREADS");
    expect(overridden.stderr).toContain("may not contain");
  });

  test("config errors exit 2 with file:line: key: reason on one line", async () => {
    const bad = dir.write("bad.conf", "[Interface]\nName=a\nAddress=10.1.0.1/24\nListenPort=99999\n");
    for (const cmd of ["conf", "up"]) {
      const r = await wontun(cmd, bad);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toContain(`${bad}:4: ListenPort:`);
    }
    const missing = await wontun("conf", `${dir.path}/nope.conf`);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("nope.conf");
    const ext = await wontun("conf", dir.write("x.yaml", "a: 1"));
    expect(ext.code).toBe(2);
    expect(ext.stderr).toContain("unknown config format");
  });

  test("conf prints the original wontun-conf JSON, and --to toml/ini", async () => {
    const json = await wontun("conf", GOOD);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      interface: { name: "a", address: ["10.1.0.1", 24], listen_port: 19988 },
      peers: [{ name: "b", endpoint: "192.0.2.9:19988", allowed_ips: [["10.1.0.0", 24]] }],
    });
    const pretty = await wontun("conf", GOOD, "--pretty");
    expect(pretty.stdout).toContain('\n  "interface": {');
    const toml = await wontun("conf", GOOD, "--to", "toml");
    const back = dir.write("back.toml", toml.stdout);
    expect(JSON.parse((await wontun("conf", back)).stdout)).toEqual(JSON.parse(json.stdout));
    const ini = await wontun("conf", back, "--to", "ini");
    const back2 = dir.write("back2.conf", ini.stdout);
    expect((await wontun("conf", back2)).stdout).toBe(json.stdout);
  });

  test("the original invocation `wontun --conf FILE` means `wontun up FILE`", () => {
    expect(rewriteLegacyInvocation(["--conf", "tun0.conf"])).toEqual(["up", "tun0.conf"]);
    expect(rewriteLegacyInvocation(["--conf=tun0.conf", "--log-level", "debug"])).toEqual(["up", "tun0.conf", "--log-level", "debug"]);
    expect(rewriteLegacyInvocation(["--log-level", "debug", "--conf", "x.conf"])).toEqual(["up", "--log-level", "debug", "x.conf"]);
    expect(rewriteLegacyInvocation(["conf", "x.conf"])).toEqual(["conf", "x.conf"]);
  });
});
