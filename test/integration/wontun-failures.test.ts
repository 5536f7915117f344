// What a user sees when things are wrong: nothing half set up, a clear reason, the right status.
import { describe, expect, test } from "bun:test";
import { canRunIntegration } from "../helpers/netns.ts";
import { CLIENT_CONF, ConfigDir, SERVER_CONF, startWontun, stopWontun, wontunCommand, labPerTest } from "../helpers/wontun-node.ts";

const env = labPerTest();

async function links(host: { run: (c: string[]) => Promise<{ stdout: string }> }): Promise<string> {
  return (await host.run(["ip", "-o", "link", "show"])).stdout;
}

describe.skipIf(!canRunIntegration)("wontun up: failures", () => {
  test("a config with errors exits 2 with one line naming file:line and key, and creates no interface", async () => {
    const lab = await env.lab("wontun-badconf");
    const dir = env.dir();
    const host = await lab.host("h");
    const cases = [
      ["[Interface]\nName=a\nAddress=10.1.0.1/33\n", ":3: Address:"],
      ["[Interface]\nName=a\nAddress=10.1.0.1/24\n[Peer]\nName=b\nEndpoint=192.0.2.1\n", ":6: Endpoint:"],
      ["[Interface]\nAddress=10.1.0.1/24\n", "Name"],
      ["[Interface]\nName=a\nAddress=10.1.0.1/24\nMTU=70000\n", ":4: MTU:"],
      ["Name=a\n", ":1:"],
    ];
    for (const [i, [text, where]] of cases.entries()) {
      const file = dir.write(`wtbad${i}.conf`, text);
      const r = await host.run([...wontunCommand(), "up", file]);
      expect(r.code).toBe(2);
      const lines = r.stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(file);
      expect(lines[0]).toContain(where);
      expect(await links(host)).not.toContain(`wtbad${i}`);
    }
  });

  test("a UDP port held by another program: exit 1, clear reason, interface removed", async () => {
    const lab = await env.lab("wontun-port");
    const dir = env.dir();
    const host = await lab.host("h");
    const holder = host.spawn(["nc", "-u", "-l", "19988"]);
    await Bun.sleep(300);
    const file = dir.write("wt0.conf", SERVER_CONF);
    const r = await host.run([...wontunCommand(), "up", file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("port 19988");
    expect(r.stderr).toContain("address already in use");
    expect(await links(host)).not.toContain("wt0");
    holder.kill();
  });

  test("a second daemon on the same port is refused, the first keeps working", async () => {
    const lab = await env.lab("wontun-twice");
    const dir = env.dir();
    const host = await lab.host("h");
    const first = await startWontun(host, dir.write("wt0.conf", SERVER_CONF));
    const r = await host.run([...wontunCommand(), "up", dir.write("wt1.conf", CLIENT_CONF)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("address already in use");
    expect(await links(host)).not.toContain("wt1");
    expect(first.proc.exitCode).toBeNull();
    expect(await stopWontun(first)).toBe(0);
  });

  test("the same interface twice: a clear EBUSY reason", async () => {
    const lab = await env.lab("wontun-busy");
    const dir = env.dir();
    const host = await lab.host("h");
    const first = await startWontun(host, dir.write("wt0.conf", SERVER_CONF));
    const other = dir.write("other.conf", SERVER_CONF.replace("[Interface]", "[Interface]\nListenPort=20000"));
    const r = await host.run([...wontunCommand(), "up", other, "--interface", "wt0"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/wt0.*(busy|in use)/);
    expect(await stopWontun(first)).toBe(0);
  });
});
