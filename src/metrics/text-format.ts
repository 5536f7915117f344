// The Prometheus text exposition format, version 0.0.4: metric families with their HELP and TYPE
// lines, samples with escaped label values. Sources declare families and add samples in any order;
// render() writes each family once with all its samples together, as the format requires. Names,
// label names and duplicate series are checked here, so a bad source fails the scrape loudly
// instead of serving text a Prometheus server would reject.

/** The content type of the body render() returns. */
export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export type MetricType = "counter" | "gauge" | "untyped";

export type Labels = Readonly<Record<string, string>>;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A label value between double quotes: backslash, double quote and line feed are escaped. */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
}

/** HELP text: backslash and line feed are escaped (a double quote is not, per the format). */
export function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => (c === "\n" ? "\\n" : "\\\\"));
}

/** A sample value as Go's ParseFloat reads it: integers plainly, NaN, +Inf, -Inf. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return Object.is(value, -0) ? "0" : String(value);
}

/** One metric family of a scrape; add samples with sample(). */
export class MetricFamily {
  private readonly lines: string[] = [];
  private readonly series = new Set<string>();

  constructor(
    readonly name: string,
    readonly type: MetricType,
    readonly help: string,
  ) {}

  /** Adds one sample. Label names must be valid; the same label set twice is an error. */
  sample(labels: Labels, value: number): this {
    const parts: string[] = [];
    for (const [key, text] of Object.entries(labels)) {
      if (!LABEL_NAME.test(key) || key.startsWith("__")) throw new Error(`metric ${this.name}: invalid label name ${JSON.stringify(key)}`);
      parts.push(`${key}="${escapeLabelValue(String(text))}"`);
    }
    const labelText = parts.length > 0 ? `{${parts.join(",")}}` : "";
    if (this.series.has(labelText)) throw new Error(`metric ${this.name}: duplicate series ${labelText || "{}"}`);
    if (this.type === "counter" && !(value >= 0)) throw new Error(`metric ${this.name}: a counter cannot be ${value}`);
    this.series.add(labelText);
    this.lines.push(`${this.name}${labelText} ${formatValue(value)}\n`);
    return this;
  }

  render(): string {
    return `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n${this.lines.join("")}`;
  }
}

/** One scrape's worth of metric families, written out by render(). */
export class MetricsWriter {
  private readonly families = new Map<string, MetricFamily>();

  /**
   * The family `name`, created on first use. Declaring it again with the same type and help
   * returns the same family (two sources may add to it); a different type or help is an error.
   */
  family(name: string, type: MetricType, help: string): MetricFamily {
    const existing = this.families.get(name);
    if (existing) {
      if (existing.type !== type || existing.help !== help) throw new Error(`metric ${name} declared twice with different TYPE or HELP`);
      return existing;
    }
    if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name ${JSON.stringify(name)}`);
    const family = new MetricFamily(name, type, help);
    this.families.set(name, family);
    return family;
  }

  counter(name: string, help: string): MetricFamily {
    return this.family(name, "counter", help);
  }

  gauge(name: string, help: string): MetricFamily {
    return this.family(name, "gauge", help);
  }

  /** The exposition: families in the order they were first declared. */
  render(): string {
    let out = "";
    for (const family of this.families.values()) out += family.render();
    return out;
  }
}
