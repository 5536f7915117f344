// The metrics HTTP endpoint (src/metrics/server.ts) on loopback, without root: GET /metrics only,
// the content type, sources added and removed, a failing source, a taken port; and the address
// forms --metrics / WONTUN_METRICS accept.
import { afterEach, describe, expect, test } from "bun:test";
import { MetricsListenError, MetricsServer, formatMetricsAddress, parseMetricsAddress } from "../../src/metrics/server.ts";
import { parsePrometheusText } from "../helpers/prometheus-text.ts";

const servers: MetricsServer[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

function open(): MetricsServer {
  const server = MetricsServer.listen({ host: "127.0.0.1", port: 0 });
  servers.push(server);
  return server;
}

describe("parseMetricsAddress", () => {
  test("HOST:PORT with an IPv4 address or localhost, [IPv6]:PORT", () => {
    expect(parseMetricsAddress("127.0.0.1:9586")).toEqual({ host: "127.0.0.1", port: 9586 });
    expect(parseMetricsAddress("0.0.0.0:1")).toEqual({ host: "0.0.0.0", port: 1 });
    expect(parseMetricsAddress("localhost:65535")).toEqual({ host: "localhost", port: 65535 });
    expect(parseMetricsAddress("[::1]:9586")).toEqual({ host: "::1", port: 9586 });
    expect(parseMetricsAddress("[fd00::1]:80")).toEqual({ host: "fd00::1", port: 80 });
    expect(formatMetricsAddress({ host: "::1", port: 9586 })).toBe("[::1]:9586");
    expect(formatMetricsAddress({ host: "127.0.0.1", port: 9586 })).toBe("127.0.0.1:9586");
  });

  test("anything else is one line saying what is wrong", () => {
    const cases: [string, string][] = [
      ["", "has no port"],
      ["9586", "has no port"],
      ["127.0.0.1", "has no port"],
      [":9586", "is not an IPv4 address"],
      ["example.com:9586", "is not an IPv4 address or localhost"],
      ["127.0.0.1:0", "is not a port"],
      ["127.0.0.1:65536", "is not a port"],
      ["127.0.0.1:http", "is not a port"],
      ["127.0.0.1:", "is not a port"],
      ["::1:9586", "[ADDRESS]:PORT"],
      ["[::1]", "is not [IPv6]:PORT"],
      ["[::1]9586", "is not [IPv6]:PORT"],
      ["[127.0.0.1]:9586", "is not an IPv6 address"],
      ["[fe80::1%eth0]:9586", "is not an IPv6 address"],
      ["300.0.0.1:9586", "is not an IPv4 address"],
      ["a\nb:1", "is not an IPv4 address"],
    ];
    for (const [text, why] of cases) {
      const r = parseMetricsAddress(text);
      expect(typeof r).toBe("string");
      expect(r as string).toContain(why);
      expect(r as string).not.toContain("\n");
    }
  });
});

describe("MetricsServer", () => {
  test("GET /metrics: the sources' text, the 0.0.4 content type; it parses strictly", async () => {
    const server = open();
    server.addSource((out) => out.gauge("a", "A.").sample({ l: 'x"y' }, 1));
    const remove = server.addSource((out) => out.counter("b_total", "B.").sample({}, 2));
    const r = await fetch(server.url);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const families = parsePrometheusText(await r.text());
    expect(families.map((f) => f.name)).toEqual(["a", "b_total"]);
    expect(families[0].samples[0].labels.l).toBe('x"y');
    remove();
    expect(parsePrometheusText(await (await fetch(server.url)).text()).map((f) => f.name)).toEqual(["a"]);
    // A query string does not change the answer.
    expect((await fetch(`${server.url}?name[]=a`)).status).toBe(200);
  });

  test("every scrape reads the sources afresh", async () => {
    const server = open();
    let n = 0;
    server.addSource((out) => out.counter("n_total", "N.").sample({}, ++n));
    await fetch(server.url);
    const [f] = parsePrometheusText(await (await fetch(server.url)).text());
    expect(f.samples[0].value).toBe(2);
  });

  test("other paths are 404, other methods on /metrics 405 with Allow: GET", async () => {
    const server = open();
    const base = server.url.replace(/\/metrics$/, "");
    for (const path of ["/", "/other", "/metrics/", "/metricsx"]) expect((await fetch(`${base}${path}`)).status).toBe(404);
    for (const method of ["HEAD", "POST", "PUT", "DELETE"]) {
      const r = await fetch(server.url, { method });
      expect(r.status).toBe(405);
      expect(r.headers.get("allow")).toBe("GET");
    }
  });

  test("a source that throws fails the scrape with 500, and the next good scrape works", async () => {
    const server = open();
    let broken = true;
    server.addSource((out) => {
      if (broken) throw new Error("boom");
      out.gauge("ok", "OK.").sample({}, 1);
    });
    const bad = await fetch(server.url);
    expect(bad.status).toBe(500);
    expect(await bad.text()).toContain("boom");
    broken = false;
    expect((await fetch(server.url)).status).toBe(200);
  });

  test("a taken port: MetricsListenError naming the address", () => {
    const server = open();
    const { port } = server.address;
    let error: unknown;
    try {
      servers.push(MetricsServer.listen({ host: "127.0.0.1", port }));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(MetricsListenError);
    expect((error as Error).message).toBe(`metrics: cannot listen on 127.0.0.1:${port}: the port is in use`);
  });

  test("close() frees the port; a second close() is harmless", async () => {
    const server = MetricsServer.listen({ host: "127.0.0.1", port: 0 });
    const { port } = server.address;
    server.close();
    server.close();
    servers.push(MetricsServer.listen({ host: "127.0.0.1", port }));
  });
});
