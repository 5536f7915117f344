// A short run of every fuzz target (test/fuzz, `npm run fuzz` for long runs), fixed seed, and the
// inputs earlier runs found, each kept as a regression test.
import { describe, expect, test } from "bun:test";
import { formatFailure, runTarget } from "../fuzz/engine.ts";
import { TARGETS } from "../fuzz/targets/index.ts";
import { configTarget } from "../fuzz/targets/config.ts";
import { Rng, iterationSeed } from "../fuzz/rng.ts";
import { parseConfigText } from "../../src/config/load.ts";
import { configFileText } from "../../src/host/save-config.ts";
import { toToml } from "../../src/config/dump.ts";
import { formatStatusResponse, parseStatusResponse } from "../../src/control/uapi-get.ts";
import { parseSetRequest } from "../../src/control/uapi-set.ts";
import { ControlError, type DeviceStatus } from "../../src/control/model.ts";

const ITERATIONS = 150;

describe("fuzz: short run, seed 1", () => {
  for (const target of TARGETS) {
    test(`${target.name}: ${ITERATIONS} iterations`, () => {
      const result = runTarget(target, { seed: 1, iterations: ITERATIONS });
      if (result.failure) throw new Error(formatFailure(result.failure));
      expect(result.iterations).toBe(ITERATIONS);
    });
  }

  test("the same seed draws the same inputs; another seed others", () => {
    const draw = (seed: number) => configTarget.show(configTarget.generate(new Rng(iterationSeed(seed, "config", 0))));
    expect(draw(7)).toBe(draw(7));
    expect(draw(7)).not.toBe(draw(8));
  });

  test("a failure names target, seed and iteration, and is shrunk", () => {
    const result = runTarget({ ...configTarget, check: (input) => { if (input.text.includes("Address")) throw new Error("boom"); } }, { seed: 3, iterations: 50 });
    expect(result.failure).not.toBeNull();
    const text = formatFailure(result.failure!);
    expect(text).toContain("target=config seed=3 iteration=");
    expect(result.failure!.shrunk.length).toBeLessThan(result.failure!.input.length);
    expect(result.failure!.shrunk).toContain("Address");
  });
});

describe("fuzz findings, kept", () => {
  test("a hook command with a DEL character: SaveConfig's TOML loads again (it wrote a raw U+007F, which TOML refuses)", () => {
    const ini = "[Interface]\nPrivateKey=gJnJwhUM+UFTfh+bSADsxHKfFOxLZj4+Wqg7aWPlBHc=\nAddress=10.0.0.4/32\nPostUp=echo \x7f\nTable=a\x7fb\n";
    const config = parseConfigText(ini, "f.conf", "ini", { wireguard: true });
    const toml = configFileText(config, "f.toml");
    expect(toml).not.toContain("\x7f");
    const again = parseConfigText(toml, "f.toml", "toml", { wireguard: true });
    expect(again.interface.host?.postUp).toEqual(["echo \x7f"]);
    expect(again.interface.host?.table).toBe("a\x7fb");
    expect(toToml(config)).not.toContain("\x7f");
  });
});

describe("fuzz findings, kept (control plane)", () => {
  test("a peer endpoint learnt with port 0 reads back from the status answer (one such datagram broke `wontun show`)", () => {
    const status: DeviceStatus = {
      mode: "wontun", interfaceName: "tun0", privateKey: null, publicKey: null, name: "server", listenPort: 19988, fwmark: 0, drops: {},
      peers: [{
        id: 1, name: "p", publicKey: null, presharedKey: null, endpoint: { address: new Uint8Array([192, 0, 2, 1]), port: 0 },
        persistentKeepalive: 0, allowedIps: [], lastHandshake: { sec: 0, nsec: 0 }, rxBytes: 0, txBytes: 0, state: "Connected",
      }],
    };
    const text = formatStatusResponse(status);
    expect(text).toContain("endpoint=192.0.2.1:0\n");
    const parsed = parseStatusResponse(text);
    expect(parsed.peers[0].endpoint?.port).toBe(0);
    expect(formatStatusResponse(parsed)).toBe(text);
    // A set request still may not name port 0.
    expect(() => parseSetRequest("name=p\nendpoint=192.0.2.1:0\n", "wontun")).toThrow(ControlError);
  });
});
