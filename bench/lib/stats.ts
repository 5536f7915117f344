// Small statistics for the benchmarks: a figure is the median of its runs, with the spread
// (min–max) kept next to it.

export interface Summary {
  /** Every run's value, in the order measured. */
  runs: number[];
  median: number;
  min: number;
  max: number;
}

export function median(values: number[]): number {
  return quantile(values, 0.5);
}

/** Linear-interpolated quantile (q in 0..1) of the values; NaN for none. */
export function quantile(values: number[], q: number): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const at = (v.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return v[lo] + (v[hi] - v[lo]) * (at - lo);
}

export function summarize(runs: number[]): Summary {
  const finite = runs.filter((x) => Number.isFinite(x));
  return {
    runs,
    median: median(finite),
    min: finite.length ? Math.min(...finite) : Number.NaN,
    max: finite.length ? Math.max(...finite) : Number.NaN,
  };
}

/** A number with about three significant digits (1234 -> "1234", 12.34 -> "12.3", 0.01234 -> "0.0123"). */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return "–";
  const a = Math.abs(x);
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  if (a === 0) return "0";
  return x.toPrecision(3);
}
