// The Prometheus text writer (src/metrics/text-format.ts): escaping of label values and HELP,
// values, grouping of families, and the checks that keep a bad source from serving bad text.
// Every output is read back with the strict parser of test/helpers/prometheus-text.ts, whose
// own strictness is pinned at the end.
import { describe, expect, test } from "bun:test";
import { CONTENT_TYPE, MetricsWriter, escapeHelp, escapeLabelValue, formatValue } from "../../src/metrics/text-format.ts";
import { parsePrometheusText, PromParseError } from "../helpers/prometheus-text.ts";

describe("escaping", () => {
  test("label values: backslash, double quote and line feed; nothing else", () => {
    expect(escapeLabelValue("plain")).toBe("plain");
    expect(escapeLabelValue("a\\b")).toBe("a\\\\b");
    expect(escapeLabelValue('say "hi"')).toBe('say \\"hi\\"');
    expect(escapeLabelValue("two\nlines")).toBe("two\\nlines");
    expect(escapeLabelValue('\\"\n')).toBe('\\\\\\"\\n');
    expect(escapeLabelValue("tab\there, ünïcode, {}=,")).toBe("tab\there, ünïcode, {}=,");
  });

  test("HELP: backslash and line feed; a double quote stays as it is", () => {
    expect(escapeHelp('a "quoted" word')).toBe('a "quoted" word');
    expect(escapeHelp("back\\slash")).toBe("back\\\\slash");
    expect(escapeHelp("line\nbreak")).toBe("line\\nbreak");
  });

  test("values as Prometheus reads them", () => {
    expect(formatValue(0)).toBe("0");
    expect(formatValue(-0)).toBe("0");
    expect(formatValue(123456789012)).toBe("123456789012");
    expect(formatValue(1.5)).toBe("1.5");
    expect(formatValue(Number.NaN)).toBe("NaN");
    expect(formatValue(Infinity)).toBe("+Inf");
    expect(formatValue(-Infinity)).toBe("-Inf");
    expect(formatValue(2 ** 53)).toBe("9007199254740992");
  });
});

describe("MetricsWriter", () => {
  test("writes HELP, TYPE and samples; hostile label values and HELP survive a strict round trip", () => {
    const out = new MetricsWriter();
    const hostile = 'back\\slash "quote"\nnewline } { ,=';
    out.counter("x_total", 'Help with "quotes", a \\ and\na second line.').sample({ a: hostile, b: "" }, 7).sample({ a: "other", b: "" }, 0);
    out.gauge("y", "A gauge.").sample({}, -2.5);
    const text = out.render();
    expect(text).toBe(
      '# HELP x_total Help with "quotes", a \\\\ and\\na second line.\n' +
        "# TYPE x_total counter\n" +
        'x_total{a="back\\\\slash \\"quote\\"\\nnewline } { ,=",b=""} 7\n' +
        'x_total{a="other",b=""} 0\n' +
        "# HELP y A gauge.\n" +
        "# TYPE y gauge\n" +
        "y -2.5\n",
    );
    const families = parsePrometheusText(text);
    expect(families.map((f) => [f.name, f.type])).toEqual([["x_total", "counter"], ["y", "gauge"]]);
    expect(families[0].help).toBe('Help with "quotes", a \\ and\na second line.');
    expect(families[0].samples[0].labels).toEqual({ a: hostile, b: "" });
    expect(families[0].samples[0].value).toBe(7);
    expect(families[1].samples[0]).toEqual({ name: "y", labels: {}, value: -2.5 });
  });

  test("a family's samples stay together whatever order the sources add them in", () => {
    const out = new MetricsWriter();
    const a = out.gauge("a", "A.");
    out.gauge("b", "B.").sample({ i: "1" }, 1);
    a.sample({ i: "1" }, 1);
    out.gauge("a", "A.").sample({ i: "2" }, 2); // declared again the same way: the same family
    const families = parsePrometheusText(out.render());
    expect(families.map((f) => [f.name, f.samples.length])).toEqual([["a", 2], ["b", 1]]);
  });

  test("a family with no samples still has HELP and TYPE (a valid, empty family)", () => {
    const out = new MetricsWriter();
    out.counter("none_total", "Nothing yet.");
    expect(out.render()).toBe("# HELP none_total Nothing yet.\n# TYPE none_total counter\n");
    expect(parsePrometheusText(out.render())[0].samples).toEqual([]);
  });

  test("refuses what would make the exposition invalid", () => {
    const out = new MetricsWriter();
    expect(() => out.gauge("1bad", "x")).toThrow("invalid metric name");
    expect(() => out.gauge("bad-name", "x")).toThrow("invalid metric name");
    const g = out.gauge("g", "G.");
    expect(() => out.counter("g", "G.")).toThrow("declared twice");
    expect(() => out.gauge("g", "other help")).toThrow("declared twice");
    expect(() => g.sample({ "bad-label": "x" }, 1)).toThrow("invalid label name");
    expect(() => g.sample({ __name__: "x" }, 1)).toThrow("invalid label name");
    g.sample({ a: "1", b: "2" }, 1);
    expect(() => g.sample({ a: "1", b: "2" }, 3)).toThrow("duplicate series");
    expect(() => out.counter("c_total", "C.").sample({}, -1)).toThrow("counter");
    expect(() => out.counter("d_total", "D.").sample({}, Number.NaN)).toThrow("counter");
    // What did go in is still a valid exposition.
    expect(() => parsePrometheusText(out.render())).not.toThrow();
  });

  test("the content type is the 0.0.4 text format's", () => {
    expect(CONTENT_TYPE).toBe("text/plain; version=0.0.4; charset=utf-8");
  });
});

describe("the strict test parser rejects what a Prometheus server would", () => {
  const bad: [string, string, string][] = [
    ["unknown escape in a label value", '# TYPE a gauge\na{l="\\x"} 1\n', "invalid escape"],
    ["escaped quote in HELP", '# HELP a say \\"hi\\"\n# TYPE a gauge\na 1\n', "invalid escape"],
    ["unterminated label value", '# TYPE a gauge\na{l="x} 1\n', "unterminated"],
    ["raw line feed in a label value", '# TYPE a gauge\na{l="x\ny"} 1\n', "unterminated"],
    ["invalid metric name", "# TYPE 1a gauge\n1a 1\n", "invalid metric name"],
    ["invalid label name", '# TYPE a gauge\na{1l="x"} 1\n', "invalid label name"],
    ["duplicate label", '# TYPE a gauge\na{l="x",l="y"} 1\n', "duplicate label"],
    ["value that is not a float", "# TYPE a gauge\na abc\n", "invalid value"],
    ["missing value", "# TYPE a gauge\na\n", "expected a value"],
    ["bad timestamp", "# TYPE a gauge\na 1 1.5\n", "invalid timestamp"],
    ["unknown TYPE", "# TYPE a wat\na 1\n", "unknown metric type"],
    ["TYPE twice", "# TYPE a gauge\n# TYPE a gauge\na 1\n", "second TYPE"],
    ["HELP twice", "# HELP a x\n# HELP a y\na 1\n", "second HELP"],
    ["TYPE after samples", "a 1\n# TYPE a gauge\n", "after its samples"],
    ["a family split in two", "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x=\"1\"} 2\n", "appears again"],
    ["duplicate series", '# TYPE a gauge\na{x="1"} 1\na{x="1"} 2\n', "duplicate series"],
    ["negative counter", "# TYPE a_total counter\na_total -1\n", "counter"],
    ["no final line feed", "# TYPE a gauge\na 1", "not terminated"],
    ["carriage return", "# TYPE a gauge\r\na 1\r\n", "carriage return"],
    ["garbage after labels", '# TYPE a gauge\na{l="x"}1\n', "expected a blank"],
  ];
  for (const [what, text, message] of bad) {
    test(what, () => {
      let error: unknown;
      try {
        parsePrometheusText(text);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(PromParseError);
      expect((error as Error).message).toContain(message);
    });
  }

  test("accepts the format's optional parts: comments, blank lines, timestamps, trailing comma, special values", () => {
    const text = "# a comment\n\n# HELP a A.\n# TYPE a gauge\na{x=\"1\",} +Inf 1700000000000\na{x=\"2\"} NaN\na{x=\"3\"} -1.5e-3\n";
    const [a] = parsePrometheusText(text);
    expect(a.samples.map((s) => s.value)).toEqual([Infinity, Number.NaN, -0.0015]);
    expect(a.samples[0].timestampMs).toBe(1700000000000);
  });
});
