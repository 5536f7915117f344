// A strict parser for the Prometheus text exposition format 0.0.4, for tests: it throws on
// anything a Prometheus server's parser would reject, and on a few things it would only warn
// about or silently merge (a family split in two, a duplicate series, HELP or TYPE twice or after
// the family's samples, a negative counter). Written here because the npm parsers we found
// (parse-prometheus-text-format 1.1.1, prom2javascript 0.2.0) accept unknown escapes, invalid
// metric names, unknown TYPEs, repeated TYPE lines and interleaved families without complaint.

export type PromType = "counter" | "gauge" | "histogram" | "summary" | "untyped";

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
  timestampMs?: number;
}

export interface PromFamily {
  name: string;
  type: PromType;
  help: string | null;
  samples: PromSample[];
}

export class PromParseError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
    this.name = "PromParseError";
  }
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const TYPES = new Set<PromType>(["counter", "gauge", "histogram", "summary", "untyped"]);
const FLOAT = /^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|Inf|NaN)$/;
const INT = /^-?\d+$/;

/** The family a sample name belongs to: histogram/summary samples carry suffixes. */
function familyOf(sample: string, families: Map<string, PromFamily>): PromFamily | undefined {
  const direct = families.get(sample);
  if (direct) return direct;
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (!sample.endsWith(suffix)) continue;
    const f = families.get(sample.slice(0, -suffix.length));
    if (f && (f.type === "histogram" || (f.type === "summary" && suffix !== "_bucket"))) return f;
  }
  return undefined;
}

/** Unescapes `text` (between its delimiters) allowing only the escapes in `allowed`. */
function unescape(text: string, allowed: Record<string, string>, line: number, what: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c !== "\\") {
      out += c;
      continue;
    }
    const next = text[i + 1];
    if (next === undefined || !(next in allowed)) throw new PromParseError(line, `invalid escape sequence \\${next ?? ""} in ${what}`);
    out += allowed[next];
    i++;
  }
  return out;
}

/**
 * Parses a whole exposition. Returns the families in order of appearance; throws PromParseError
 * with the line number at the first violation.
 */
export function parsePrometheusText(text: string): PromFamily[] {
  if (text.length > 0 && !text.endsWith("\n")) throw new PromParseError(text.split("\n").length, "the last line is not terminated by a line feed");
  if (text.includes("\r")) throw new PromParseError(text.slice(0, text.indexOf("\r")).split("\n").length, "carriage return (lines end with \\n only)");
  const families = new Map<string, PromFamily>();
  const order: PromFamily[] = [];
  const closed = new Set<string>(); // families whose block has ended
  const sampled = new Set<string>(); // families that have samples
  const series = new Set<string>();
  const explicitType = new Set<string>(); // families with a TYPE line
  let current: string | null = null;

  const enter = (name: string, lineNo: number): PromFamily => {
    if (current !== name) {
      if (closed.has(name)) throw new PromParseError(lineNo, `metric family ${name} appears again after other families (its lines must be together)`);
      if (current !== null) closed.add(current);
      current = name;
    }
    let f = families.get(name);
    if (!f) {
      f = { name, type: "untyped", help: null, samples: [] };
      families.set(name, f);
      order.push(f);
    }
    return f;
  };

  const lines = text.split("\n");
  lines.pop(); // after the final "\n"
  lines.forEach((raw, index) => {
    const lineNo = index + 1;
    const line = raw.replace(/^[ \t]+/, "");
    if (line === "") return;
    if (line.startsWith("#")) {
      const m = /^#[ \t]+(HELP|TYPE)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(line);
      if (!m) {
        // "# HELP"/"# TYPE" without a valid name is an error; any other comment is ignored.
        if (/^#[ \t]+(HELP|TYPE)(\s|$)/.test(line)) throw new PromParseError(lineNo, `malformed ${line.slice(0, 40)}`);
        return;
      }
      const [, keyword, name, rest = ""] = m;
      if (METRIC_NAME.exec(name)?.[0] !== name) throw new PromParseError(lineNo, `invalid metric name ${JSON.stringify(name)} in ${keyword}`);
      const f = enter(name, lineNo);
      if (keyword === "HELP") {
        if (f.help !== null) throw new PromParseError(lineNo, `second HELP line for ${name}`);
        f.help = unescape(rest, { "\\": "\\", n: "\n" }, lineNo, "HELP");
      } else {
        if (explicitType.has(name)) throw new PromParseError(lineNo, `second TYPE line for ${name}`);
        if (sampled.has(name)) throw new PromParseError(lineNo, `TYPE line for ${name} after its samples`);
        const type = rest.replace(/[ \t]+$/, "");
        if (!TYPES.has(type as PromType)) throw new PromParseError(lineNo, `unknown metric type ${JSON.stringify(type)} for ${name}`);
        f.type = type as PromType;
        explicitType.add(name);
      }
      return;
    }
    // A sample: name [{labels}] value [timestamp]
    const nameMatch = METRIC_NAME.exec(line);
    if (!nameMatch) throw new PromParseError(lineNo, `invalid metric name at ${JSON.stringify(line.slice(0, 40))}`);
    const name = nameMatch[0];
    let pos = name.length;
    const labels: Record<string, string> = {};
    const skipBlank = () => {
      while (line[pos] === " " || line[pos] === "\t") pos++;
    };
    const afterName = pos;
    skipBlank();
    if (line[pos] !== "{") pos = afterName;
    if (line[pos] === "{") {
      pos++;
      for (;;) {
        skipBlank();
        if (line[pos] === "}") {
          pos++;
          break;
        }
        const labelMatch = LABEL_NAME.exec(line.slice(pos));
        if (!labelMatch) throw new PromParseError(lineNo, `invalid label name at column ${pos + 1}`);
        const labelName = labelMatch[0];
        if (labelName.startsWith("__")) throw new PromParseError(lineNo, `reserved label name ${labelName}`);
        if (labelName in labels) throw new PromParseError(lineNo, `duplicate label ${labelName}`);
        pos += labelName.length;
        skipBlank();
        if (line[pos] !== "=") throw new PromParseError(lineNo, `expected = after label ${labelName}`);
        pos++;
        skipBlank();
        if (line[pos] !== '"') throw new PromParseError(lineNo, `expected " to start the value of label ${labelName}`);
        pos++;
        let end = pos;
        while (end < line.length && line[end] !== '"') end += line[end] === "\\" ? 2 : 1;
        if (end >= line.length) throw new PromParseError(lineNo, `unterminated value of label ${labelName}`);
        labels[labelName] = unescape(line.slice(pos, end), { "\\": "\\", '"': '"', n: "\n" }, lineNo, `label ${labelName}`);
        pos = end + 1;
        skipBlank();
        if (line[pos] === ",") {
          pos++;
          continue;
        }
        if (line[pos] === "}") {
          pos++;
          break;
        }
        throw new PromParseError(lineNo, `expected , or } after label ${labelName}`);
      }
    }
    const rest = line.slice(pos);
    if (rest !== "" && !/^[ \t]/.test(rest)) throw new PromParseError(lineNo, `expected a blank before the value of ${name}`);
    const fields = rest.trim().split(/[ \t]+/).filter((f) => f !== "");
    if (fields.length === 0 || fields.length > 2) throw new PromParseError(lineNo, `expected a value and an optional timestamp for ${name}, got ${JSON.stringify(rest.trim())}`);
    if (!FLOAT.test(fields[0])) throw new PromParseError(lineNo, `invalid value ${JSON.stringify(fields[0])} for ${name}`);
    const value = fields[0].endsWith("Inf") ? (fields[0].startsWith("-") ? -Infinity : Infinity) : Number(fields[0]);
    let timestampMs: number | undefined;
    if (fields.length === 2) {
      if (!INT.test(fields[1])) throw new PromParseError(lineNo, `invalid timestamp ${JSON.stringify(fields[1])} for ${name}`);
      timestampMs = Number(fields[1]);
    }
    const family = (current !== null ? familyOf(name, new Map([[current, families.get(current)!]])) : undefined) ?? enter(name, lineNo);
    if (family.name !== name && family.type !== "histogram" && family.type !== "summary") throw new PromParseError(lineNo, `sample ${name} does not belong to family ${family.name}`);
    if (family.type === "counter" && !(value >= 0)) throw new PromParseError(lineNo, `counter ${name} has the value ${fields[0]}`);
    const key = `${name}{${Object.keys(labels).sort().map((k) => `${k}=${JSON.stringify(labels[k])}`).join(",")}}`;
    if (series.has(key)) throw new PromParseError(lineNo, `duplicate series ${key}`);
    series.add(key);
    sampled.add(family.name);
    family.samples.push(timestampMs === undefined ? { name, labels, value } : { name, labels, value, timestampMs });
  });
  return order;
}
