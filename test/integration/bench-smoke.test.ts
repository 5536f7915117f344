// The benchmark harness in its smallest form: `bun bench/run.ts --quick` with bare veth and one
// tunnel kind (1 run x 1 s per figure), writing to a temporary directory. Checks that it exits
// 0, writes well-formed JSON with a finite figure for every test, a chart, and leaves no
// namespace behind. It measures nothing worth reading; `npm run bench` does.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canRunIntegration } from "../helpers/netns.ts";
import { COMPILED, REPO } from "../helpers/wontun-node.ts";

const ready = canRunIntegration && existsSync(COMPILED) && Bun.which("iperf3") !== null && Bun.which("ping") !== null;
const out = mkdtempSync(join(tmpdir(), "wontun-bench-smoke-"));

afterAll(() => rmSync(out, { recursive: true, force: true }));

async function labNamespaces(): Promise<string[]> {
  const r = Bun.spawnSync(["ip", "netns", "list"]);
  return r.stdout.toString().split("\n").map((l) => l.split(" ")[0]).filter(Boolean);
}

describe.skipIf(!ready)("bench harness (smoke)", () => {
  test("--quick --only veth,wontun-plain writes valid results", async () => {
    const proc = Bun.spawn(
      [process.execPath, join(REPO, "bench/run.ts"), "--quick", "--only", "veth,wontun-plain", "--out", out],
      { cwd: REPO, stdout: "pipe", stderr: "pipe" },
    );
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    if (code !== 0) console.error(stdout, stderr);
    expect(code).toBe(0);
    expect(stdout).toContain("TCP, 1 flow a→b");

    const report = JSON.parse(readFileSync(join(out, "latest.json"), "utf8"));
    expect(report.schema).toBe("wontun-bench/1");
    expect(report.kinds.map((k: { id: string }) => k.id)).toEqual(["veth", "wontun-plain"]);
    for (const kind of ["veth", "wontun-plain"]) {
      const r = report.results[kind];
      for (const metric of ["tcp_fwd", "tcp_rev", "tcp_p4", "udp64_kpps", "ping_median", "ping_p90"]) {
        expect(r[metric].runs).toHaveLength(1);
        expect(Number.isFinite(r[metric].median)).toBe(true);
        expect(r[metric].median).toBeGreaterThan(0);
      }
    }
    const tunnel = report.results["wontun-plain"];
    for (const metric of ["cpu_a", "cpu_b", "idle_cpu", "rss_peak"]) expect(Number.isFinite(tunnel[metric].median)).toBe(true);
    expect(tunnel.rss_peak.median).toBeGreaterThan(1);
    expect(report.ratios["wontun-plain"].tcp_fwd.vsVeth).toBeGreaterThan(0);

    // The timestamped copy is the same report; the chart is an SVG.
    const files = Bun.spawnSync(["ls", out]).stdout.toString().split("\n").filter((f) => /^\d{4}-.*\.json$/.test(f));
    expect(files).toHaveLength(1);
    const svg = readFileSync(join(out, "latest.svg"), "utf8");
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg.trim().endsWith("</svg>")).toBe(true);

    // Nothing left behind: none of the run's namespaces (it names its lab on stderr).
    const id = /\blab (wt[0-9a-f]{4})\b/.exec(stderr)?.[1];
    expect(id).toBeDefined();
    expect((await labNamespaces()).filter((ns) => ns.startsWith(`${id}-`))).toEqual([]);
  }, 60_000);
});
