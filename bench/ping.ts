// Ping RTT only, for working on latency: the chosen kinds are all up at once and pinged in turn,
// round after round, so a noisy machine affects each kind alike. Prints the median of each kind's
// median per round (with min–max), its ratio to wireguard-go's (the current build when it is
// selected, else Debian's), and the RTT it adds over the bare veth as a ratio to what
// wireguard-go adds.
//
// Each tunnel first carries a flood of pings, so that its data path is compiled by the JIT as it
// would be after any real traffic (the full bench pings after its iperf3 tests).
//
//   bun bench/ping.ts [--only veth,wg-go-current,socat,wontun-wg] [--rounds 7] [--pings 50] [--interval-ms 10]
//                     [--warm 3000]
import { commandLine, numberOption } from "./lib/args.ts";
import { withLab } from "./lib/lab.ts";
import { pingSeries } from "./lib/measure.ts";
import { fmt, summarize } from "./lib/stats.ts";
import { KINDS, setupHosts, startTunnel, type Kind, type Tunnel } from "./lib/tunnels.ts";

const HELP = `bun bench/ping.ts — ping RTT of several tunnels, interleaved

Options:
  --only LIST       comma-separated kinds (default veth,wg-go-current,socat,wontun-wg,wontun-plain)
  --rounds N        rounds; each pings every kind once (default 7)
  --pings N         pings per kind and round (default 50)
  --interval-ms MS  time between pings (default 10)
  --warm N          flood pings through each tunnel before the first round (default 3000)
  --help`;

const opts = commandLine(HELP, []);
const kinds = (opts.get("only") ?? "veth,wg-go-current,socat,wontun-wg,wontun-plain").split(",") as Kind[];
for (const k of kinds) {
  if (!KINDS.includes(k)) {
    console.error(`--only: unknown kind "${k}" (choose from ${KINDS.join(", ")})`);
    process.exit(2);
  }
}
const rounds = numberOption(opts, "rounds", 7, 1);
const pings = numberOption(opts, "pings", 50, 1);
const intervalMs = numberOption(opts, "interval-ms", 10, 1);
const warm = numberOption(opts, "warm", 3000, 0);

await withLab("bping", async (env) => {
  const { a, b } = await setupHosts(env);
  const tunnels: Tunnel[] = [];
  for (const k of kinds) tunnels.push(await startTunnel(k, env, a, b));
  if (warm > 0) {
    for (const t of tunnels) await a.run(["ping", "-n", "-q", "-f", "-c", String(warm), "-W", "1", t.bAddress], { timeoutMs: 60_000 });
  }
  const medians = new Map<Kind, number[]>(kinds.map((k) => [k, []]));
  for (let r = 0; r < rounds; r++) {
    for (const t of tunnels) medians.get(t.kind)!.push((await pingSeries(a, t.bAddress, pings, intervalMs)).medianMs);
  }
  const veth = medians.has("veth") ? summarize(medians.get("veth")!).median : 0;
  const reference: Kind | undefined = kinds.includes("wg-go-current") ? "wg-go-current" : kinds.includes("wg-go") ? "wg-go" : undefined;
  const wg = reference ? summarize(medians.get(reference)!).median : 0;
  for (const k of kinds) {
    const s = summarize(medians.get(k)!);
    let ratios = "";
    if (reference && k !== reference) {
      ratios = `  ${fmt(s.median / wg)}× ${reference}'s`;
      if (veth > 0 && k !== "veth") ratios += `; added ${fmt(s.median - veth)} = ${fmt((s.median - veth) / (wg - veth))}× ${reference}'s`;
    }
    console.log(`${k.padEnd(20)} ${fmt(s.median)} ms (${fmt(s.min)}–${fmt(s.max)})${ratios}`);
  }
});
