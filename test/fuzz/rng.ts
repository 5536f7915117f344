// A small seeded PRNG (mulberry32) and the helpers the targets draw inputs with. Every iteration
// gets its own generator from (seed, target, iteration), so any one iteration replays alone.

export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 2^32). */
  u32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return n <= 0 ? 0 : Math.floor(this.float() * n);
  }

  /** Uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }

  /** A length biased towards small values and boundaries. */
  size(max: number): number {
    switch (this.int(4)) {
      case 0: return this.int(Math.min(max, 16) + 1);
      case 1: return this.int(Math.min(max, 256) + 1);
      case 2: return this.pick([0, 1, max, max - 1].filter((n) => n >= 0 && n <= max));
      default: return this.int(max + 1);
    }
  }
}

/** FNV-1a over the text, mixed with the numbers: the seed of one iteration of one target. */
export function iterationSeed(seed: number, target: string, iteration: number): number {
  let h = 0x811c9dc5;
  const mix = (b: number) => {
    h ^= b & 0xff;
    h = Math.imul(h, 0x01000193) >>> 0;
  };
  for (const c of new TextEncoder().encode(target)) mix(c);
  for (const n of [seed, iteration]) for (let k = 0; k < 4; k++) mix(n >>> (8 * k));
  return h;
}
