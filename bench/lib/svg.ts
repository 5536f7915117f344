// A grouped bar chart as SVG text, no dependencies. Groups are metrics; in each group one bar
// per tunnel kind. Metrics have different units, so bar heights are ratios to a reference kind
// (wireguard-go) on a log axis, with the absolute value written on the bar and the min–max
// spread drawn as a whisker.

export interface ChartSeries {
  key: string;
  label: string;
  color: string;
}

export interface ChartGroup {
  label: string;
  unit: string;
  better: "higher" | "lower";
  /** Per series key: median, min, max (NaN = not applicable). */
  values: Record<string, { median: number; min: number; max: number }>;
}

export interface ChartSpec {
  title: string;
  subtitle: string;
  series: ChartSeries[];
  groups: ChartGroup[];
  /** Series key the bars are divided by. */
  reference: string;
  valueFormat: (x: number) => string;
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

export function groupedBarChart(spec: ChartSpec): string {
  const { series, groups } = spec;
  const barW = 18;
  const gap = 26;
  const groupW = series.length * barW + gap;
  const left = 70;
  const right = 20;
  const top = 120; // room above the tallest bar for its rotated label
  const plotH = 330;
  const bottom = 120;
  const width = Math.max(760, left + right + groups.length * groupW);
  const height = top + plotH + bottom;

  // Each group's divisor: the reference's median, or (if it has none or 0) the group's largest.
  const divisors = groups.map((g) => {
    const ref = g.values[spec.reference]?.median;
    if (Number.isFinite(ref) && ref > 0) return { d: ref, scaled: false };
    const max = Math.max(...series.map((s) => g.values[s.key]?.max).filter((v) => Number.isFinite(v) && v > 0));
    return { d: Number.isFinite(max) && max > 0 ? max : 1, scaled: true };
  });
  const ratios: number[] = [];
  groups.forEach((g, gi) => {
    for (const s of series) {
      const v = g.values[s.key];
      if (!v) continue;
      for (const x of [v.median, v.min, v.max]) if (Number.isFinite(x) && x > 0) ratios.push(x / divisors[gi].d);
    }
  });
  const lo = Math.min(0.1, ...ratios);
  const hi = Math.max(10, ...ratios);
  const logLo = Math.floor(Math.log10(lo));
  const logHi = Math.ceil(Math.log10(hi));
  const y = (ratio: number) => top + plotH - ((Math.log10(ratio) - logLo) / (logHi - logLo)) * plotH;
  const y1 = y(1);
  const floor = top + plotH;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="24" font-size="16" font-weight="bold">${esc(spec.title)}</text>`,
    `<text x="${left}" y="42" fill="#444">${esc(spec.subtitle)}</text>`,
  );
  // legend
  let lx = left;
  for (const s of series) {
    out.push(`<rect x="${lx}" y="54" width="12" height="12" fill="${s.color}"/>`, `<text x="${lx + 16}" y="64">${esc(s.label)}</text>`);
    lx += 24 + s.label.length * 6.5;
  }
  // axis and grid (powers of ten)
  for (let e = logLo; e <= logHi; e++) {
    const v = 10 ** e;
    const yy = y(v);
    out.push(
      `<line x1="${left}" x2="${width - right}" y1="${yy}" y2="${yy}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${yy + 4}" text-anchor="end">${v >= 1 ? `×${v}` : `×${v.toPrecision(1)}`}</text>`,
    );
  }
  out.push(
    `<text transform="translate(16 ${top + plotH / 2}) rotate(-90)" text-anchor="middle" fill="#444">value ÷ ${esc(series.find((s) => s.key === spec.reference)?.label ?? spec.reference)} (log scale)</text>`,
  );

  groups.forEach((g, gi) => {
    const gx = left + gap / 2 + gi * groupW;
    const { d, scaled } = divisors[gi];
    series.forEach((s, si) => {
      const v = g.values[s.key];
      const x = gx + si * barW;
      if (!v || !Number.isFinite(v.median) || v.median <= 0) {
        const shown = v && v.median === 0 ? "0" : "n/a";
        out.push(`<text x="${x + barW / 2}" y="${floor - 4}" text-anchor="middle" font-size="9" fill="#888">${shown}</text>`);
        return;
      }
      // Bars stand on the bottom of the log axis, so the reference's own bars (height ×1) show.
      const yy = y(v.median / d);
      out.push(`<rect x="${x + 1}" y="${yy}" width="${barW - 2}" height="${Math.max(1, floor - yy)}" fill="${s.color}"><title>${esc(`${s.label}: ${spec.valueFormat(v.median)} ${g.unit} (${spec.valueFormat(v.min)}–${spec.valueFormat(v.max)})`)}</title></rect>`);
      if (Number.isFinite(v.min) && Number.isFinite(v.max) && v.min > 0 && v.max > v.min) {
        const cx = x + barW / 2;
        const ya = y(v.min / d);
        const yb = y(v.max / d);
        out.push(
          `<line x1="${cx}" x2="${cx}" y1="${ya}" y2="${yb}" stroke="#222"/>`,
          `<line x1="${cx - 3}" x2="${cx + 3}" y1="${ya}" y2="${ya}" stroke="#222"/>`,
          `<line x1="${cx - 3}" x2="${cx + 3}" y1="${yb}" y2="${yb}" stroke="#222"/>`,
        );
      }
      // the absolute value, rotated, above the bar and its whisker
      const ty = Math.min(yy, Number.isFinite(v.max) && v.max > 0 ? y(v.max / d) : yy) - 4;
      out.push(
        `<text transform="translate(${x + barW / 2 + 3} ${ty}) rotate(-90)" font-size="9">${esc(spec.valueFormat(v.median))}</text>`,
      );
    });
    const cx = gx + (series.length * barW) / 2;
    const words = `${g.label}${scaled ? " (÷ max)" : ""}`.split(" ");
    const lines: string[] = [];
    for (const w of words) {
      if (lines.length && (lines[lines.length - 1] + " " + w).length <= 16) lines[lines.length - 1] += ` ${w}`;
      else lines.push(w);
    }
    lines.push(`${g.unit}, ${g.better === "higher" ? "↑" : "↓"} better`);
    lines.forEach((line, li) => {
      out.push(`<text x="${cx}" y="${top + plotH + 16 + li * 12}" text-anchor="middle" font-size="10"${li === lines.length - 1 ? ' fill="#555"' : ""}>${esc(line)}</text>`);
    });
  });
  // ×1 (the reference) over the bars
  out.push(`<line x1="${left}" x2="${width - right}" y1="${y1}" y2="${y1}" stroke="#000" stroke-dasharray="5 3"/>`);
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
