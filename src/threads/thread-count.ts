// How many data-path threads a tunnel runs: `wontun up --threads N` or WONTUN_THREADS=N; "auto"
// is one per core (at most MAX_THREADS). WireGuard mode only: the plaintext protocol runs on one.
import { availableParallelism } from "node:os";
import { MAX_THREADS } from "./shared-sessions.ts";

/** What neither the flag nor the environment sets. */
export const DEFAULT_THREADS = "1";

/** The thread count `text` asks for, or a one-line reason it is not one. */
export function parseThreads(text: string): number | string {
  const value = text.trim().toLowerCase();
  if (value === "auto") return Math.max(1, Math.min(availableParallelism(), MAX_THREADS));
  if (!/^[0-9]+$/.test(value)) return `must be a number of threads (1-${MAX_THREADS}) or "auto", got "${text.slice(0, 20)}"`;
  const n = Number(value);
  if (n < 1 || n > MAX_THREADS) return `must be between 1 and ${MAX_THREADS}, got ${n}`;
  return n;
}
