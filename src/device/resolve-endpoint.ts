// A configured endpoint ("host:port", host an IP literal or a name) as an address: names are
// resolved once, at start, as the seed does.
import { lookup } from "node:dns/promises";
import { parseIp } from "../net/ip.ts";
import type { Endpoint } from "../net/endpoint.ts";

/** null if the name does not resolve. */
export async function resolveEndpoint(host: string, port: number): Promise<Endpoint | null> {
  const literal = parseIp(host);
  if (literal) return { address: literal, port };
  try {
    const { address } = await lookup(host);
    const parsed = parseIp(address);
    return parsed ? { address: parsed, port } : null;
  } catch {
    return null;
  }
}
