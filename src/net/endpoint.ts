// A UDP endpoint (address + port) and its text forms: "1.2.3.4:51820", "[2001:db8::1]:51820".
import { formatIp, parseIp } from "./ip.ts";
import { quote } from "../text.ts";

export interface Endpoint {
  readonly address: Uint8Array; // 4 or 16 bytes
  readonly port: number;
}

/** Splits "host:port" / "[v6]:port"; the host may be a name that is resolved later. */
export function splitHostPort(text: string): { host: string; port: number } | string {
  let host: string;
  let portText: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0 || text[close + 1] !== ":") return `${quote(text)} is not [address]:port`;
    host = text.slice(1, close);
    portText = text.slice(close + 2);
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) return `${quote(text)} has no port (expected host:port)`;
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(":")) return `${quote(text)}: an IPv6 endpoint is written [address]:port`;
  }
  if (host === "") return `${quote(text)} has no host`;
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    return `${quote(portText)} is not a port (1-65535)`;
  }
  return { host, port: Number(portText) };
}

/** Parses an endpoint whose host is an IP literal. */
export function parseEndpoint(text: string): Endpoint | string {
  const split = splitHostPort(text);
  if (typeof split === "string") return split;
  const address = parseIp(split.host);
  if (!address) return `${quote(split.host)} is not an IP address`;
  return { address, port: split.port };
}

export function formatEndpoint(ep: Endpoint): string {
  const ip = formatIp(ep.address);
  return ep.address.length === 16 ? `[${ip}]:${ep.port}` : `${ip}:${ep.port}`;
}

export function endpointEquals(a: Endpoint | null, b: Endpoint | null): boolean {
  if (!a || !b) return a === b;
  if (a.port !== b.port || a.address.length !== b.address.length) return false;
  for (let i = 0; i < a.address.length; i++) if (a.address[i] !== b.address[i]) return false;
  return true;
}
