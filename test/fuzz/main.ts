// npm run fuzz -- [--iterations N] [--seed S] [--target NAME[,NAME…]] [--seconds T] [--iteration I] [--list]
//
// Seeded, reproducible mutation fuzzing of the pure parts (no root): config readers, the CLI
// parser, protocol decoders, the control plane and the offloads (test/fuzz/targets). Each target
// runs N iterations (default 300) from seed S (default 1); with --seconds T the run lasts about T
// seconds in total, shared evenly by the targets, however many iterations that is. --iteration I
// replays one iteration. A failure prints the target, the seed, the iteration and the shrunk
// input, and the run exits 1.
import { formatFailure, runTarget } from "./engine.ts";
import { TARGETS } from "./targets/index.ts";

function usage(message: string): never {
  console.error(`fuzz: ${message}\nusage: npm run fuzz -- [--iterations N] [--seed S] [--target NAME[,NAME...]] [--seconds T] [--iteration I] [--list]`);
  process.exit(2);
}

function integer(name: string, text: string | undefined): number {
  if (text === undefined || !/^\d+$/.test(text)) usage(`${name} needs a non-negative integer, got ${JSON.stringify(text)}`);
  return Number(text);
}

let iterations = 300;
let seed = 1;
let seconds: number | undefined;
let only: number | undefined;
let names: string[] | null = null;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const [flag, inline] = argv[i].split(/=(.*)/s, 2);
  const value = () => inline ?? argv[++i];
  switch (flag) {
    case "--iterations": iterations = integer(flag, value()); break;
    case "--seed": seed = integer(flag, value()); break;
    case "--seconds": seconds = integer(flag, value()); break;
    case "--minutes": seconds = 60 * integer(flag, value()); break;
    case "--iteration": only = integer(flag, value()); break;
    case "--target": names = (value() ?? "").split(",").filter(Boolean); break;
    case "--list":
      for (const t of TARGETS) console.log(`${t.name.padEnd(12)} ${t.about}`);
      process.exit(0);
      break;
    default: usage(`unknown argument ${JSON.stringify(argv[i])}`);
  }
}
const targets = names === null ? TARGETS : names.map((n) => TARGETS.find((t) => t.name === n) ?? usage(`no target ${JSON.stringify(n)} (--list shows them)`));

const started = performance.now();
let total = 0;
let failed = 0;
for (const target of targets) {
  const result = runTarget(target, {
    seed,
    iterations: seconds !== undefined && only === undefined ? Infinity : iterations,
    ms: seconds !== undefined && only === undefined ? (seconds * 1000) / targets.length : undefined,
    only,
  });
  total += result.iterations;
  const rate = result.ms > 0 ? Math.round((result.iterations * 1000) / result.ms) : 0;
  console.log(`${result.failure ? "FAIL" : "ok  "} ${target.name.padEnd(12)} ${String(result.iterations).padStart(9)} iterations  ${(result.ms / 1000).toFixed(1).padStart(6)} s  ${rate}/s`);
  if (result.failure) {
    failed++;
    console.log(formatFailure(result.failure));
  }
}
console.log(`${failed === 0 ? "ok" : `${failed} target(s) failed`}: ${total} iterations, seed ${seed}, ${((performance.now() - started) / 1000).toFixed(1)} s`);
process.exit(failed === 0 ? 0 : 1);
