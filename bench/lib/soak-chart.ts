// The soak's chart: time series in stacked panels (RSS, open fds, delivered MB), one line per
// series, restarts as dashed verticals, warm-up shaded. SVG text, no dependencies.

export interface LineSeries {
  label: string;
  color: string;
  /** [minutes, value]; NaN values break the line (a process between restarts). */
  points: Array<[number, number]>;
}

export interface Panel {
  title: string;
  unit: string;
  series: LineSeries[];
}

export interface LineChartSpec {
  title: string;
  subtitle: string;
  panels: Panel[];
  totalMinutes: number;
  warmupMinutes: number;
  /** Vertical markers: [minutes, short label]. */
  markers: Array<[number, string]>;
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function lineChart(spec: LineChartSpec): string {
  const width = 900;
  const left = 70;
  const right = 180;
  const top = 60;
  const panelH = 170;
  const gap = 50;
  const height = top + spec.panels.length * (panelH + gap) + 10;
  const plotW = width - left - right;
  const x = (min: number) => left + (Math.max(0, min) / Math.max(spec.totalMinutes, 1e-9)) * plotW;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="24" font-size="16" font-weight="bold">${esc(spec.title)}</text>`,
    `<text x="${left}" y="42" fill="#444">${esc(spec.subtitle)}</text>`,
  ];
  spec.panels.forEach((panel, pi) => {
    const y0 = top + pi * (panelH + gap);
    const values = panel.series.flatMap((s) => s.points.map((p) => p[1])).filter(Number.isFinite);
    const max = niceMax(values.length ? Math.max(...values) * 1.05 : 1);
    const y = (v: number) => y0 + panelH - (v / max) * panelH;
    out.push(
      `<rect x="${left}" y="${y0}" width="${x(spec.warmupMinutes) - left}" height="${panelH}" fill="#f2f2f2"/>`,
      `<text x="${left}" y="${y0 - 6}" font-weight="bold">${esc(panel.title)} (${esc(panel.unit)})</text>`,
    );
    for (let k = 0; k <= 4; k++) {
      const v = (max * k) / 4;
      out.push(
        `<line x1="${left}" x2="${left + plotW}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`,
        `<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${Number(v.toPrecision(3))}</text>`,
      );
    }
    const tickEvery = niceMax(spec.totalMinutes / 8);
    for (let t = 0; t <= spec.totalMinutes + 1e-9; t += tickEvery) {
      out.push(`<text x="${x(t)}" y="${y0 + panelH + 14}" text-anchor="middle" fill="#555">${Number(t.toPrecision(3))} min</text>`);
    }
    for (const [t, label] of spec.markers) {
      out.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${y0}" y2="${y0 + panelH}" stroke="#999" stroke-dasharray="3 3"><title>${esc(label)}</title></line>`);
    }
    panel.series.forEach((s, si) => {
      let d = "";
      let pen = false;
      for (const [t, v] of s.points) {
        if (!Number.isFinite(v)) {
          pen = false;
          continue;
        }
        d += `${pen ? "L" : "M"}${x(t).toFixed(1)} ${y(v).toFixed(1)} `;
        pen = true;
      }
      if (d) out.push(`<path d="${d.trim()}" fill="none" stroke="${s.color}" stroke-width="1.5"/>`);
      out.push(
        `<rect x="${left + plotW + 12}" y="${y0 + si * 16}" width="10" height="10" fill="${s.color}"/>`,
        `<text x="${left + plotW + 26}" y="${y0 + si * 16 + 9}">${esc(s.label)}</text>`,
      );
    });
    out.push(`<rect x="${left}" y="${y0}" width="${plotW}" height="${panelH}" fill="none" stroke="#888"/>`);
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}

/** Least-squares line through (x, y): slope, intercept and the residuals' standard deviation. */
export function linearFit(points: Array<[number, number]>): { slope: number; intercept: number; residualSd: number; n: number } {
  const p = points.filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b));
  const n = p.length;
  if (n < 2) return { slope: Number.NaN, intercept: Number.NaN, residualSd: Number.NaN, n };
  const mx = p.reduce((s, [a]) => s + a, 0) / n;
  const my = p.reduce((s, [, b]) => s + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [a, b] of p) {
    sxy += (a - mx) * (b - my);
    sxx += (a - mx) ** 2;
  }
  const slope = sxx > 0 ? sxy / sxx : 0;
  const intercept = my - slope * mx;
  const ss = p.reduce((s, [a, b]) => s + (b - (intercept + slope * a)) ** 2, 0);
  return { slope, intercept, residualSd: Math.sqrt(ss / Math.max(1, n - 2)), n };
}
