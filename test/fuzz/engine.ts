// The fuzz engine: a target draws an input from a seeded generator and checks its invariants on
// it; a failing input is shrunk (greedily, while it still fails the same way) and reported with
// the target, the seed and the iteration that replays it.
import { Rng, iterationSeed } from "./rng.ts";

/** An invariant broken by an input (as opposed to an exception the code under test let out). */
export class InvariantError extends Error {
  constructor(readonly invariant: string, detail = "") {
    super(detail ? `${invariant}: ${detail}` : invariant);
    this.name = "InvariantError";
  }
}

export function invariant(ok: boolean, what: string, detail?: () => string): asserts ok {
  if (!ok) throw new InvariantError(what, detail?.() ?? "");
}

export interface Target<I> {
  name: string;
  /** What it checks, one line (for --list). */
  about: string;
  generate(rng: Rng): I;
  /** Throws (an InvariantError, or whatever escaped the code under test) when the input breaks an invariant. */
  check(input: I): void;
  /** Smaller inputs to try, most aggressive first. */
  shrink(input: I): Iterable<I>;
  show(input: I): string;
}

export interface Failure {
  target: string;
  seed: number;
  iteration: number;
  error: string;
  input: string;
  shrunk: string;
  shrinkSteps: number;
}

export interface RunResult {
  target: string;
  iterations: number;
  failure: Failure | null;
  ms: number;
}

/** What makes two failures "the same" while shrinking: the invariant, or the escaping error's class and first words. */
function signature(err: unknown): string {
  if (err instanceof InvariantError) return `invariant ${err.invariant}`;
  if (err instanceof Error) return `${err.constructor.name}: ${err.message.replace(/["'`].*$/s, "").replace(/\d+/g, "N").slice(0, 40)}`;
  return `thrown ${typeof err}`;
}

function describeError(err: unknown): string {
  if (err instanceof InvariantError) return err.message;
  if (err instanceof Error) return `${err.constructor.name} escaped: ${err.message}\n${(err.stack ?? "").split("\n").slice(1, 6).join("\n")}`;
  return `thrown: ${String(err)}`;
}

function failsAs<I>(target: Target<I>, input: I, sig: string): boolean {
  try {
    target.check(input);
    return false;
  } catch (err) {
    return signature(err) === sig;
  }
}

/** Greedy shrinking within a budget of checks and time. */
export function shrinkInput<I>(target: Target<I>, input: I, sig: string, budget = { checks: 3000, ms: 20_000 }): { input: I; steps: number } {
  const deadline = performance.now() + budget.ms;
  let checks = 0;
  let steps = 0;
  let current = input;
  outer: for (;;) {
    for (const candidate of target.shrink(current)) {
      if (++checks > budget.checks || performance.now() > deadline) break outer;
      if (failsAs(target, candidate, sig)) {
        current = candidate;
        steps++;
        continue outer;
      }
    }
    break;
  }
  return { input: current, steps };
}

export interface RunOptions {
  seed: number;
  /** Iterations to run (Infinity with a time limit). */
  iterations: number;
  /** Stop after this many ms (default none). */
  ms?: number;
  /** Run only this iteration (a replay). */
  only?: number;
  shrink?: boolean;
}

export function runTarget<I>(target: Target<I>, options: RunOptions): RunResult {
  const start = performance.now();
  const deadline = options.ms === undefined ? Infinity : start + options.ms;
  const first = options.only ?? 0;
  const last = options.only !== undefined ? options.only + 1 : options.iterations;
  let i = first;
  for (; i < last && performance.now() < deadline; i++) {
    const input = target.generate(new Rng(iterationSeed(options.seed, target.name, i)));
    try {
      target.check(input);
    } catch (err) {
      const sig = signature(err);
      const shrunk = options.shrink === false ? { input, steps: 0 } : shrinkInput(target, input, sig);
      let error = describeError(err);
      try {
        target.check(shrunk.input);
      } catch (again) {
        error = describeError(again);
      }
      return {
        target: target.name,
        iterations: i - first + 1,
        ms: performance.now() - start,
        failure: {
          target: target.name,
          seed: options.seed,
          iteration: i,
          error,
          input: target.show(input),
          shrunk: target.show(shrunk.input),
          shrinkSteps: shrunk.steps,
        },
      };
    }
  }
  return { target: target.name, iterations: i - first, ms: performance.now() - start, failure: null };
}

export function formatFailure(f: Failure): string {
  return [
    `FAIL target=${f.target} seed=${f.seed} iteration=${f.iteration}`,
    `  ${f.error.split("\n").join("\n  ")}`,
    `  minimal input (${f.shrinkSteps} shrink steps):`,
    `    ${f.shrunk.split("\n").join("\n    ")}`,
    `  replay: npm run fuzz -- --target ${f.target} --seed ${f.seed} --iteration ${f.iteration}`,
  ].join("\n");
}

// ---- shrinkers for common shapes -----------------------------------------------------------

/** Shorter strings: halves, then chunks, lines and single characters removed, then characters simplified. */
export function* shrinkString(s: string): Iterable<string> {
  if (s.length === 0) return;
  for (let n = s.length >> 1; n >= 1; n >>= 1) {
    for (let at = 0; at + n <= s.length; at += n) yield s.slice(0, at) + s.slice(at + n);
  }
  const lines = s.split("\n");
  if (lines.length > 1) for (let i = 0; i < lines.length; i++) yield [...lines.slice(0, i), ...lines.slice(i + 1)].join("\n");
  for (let at = 0; at < s.length; at++) {
    if (s[at] !== "a" && /[^\s=\[\]\n]/.test(s[at]) && /[a-z0-9]/i.test(s[at]) === false) yield `${s.slice(0, at)}a${s.slice(at + 1)}`;
  }
}

export function* shrinkBytes(b: Uint8Array): Iterable<Uint8Array> {
  if (b.length === 0) return;
  for (let n = b.length >> 1; n >= 1; n >>= 1) {
    for (let at = 0; at + n <= b.length; at += n) {
      const out = new Uint8Array(b.length - n);
      out.set(b.subarray(0, at));
      out.set(b.subarray(at + n), at);
      yield out;
    }
  }
  for (let at = 0; at < b.length; at++) {
    if (b[at] !== 0) {
      const out = b.slice();
      out[at] = 0;
      yield out;
    }
  }
}

/** Fewer elements, then each element shrunk with `each`. */
export function* shrinkArray<T>(items: T[], each?: (item: T) => Iterable<T>): Iterable<T[]> {
  for (let n = items.length >> 1; n >= 1; n >>= 1) {
    for (let at = 0; at + n <= items.length; at += n) yield [...items.slice(0, at), ...items.slice(at + n)];
  }
  if (each) {
    for (let i = 0; i < items.length; i++) for (const smaller of each(items[i])) yield [...items.slice(0, i), smaller, ...items.slice(i + 1)];
  }
}

/** Text for a failure report: JSON-escaped, so control characters and invalid text show. */
export function showText(s: string): string {
  return JSON.stringify(s);
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}

/** A stable rendering of any value for equality checks (Uint8Arrays as hex, Maps sorted). */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v) => {
    if (v instanceof Uint8Array) return `hex:${hex(v)}`;
    if (v instanceof Map) return Object.fromEntries([...v.entries()].sort());
    if (v instanceof Set) return [...v].sort();
    if (typeof v === "bigint") return `${v}n`;
    return v;
  });
}
