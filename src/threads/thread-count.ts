// How many data-path threads a tunnel runs: `wontun up --threads N` or WONTUN_THREADS=N (1-16),
// or "auto", the default. WireGuard mode only: the plaintext protocol runs on one.
import { availableParallelism } from "node:os";
import { MAX_THREADS } from "./shared-sessions.ts";

/** What neither the flag nor the environment sets. */
export const DEFAULT_THREADS = "auto";
/**
 * "auto" uses at most this many: each thread is a JS VM of its own (~8-13 MiB), one peer's
 * inbound traffic stays on one thread whatever the count, and nothing beyond 2 threads could be
 * measured here. More can be asked for with a number.
 */
const AUTO_CAP = 4;

/**
 * "auto": one thread per core, at most AUTO_CAP, and one on a machine of 2 cores or fewer. There a
 * second thread bought no throughput in `npm run bench` (both ends and iperf3 already share the
 * 2 cores) and cost CPU per Gbit/s, ping time and ~8 MiB (bench/README.md, "Multi-core").
 */
export function autoThreads(cores = availableParallelism()): number {
  return cores <= 2 ? 1 : Math.min(cores, AUTO_CAP);
}

/** The thread count `text` asks for, or a one-line reason it is not one. */
export function parseThreads(text: string): number | string {
  const value = text.trim().toLowerCase();
  if (value === "auto") return autoThreads();
  if (!/^[0-9]+$/.test(value)) return `must be a number of threads (1-${MAX_THREADS}) or "auto", got "${text.slice(0, 20)}"`;
  const n = Number(value);
  if (n < 1 || n > MAX_THREADS) return `must be between 1 and ${MAX_THREADS}, got ${n}`;
  return n;
}
