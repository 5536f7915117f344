// How long loading a big config takes: one peer with many AllowedIPs (ini and TOML, one line and
// one per line) and a hub with many peers. Loading must grow linearly: doubling the size should
// roughly double the time. Run: bun bench/config-load.ts
import { parseConfigText } from "../src/config/load.ts";
import type { ConfigFormat } from "../src/config/validate.ts";

function prefixes(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`);
}

const cases: Record<string, (n: number) => [string, ConfigFormat]> = {
  "ini, one peer, N AllowedIPs on one line": (n) =>
    [`[Interface]\nName=a\nAddress=192.168.0.1/24\n[Peer]\nName=b\nAllowedIPs=${prefixes(n).join(",")}\n`, "ini"],
  "TOML, one peer, N AllowedIPs one per line": (n) =>
    [`[interface]\nname="a"\naddress="192.168.0.1/24"\n[[peers]]\nname="b"\nallowed_ips=[\n${prefixes(n).map((p) => `"${p}",`).join("\n")}\n]\n`, "toml"],
  "TOML, N/20 peers of 20 AllowedIPs": (n) => {
    const all = prefixes(n);
    const peers = [];
    for (let i = 0; i < n / 20; i++) {
      peers.push(`[[peers]]\nname="p${i}"\nendpoint="192.0.2.1:${1 + (i % 60000)}"\nallowed_ips=[${all.slice(i * 20, i * 20 + 20).map((p) => `"${p}"`).join(", ")}]\n`);
    }
    return [`[interface]\nname="a"\naddress="192.168.0.1/24"\n${peers.join("\n")}`, "toml"];
  },
};

for (const [name, make] of Object.entries(cases)) {
  for (const n of [25_000, 50_000, 100_000]) {
    const [text, format] = make(n);
    parseConfigText(text, `x.${format === "ini" ? "conf" : "toml"}`, format); // warm up
    const start = performance.now();
    const config = parseConfigText(text, `x.${format === "ini" ? "conf" : "toml"}`, format);
    const ms = performance.now() - start;
    const total = config.peers.reduce((sum, p) => sum + p.allowedIps.length, 0);
    console.log(`${name.padEnd(44)} N=${String(n).padStart(6)}  ${ms.toFixed(0).padStart(5)} ms  (${total} prefixes, ${config.peers.length} peers)`);
  }
}
