// Turns the neutral key/value form that both file parsers (ini.ts, toml.ts) produce into the
// validated Config model. The key tables below are the single list of what a config may contain:
// supporting a new key means adding one entry to INTERFACE_KEYS or PEER_KEYS.
//
// The mode is decided before any value is read: a PrivateKey in [Interface] makes a WireGuard
// config (keys required on every peer, names optional), otherwise it is a wontun config (names
// required, no keys anywhere). Mixing the two is an error located at the offending peer.
import { type Cidr, cidrContains, formatCidr, ipEquals, parseCidr, parseIpv4, parseIpv6, type SpecialAddress, specialAddress } from "../net/ip.ts";
import { splitHostPort } from "../net/endpoint.ts";
import { decodeKey, encodeKey, isLowOrderPoint, publicKeyOf } from "../crypto/keys.ts";
import {
  type Config,
  ConfigError,
  type ConfigMode,
  defaultListenPort,
  defaultMtu,
  type InterfaceConfig,
  MAX_PEER_NAME_BYTES,
  type PeerConfig,
  peerLabel,
  hostSettingsOf,
} from "./model.ts";
import { DEFAULT_MESH_TTL, defaultMeshPrefix, MAX_MESH_TTL, MIN_MESH_TTL, type MeshConfig } from "../mesh/config.ts";
import { quote } from "../text.ts";
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { dirname, resolve as resolvePath } from "node:path";

export type ConfigFormat = "ini" | "toml";
export type SectionKind = "interface" | "peer" | "mesh";

// ---------------------------------------------------------------------------------------------
// The neutral form

/** One value as found in the file: a raw string (ini) or a typed TOML value. */
export interface RawItem {
  value: unknown;
  line: number | null;
}

/** All occurrences of one key in one section (several only for list keys). */
export interface RawEntry {
  /** The key as written in the file, for messages. */
  key: string;
  /** Line of the first occurrence. */
  line: number | null;
  items: RawItem[];
}

export interface RawSection {
  kind: SectionKind;
  /** Line of the section header ([Interface], [[peers]] …), null if there is none. */
  line: number | null;
  /** Keyed by the spec's ini name (the canonical id of a key). */
  entries: Map<string, RawEntry>;
}

export interface RawConfig {
  file: string;
  format: ConfigFormat;
  interface: RawSection | null;
  peers: RawSection[];
  /** [Mesh] (TOML [mesh]), absent when the file has none. */
  mesh?: RawSection | null;
}

// ---------------------------------------------------------------------------------------------
// The key tables

/** What a key's apply() may depend on besides its own value. */
export interface ApplyContext {
  mode: ConfigMode;
}

export interface KeySpec<T> {
  /** wg-quick spelling; matched case-insensitively in ini files. Also the key's id. */
  ini: string;
  /** snake_case spelling used in TOML files. */
  toml: string;
  /** Several values: comma-separated in ini (repeated lines accumulate), string or array in TOML. */
  list?: boolean;
  /** Repeated ini lines accumulate, each one value (no comma splitting); string or array in TOML. */
  repeat?: boolean;
  /**
   * A wg-quick feature wontun reads but does not act on: it is validated, then reported in
   * Config.warnings (unless apply returns false: a value that asks for nothing, e.g. Table = auto).
   */
  warn?: boolean;
  /** Reads the entry's value(s) into the section being built; throws ConfigError on bad input. */
  apply(target: T, value: ValueReader, context: ApplyContext): void | boolean;
}

/** wg-quick's shell hooks: one command per line, repeatable; `wontun up` runs them (src/host/hooks.ts). */
function hook(ini: string, toml: string, field: "preUp" | "postUp" | "preDown" | "postDown"): KeySpec<InterfaceConfig> {
  return { ini, toml, repeat: true, apply: (t, v) => { hostSettingsOf(t)[field] = v.lines(); } };
}

export const INTERFACE_KEYS: KeySpec<InterfaceConfig>[] = [
  { ini: "Name", toml: "name", apply: (t, v) => { t.name = v.name(); } },
  { ini: "PrivateKey", toml: "private_key", apply: (t, v) => { t.privateKey = v.key(); } },
  // The key in a file of its own (a container secret, /run/secrets/wg0.key), read when the config is.
  {
    ini: "PrivateKeyFile",
    toml: "private_key_file",
    apply: (t, v) => {
      const { key, path } = v.keyFile();
      t.privateKey = key;
      t.privateKeyFile = path;
    },
  },
  { ini: "Address", toml: "address", list: true, apply: (t, v) => { t.addresses = v.cidrs(true); } },
  {
    ini: "ListenPort",
    toml: "listen_port",
    // 0 asks the kernel for a free port: what wg does without a ListenPort. A wontun peer must be
    // reachable on a known port, so wontun mode wants 1-65535.
    apply: (t, v, c) => { t.listenPort = v.integer(c.mode === "wireguard" ? 0 : 1, 65535); },
  },
  { ini: "MTU", toml: "mtu", apply: (t, v) => { t.mtu = v.integer(MIN_MTU, MAX_MTU); t.mtuSet = true; } },
  { ini: "FwMark", toml: "fwmark", apply: (t, v) => { t.fwmark = v.integer(0, 0xffffffff, { off: true, hex: true }); } },
  // wg-quick's additions, acted on by `wontun up` (src/host).
  { ini: "DNS", toml: "dns", list: true, apply: (t, v) => { Object.assign(hostSettingsOf(t), v.dns()); } },
  { ini: "Table", toml: "table", apply: (t, v) => { hostSettingsOf(t).table = v.table(); } },
  { ini: "SaveConfig", toml: "save_config", apply: (t, v) => { hostSettingsOf(t).saveConfig = v.boolean(); } },
  hook("PreUp", "pre_up", "preUp"),
  hook("PostUp", "post_up", "postUp"),
  hook("PreDown", "pre_down", "preDown"),
  hook("PostDown", "post_down", "postDown"),
];

export const PEER_KEYS: KeySpec<PeerConfig>[] = [
  { ini: "Name", toml: "name", apply: (t, v) => { t.name = v.name(); } },
  { ini: "PublicKey", toml: "public_key", apply: (t, v) => { t.publicKey = v.publicKey(); } },
  { ini: "PresharedKey", toml: "preshared_key", apply: (t, v) => { t.presharedKey = v.key(); } },
  { ini: "Endpoint", toml: "endpoint", apply: (t, v) => { t.endpoint = v.endpoint(); } },
  { ini: "AllowedIPs", toml: "allowed_ips", list: true, apply: (t, v) => { t.allowedIps = v.cidrs(false); } },
  {
    ini: "PersistentKeepalive",
    toml: "persistent_keepalive",
    apply: (t, v) => { t.persistentKeepalive = v.integer(0, 65535, { off: true }); },
  },
];

/** [Mesh]: the etcd store, the mesh's network and what this node publishes (src/mesh). */
export const MESH_KEYS: KeySpec<MeshConfig>[] = [
  { ini: "Store", toml: "store", list: true, apply: (t, v) => { t.store = v.storeUrls(); } },
  { ini: "CAFile", toml: "ca_file", apply: (t, v) => { t.caFile = v.path(); } },
  { ini: "CertFile", toml: "cert_file", apply: (t, v) => { t.certFile = v.path(); } },
  { ini: "KeyFile", toml: "key_file", apply: (t, v) => { t.keyFile = v.path(); } },
  { ini: "ServerName", toml: "server_name", apply: (t, v) => { t.serverName = v.string().trim(); } },
  { ini: "Username", toml: "username", apply: (t, v) => { t.username = v.string(); } },
  { ini: "Password", toml: "password", apply: (t, v) => { t.password = v.string(); } },
  { ini: "Network", toml: "network", apply: (t, v) => { t.network = v.meshNetwork(); } },
  { ini: "Endpoint", toml: "endpoint", repeat: true, apply: (t, v) => { t.endpoints = v.meshEndpoints(); } },
  { ini: "Name", toml: "name", apply: (t, v) => { t.name = v.name(); } },
  { ini: "Prefix", toml: "prefix", apply: (t, v) => { t.prefix = v.keyPrefix(); } },
  { ini: "Subnets", toml: "subnets", list: true, apply: (t, v) => { t.subnets = v.cidrs(false); } },
  { ini: "TTL", toml: "ttl", apply: (t, v) => { t.ttl = v.integer(MIN_MESH_TTL, MAX_MESH_TTL); } },
  { ini: "Cache", toml: "cache", apply: (t, v) => { t.cacheFile = v.path(); } },
];

export const MIN_MTU = 576;
export const MAX_MTU = 9000;
/** IPv6 requires every link to carry at least 1280-byte packets (RFC 8200). */
export const MIN_MTU_IPV6 = 1280;

export function keysOf(kind: SectionKind): KeySpec<never>[] {
  if (kind === "mesh") return MESH_KEYS as KeySpec<never>[];
  return (kind === "interface" ? INTERFACE_KEYS : PEER_KEYS) as KeySpec<never>[];
}

/** How a section is written in the given format, for messages. */
export function sectionLabel(kind: SectionKind, format: ConfigFormat): string {
  if (kind === "mesh") return format === "ini" ? "[Mesh]" : "[mesh]";
  if (format === "ini") return kind === "interface" ? "[Interface]" : "[Peer]";
  return kind === "interface" ? "[interface]" : "[[peers]]";
}

function keyName(spec: KeySpec<never>, format: ConfigFormat): string {
  return format === "ini" ? spec.ini : spec.toml;
}

// ---------------------------------------------------------------------------------------------
// Reading values

/** A short description of a TOML value's type for "expected …, got …" messages. */
export function describeType(value: unknown): string {
  if (typeof value === "string") return "string";
  if (typeof value === "bigint") return "integer";
  if (typeof value === "number") return "float"; // TOML integers are parsed as bigint
  if (typeof value === "boolean") return "boolean";
  if (Array.isArray(value)) return "array";
  if (value instanceof Date || (value !== null && typeof value === "object" && !isPlainObject(value))) {
    return "date/time";
  }
  if (value !== null && typeof value === "object") return "table";
  return String(value);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

const SPECIAL_WORDS = new Map<SpecialAddress, string>([
  ["unspecified", "the unspecified address"],
  ["loopback", "a loopback address"],
  ["multicast", "a multicast address"],
  ["broadcast", "the broadcast address"],
]);

const DNS_LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** A key file holds 44 characters and a newline; anything much longer is not one. */
const KEY_FILE_MAX_BYTES = 1024;

/** "ENOENT: no such file or directory" from a node:fs error. */
function describeFsError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const text = e.code === "ENOENT" ? "no such file or directory" : e.code === "EACCES" ? "permission denied" : e.code === "EISDIR" ? "it is a directory" : e.message;
  return e.code ? `${e.code}: ${text}` : String(err);
}

/** Typed access to one entry's value(s); every failure is a ConfigError located at the item. */
export class ValueReader {
  constructor(
    private readonly file: string,
    private readonly format: ConfigFormat,
    private readonly entry: RawEntry,
    /** Where a value that is valid but worth a word goes (Config.warnings). */
    private readonly warnings: string[] = [],
  ) {}

  fail(reason: string, line: number | null = this.entry.line): never {
    throw new ConfigError(this.file, line, this.entry.key, reason);
  }

  /** The one item of a single-valued key. */
  private single(): RawItem {
    // The parsers reject repeated single-valued keys, so there is exactly one item.
    return this.entry.items[0];
  }

  /** A non-empty string. */
  string(): string {
    const item = this.single();
    if (typeof item.value !== "string") this.fail(`expected a string, got ${describeType(item.value)}`, item.line);
    if (item.value === "") this.fail("empty value", item.line);
    return item.value;
  }

  /** A peer or interface name: sent in handshakes, so it must fit the 100-byte name field. */
  name(): string {
    const name = this.string();
    const line = this.single().line;
    const bytes = new TextEncoder().encode(name).length;
    if (bytes > MAX_PEER_NAME_BYTES) {
      this.fail(`name is ${bytes} bytes long, at most ${MAX_PEER_NAME_BYTES} bytes (UTF-8) are allowed`, line);
    }
    if (name !== name.trim()) this.fail("name must not start or end with whitespace", line);
    // Control characters (NUL above all) would not survive the zero-padded name field; '#' starts
    // a comment in .conf files, so such a name could not be written back as one.
    if (/[\u0000-\u001f\u007f]/.test(name)) this.fail("name must not contain control characters", line);
    if (name.includes("#")) this.fail("name must not contain '#'", line);
    return name;
  }

  /**
   * An integer in [min, max]. ini: decimal digits (or 0x… hex with `hex`); TOML: an integer.
   * With `off`, the word "off" means 0 in both formats.
   */
  integer(min: number, max: number, opts: { off?: boolean; hex?: boolean } = {}): number {
    const item = this.single();
    const expected = `expected an integer ${min}-${max}${opts.off ? ' or "off"' : ""}`;
    const value = item.value;
    let n: number;
    if (typeof value === "string") {
      if (value === "") this.fail("empty value", item.line);
      if (opts.off && value.toLowerCase() === "off") return 0;
      if (this.format === "toml") this.fail(`${expected}, got string`, item.line);
      if (/^\d+$/.test(value)) n = Number(value);
      else if (opts.hex && /^0x[0-9a-f]+$/i.test(value)) n = Number.parseInt(value.slice(2), 16);
      else this.fail(`${expected}, got ${quote(value)}`, item.line);
    } else if (typeof value === "bigint") {
      if (value < BigInt(min) || value > BigInt(max)) this.fail(`${expected}, got ${value}`, item.line);
      n = Number(value);
    } else {
      this.fail(`${expected}, got ${describeType(value)}`, item.line);
    }
    if (n < min || n > max) this.fail(`${expected}, got ${value}`, item.line);
    return n;
  }

  /** All values of a list key, flattened: ini values are split at commas. */
  strings(): { text: string; line: number | null }[] {
    const out: { text: string; line: number | null }[] = [];
    for (const item of this.entry.items) {
      if (typeof item.value !== "string") {
        this.fail(`expected a string or an array of strings, got ${describeType(item.value)}`, item.line);
      }
      if (item.value.trim() === "") this.fail("empty value", item.line);
      if (this.format === "ini") {
        for (const piece of item.value.split(",")) {
          const text = piece.trim();
          if (text === "") this.fail(`empty item in the list ${quote(item.value)}`, item.line);
          out.push({ text, line: item.line });
        }
      } else {
        out.push({ text: item.value.trim(), line: item.line });
      }
    }
    return out;
  }

  /** All values of a repeatable key, one per line (ini) or array item (TOML), not split at commas. */
  lines(): string[] {
    return this.entry.items.map((item) => {
      if (typeof item.value !== "string") {
        this.fail(`expected a string or an array of strings, got ${describeType(item.value)}`, item.line);
      }
      if (item.value.trim() === "") this.fail("empty value", item.line);
      return item.value;
    });
  }

  /** A WireGuard key: 32 bytes written as 44 characters of base64, as `wg genkey` prints them. */
  key(): Uint8Array {
    const text = this.string();
    const key = decodeKey(text.trim());
    // The reason comes from decodeKey, which must not repeat the text: it may be a private key.
    if (typeof key === "string") this.fail(key, this.single().line);
    return key;
  }

  /**
   * PrivateKeyFile: a path (relative to the config file's directory) to a file holding one base64
   * key, as `wg genkey` writes it; surrounding whitespace is allowed. The file is never echoed.
   */
  keyFile(): { key: Uint8Array; path: string } {
    const line = this.single().line;
    const path = resolvePath(dirname(this.file), this.string().trim());
    let fd: number;
    let text: string;
    try {
      fd = openSync(path, "r");
    } catch (err) {
      this.fail(`cannot read key file ${quote(path)}: ${describeFsError(err)}`, line);
    }
    try {
      // A key is 44 characters; reading stops well after that, whatever the file is (/dev/zero).
      const buf = new Uint8Array(KEY_FILE_MAX_BYTES + 1);
      let n = 0;
      for (;;) {
        const got = readSync(fd, buf, n, buf.length - n, null);
        if (got === 0) break;
        n += got;
        if (n > KEY_FILE_MAX_BYTES) this.fail(`key file ${quote(path)} is too long to hold one base64 key`, line);
      }
      text = new TextDecoder().decode(buf.subarray(0, n)).trim();
      if ((fstatSync(fd).mode & 0o007) !== 0) this.warnings.push(`${this.file}${line === null ? "" : `:${line}`}: key file ${path} is accessible by others`);
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      this.fail(`cannot read key file ${quote(path)}: ${describeFsError(err)}`, line);
    } finally {
      closeSync(fd);
    }
    if (text === "") this.fail(`key file ${quote(path)} is empty; it must hold one base64 key (wontun genkey > FILE)`, line);
    const key = decodeKey(text);
    // decodeKey's reason never repeats the text (it is a private key), nor does this message.
    if (typeof key === "string") this.fail(`key file ${quote(path)} does not hold one base64 key: ${key}`, line);
    return { key, path };
  }

  /** A file name, resolved against the config file's directory (read when it is used). */
  path(): string {
    return resolvePath(dirname(this.file), this.string().trim());
  }

  /** [Mesh] Store: etcd endpoints, http:// or https:// with a host and port. */
  storeUrls(): string[] {
    return this.strings().map(({ text, line }) => {
      let url: URL;
      try {
        url = new URL(text);
      } catch {
        this.fail(`${quote(text)} is not a URL (expected http://HOST:2379 or https://HOST:2379)`, line);
      }
      if (url.protocol !== "http:" && url.protocol !== "https:") this.fail(`${quote(text)}: the store is reached over http:// or https://`, line);
      if (url.hostname === "" || url.username !== "" || url.password !== "" || (url.pathname !== "/" && url.pathname !== "")) {
        this.fail(`${quote(text)}: expected http(s)://HOST:PORT only (credentials go in Username/Password)`, line);
      }
      return `${url.protocol}//${url.host}`;
    });
  }

  /** [Mesh] Network: one prefix with room for at least two nodes; host bits are cleared. */
  meshNetwork(): Cidr {
    const [first] = this.cidrs(false);
    if (this.strings().length !== 1) this.fail("one network, e.g. 10.70.0.0/16 or fd70::/64");
    const bits = first.address.length * 8;
    if (bits - first.prefix < 2) this.fail(`${formatCidr(first)} leaves no room for nodes (at most /${bits - 2})`);
    if (specialAddress(first.address) || first.prefix === 0) this.fail(`${formatCidr(first)} is not a network for a mesh`);
    return first;
  }

  /**
   * [Mesh] Endpoint: repeatable host:port, the host an IP literal or a DNS name. The node resolves
   * its own names and publishes addresses (src/mesh/endpoints.ts), so other nodes need no resolver.
   */
  meshEndpoints(): { host: string; port: number }[] {
    return this.entry.items.map((item) => {
      if (typeof item.value !== "string") this.fail(`expected a string, got ${describeType(item.value)}`, item.line);
      return this.checkEndpoint(item.value.trim(), item.line);
    });
  }

  /** [Mesh] Prefix: an etcd key prefix starting with "/", no whitespace; a trailing "/" is dropped. */
  keyPrefix(): string {
    const text = this.string();
    if (!text.startsWith("/") || /[\s\u0000-\u001f\u007f]/.test(text) || text.length > 200) {
      this.fail(`${quote(text)} is not a key prefix (expected /wontun/NAME: starts with "/", no spaces, at most 200 characters)`);
    }
    const trimmed = text.replace(/\/+$/, "");
    if (trimmed === "") this.fail('the prefix "/" would be the whole store');
    return trimmed;
  }

  /** A peer's public key: a key that no handshake can ever complete with is refused here. */
  publicKey(): Uint8Array {
    const key = this.key();
    if (isLowOrderPoint(key)) {
      this.fail("this public key is a low-order point (e.g. all zeros): no handshake with it can succeed", this.single().line);
    }
    return key;
  }

  /** wg-quick's boolean (SaveConfig): "true" or "false" in ini, a boolean in TOML. */
  boolean(): boolean {
    const item = this.single();
    const value = item.value;
    if (typeof value === "boolean") return value;
    if (typeof value === "string" && this.format === "ini") {
      if (value === "true") return true;
      if (value === "false") return false;
      this.fail(`expected true or false, got ${quote(value)}`, item.line);
    }
    this.fail(`expected true or false, got ${describeType(value)}`, item.line);
  }

  /** wg-quick's Table: "off", "auto", a table number or a table name; a TOML integer is a number. */
  table(): string {
    const item = this.single();
    if (typeof item.value === "bigint") {
      if (item.value < 0n || item.value > 0xffffffffn) this.fail(`expected a routing table 0-4294967295, got ${item.value}`, item.line);
      return String(item.value);
    }
    const text = this.string();
    if (/\s/.test(text)) this.fail(`expected off, auto, or a routing table number or name, got ${quote(text)}`, item.line);
    return text;
  }

  /** wg-quick's DNS: items that look like IP addresses are servers, the rest search domains. */
  dns(): { dns: string[]; dnsSearch: string[] } {
    const dns: string[] = [];
    const dnsSearch: string[] = [];
    for (const { text, line } of this.strings()) {
      if (/^[0-9.]+$/.test(text) || text.includes(":")) {
        if (!parseIpv4(text) && !parseIpv6(text)) this.fail(`"${text}" is not an IP address`, line);
        dns.push(text);
      } else {
        const name = text.endsWith(".") ? text.slice(0, -1) : text;
        if (name.length > 253 || !name.split(".").every((label) => DNS_LABEL.test(label))) {
          this.fail(`"${text}" is neither an IP address nor a search domain`, line);
        }
        dnsSearch.push(text);
      }
    }
    return { dns, dnsSearch };
  }

  /** A list of CIDRs; interface addresses keep their host bits, AllowedIPs are truncated. */
  cidrs(keepHostBits: boolean): Cidr[] {
    const out: Cidr[] = [];
    const seen = new Set<string>(); // a set, not a scan of `out`: 100,000 prefixes must stay fast
    for (const { text, line } of this.strings()) {
      const cidr = parseCidr(text, keepHostBits);
      if (typeof cidr === "string") this.fail(`bad address/prefix ${quote(text)}: ${cidr}`, line);
      if (keepHostBits) this.checkInterfaceAddress(cidr, text, line);
      // The same network twice in one list means nothing more than once: keep the first.
      const id = `${cidr.address.join(".")}/${cidr.prefix}`;
      if (!seen.has(id)) {
        seen.add(id);
        out.push(cidr);
      }
    }
    return out;
  }

  /** An interface address the kernel accepts and that means one host on one network. */
  private checkInterfaceAddress(cidr: Cidr, text: string, line: number | null): void {
    const special = specialAddress(cidr.address);
    if (special) this.fail(`${quote(text)} is ${SPECIAL_WORDS.get(special)}, not an address for an interface`, line);
    if (cidr.prefix === 0) this.fail(`${quote(text)}: a /0 prefix is every address, not the interface's network`, line);
  }

  /** host:port or [v6]:port; the host may be a DNS name, resolved later. */
  endpoint(): { host: string; port: number } {
    return this.checkEndpoint(this.string().trim(), this.single().line);
  }

  private checkEndpoint(text: string, line: number | null): { host: string; port: number } {
    const split = splitHostPort(text);
    if (typeof split === "string") this.fail(`bad endpoint: ${split}`, line);
    const { host } = split;
    let literal: Uint8Array | null = null;
    if (text.startsWith("[")) {
      literal = parseIpv6(host);
      if (!literal) this.fail(`bad endpoint: ${quote(host)} is not an IPv6 address`, line);
    } else if (/^[\d.]+$/.test(host)) {
      literal = parseIpv4(host);
      if (!literal) this.fail(`bad endpoint: ${quote(host)} is not an IPv4 address`, line);
    } else {
      const name = host.endsWith(".") ? host.slice(0, -1) : host;
      if (name.length > 253 || !name.split(".").every((label) => DNS_LABEL.test(label))) {
        this.fail(`bad endpoint: ${quote(host)} is neither an IP address nor a host name`, line);
      }
    }
    // A peer is one host: datagrams to these would go nowhere or everywhere (loopback is fine, for tests).
    const special = literal && specialAddress(literal);
    if (special && special !== "loopback") this.fail(`bad endpoint: ${quote(host)} is ${SPECIAL_WORDS.get(special)}, not a peer's address`, line);
    return split;
  }
}

// ---------------------------------------------------------------------------------------------
// From the neutral form to the model

function defaultInterface(mode: ConfigMode): InterfaceConfig {
  return {
    name: "",
    addresses: [],
    listenPort: defaultListenPort(mode),
    mtu: defaultMtu(mode),
    mtuSet: false,
    fwmark: 0,
    privateKey: null,
  };
}

function defaultPeer(): PeerConfig {
  return { name: "", endpoint: null, allowedIps: [], persistentKeepalive: 0, publicKey: null, presharedKey: null };
}

function applySection<T>(raw: RawConfig, section: RawSection, target: T, context: ApplyContext, warnings: string[]): T {
  for (const spec of keysOf(section.kind) as KeySpec<T>[]) {
    const entry = section.entries.get(spec.ini);
    if (!entry) continue;
    const meaningful = spec.apply(target, new ValueReader(raw.file, raw.format, entry, warnings), context);
    if (spec.warn && meaningful !== false) {
      const where = entry.line === null ? raw.file : `${raw.file}:${entry.line}`;
      warnings.push(`${where}: ${entry.key} is accepted but not acted on yet (wg-quick feature)`);
    }
  }
  return target;
}

/** The ids of the keys only a WireGuard-mode peer may have. */
const PEER_KEY_IDS = ["PublicKey", "PresharedKey"];

/** Validates the neutral form into a Config; throws the first ConfigError found. */
export function buildConfig(raw: RawConfig): Config {
  const { file, format } = raw;
  const entryOf = (section: RawSection, id: string) => section.entries.get(id);
  const lineOf = (section: RawSection, id: string) => entryOf(section, id)?.line ?? section.line;
  const keyOf = (section: RawSection, id: string) =>
    entryOf(section, id)?.key ?? keyName(keysOf(section.kind).find((s) => s.ini === id)!, format);
  const spelled = (kind: SectionKind, id: string) => keyName(keysOf(kind).find((s) => s.ini === id)!, format);
  const nameKey = spelled("interface", "Name");

  if (!raw.interface) {
    throw new ConfigError(file, null, null, `missing ${sectionLabel("interface", format)} section`);
  }
  const ifSection = raw.interface;
  const ifLabel = sectionLabel("interface", format);
  const peerSectionLabel = sectionLabel("peer", format);
  const privateKeyName = spelled("interface", "PrivateKey");
  const publicKeyName = spelled("peer", "PublicKey");
  const mode: ConfigMode = ifSection.entries.has("PrivateKey") || ifSection.entries.has("PrivateKeyFile") ? "wireguard" : "wontun";
  if (ifSection.entries.has("PrivateKey") && ifSection.entries.has("PrivateKeyFile")) {
    throw new ConfigError(file, lineOf(ifSection, "PrivateKeyFile"), keyOf(ifSection, "PrivateKeyFile"),
      `${keyOf(ifSection, "PrivateKeyFile")} and ${keyOf(ifSection, "PrivateKey")} both give the private key; keep one`);
  }
  const context: ApplyContext = { mode };
  const warnings: string[] = [];

  const iface = applySection(raw, ifSection, defaultInterface(mode), context, warnings);
  if (mode === "wontun") {
    // A key on a peer without one on the interface is a WireGuard config missing its PrivateKey:
    // say so before complaining about names a WireGuard config does not need.
    for (const section of raw.peers) {
      const id = PEER_KEY_IDS.find((k) => section.entries.has(k));
      if (id) {
        throw new ConfigError(file, lineOf(section, id), keyOf(section, id),
          `${keyOf(section, id)} needs ${privateKeyName} in ${ifLabel}; without keys wontun runs its unencrypted protocol`);
      }
    }
    if (iface.name === "") {
      throw new ConfigError(file, ifSection.line, nameKey,
        `${ifLabel} needs a Name (this host's name, sent in handshakes)`);
    }
  }
  const mesh = raw.mesh ? buildMesh(raw, raw.mesh, mode, iface, context, warnings) : undefined;
  if (iface.addresses.length === 0 && !mesh) {
    throw new ConfigError(file, lineOf(ifSection, "Address"), keyOf(ifSection, "Address"),
      `${ifLabel} needs at least one Address (address/prefix of the tunnel interface, e.g. 10.10.0.3/24)`);
  }
  const v6 = iface.addresses.find((a) => a.address.length === 16);
  if (v6 && iface.mtu < MIN_MTU_IPV6) {
    throw new ConfigError(file, lineOf(ifSection, "MTU"), keyOf(ifSection, "MTU"),
      `MTU ${iface.mtu} is too small for IPv6 (address ${formatCidr(v6)}): IPv6 needs at least ${MIN_MTU_IPV6}`);
  }
  const ownPublicKey = iface.privateKey ? encodeKey(publicKeyOf(iface.privateKey)) : null;

  const peers: PeerConfig[] = [];
  const nameLines = new Map<string, number | null>();
  const keyLines = new Map<string, { peer: PeerConfig; line: number | null }>();
  const allowedBy = new Map<string, string>();
  for (const section of raw.peers) {
    const peer = applySection(raw, section, defaultPeer(), context, warnings);
    const nameLine = lineOf(section, "Name");
    if (mode === "wireguard") {
      if (!peer.publicKey) {
        throw new ConfigError(file, section.line, publicKeyName,
          `${publicKeyName} is required when ${ifLabel} has ${privateKeyName}`);
      }
      const keyLine = lineOf(section, "PublicKey");
      const key = encodeKey(peer.publicKey);
      if (key === ownPublicKey) {
        throw new ConfigError(file, keyLine, keyOf(section, "PublicKey"),
          `this is the interface's own public key (from its ${privateKeyName}); a peer needs the other side's public key`);
      }
      const first = keyLines.get(key);
      if (first) {
        throw new ConfigError(file, keyLine, keyOf(section, "PublicKey"),
          `duplicate public key: peer ${peerLabel(first.peer)}${first.line === null ? "" : ` (line ${first.line})`} has the same one`);
      }
      keyLines.set(key, { peer, line: keyLine });
    } else if (peer.name === "") {
      throw new ConfigError(file, section.line, nameKey,
        `${peerSectionLabel} needs a Name (the name the peer sends in its handshakes)`);
    }
    if (peer.name !== "") {
      if (peer.name === iface.name) {
        throw new ConfigError(file, nameLine, keyOf(section, "Name"),
          `peer ${quote(peer.name)} has the same name as the interface`);
      }
      if (nameLines.has(peer.name)) {
        const first = nameLines.get(peer.name);
        throw new ConfigError(file, nameLine, keyOf(section, "Name"),
          `duplicate peer name ${quote(peer.name)}${first === null ? "" : ` (first used on line ${first})`}`);
      }
      nameLines.set(peer.name, nameLine);
    }
    for (const cidr of peer.allowedIps) {
      const text = formatCidr(cidr);
      const owner = allowedBy.get(text);
      if (owner !== undefined) {
        throw new ConfigError(file, lineOfCidr(raw, section, cidr), keyOf(section, "AllowedIPs"),
          `${text} is already allowed for peer ${owner}`);
      }
      allowedBy.set(text, peerLabel(peer));
    }
    peers.push(peer);
  }
  return mesh ? { mode, interface: iface, peers, warnings, mesh } : { mode, interface: iface, peers, warnings };
}

/** [Mesh]: WireGuard mode only; Store and Network required; Address, if given, inside Network. */
function buildMesh(raw: RawConfig, section: RawSection, mode: ConfigMode, iface: InterfaceConfig, context: ApplyContext, warnings: string[]): MeshConfig {
  const label = sectionLabel("mesh", raw.format);
  const spelled = (id: string) => section.entries.get(id)?.key ?? keyName(MESH_KEYS.find((s) => s.ini === id) as KeySpec<never>, raw.format);
  const fail = (id: string | null, reason: string): never => {
    throw new ConfigError(raw.file, id ? (section.entries.get(id)?.line ?? section.line) : section.line, id ? spelled(id) : null, reason);
  };
  if (mode !== "wireguard") fail(null, `${label} needs a PrivateKey in ${sectionLabel("interface", raw.format)}: the mesh runs WireGuard`);
  const mesh = applySection(raw, section, {
    store: [], network: { address: new Uint8Array(4), prefix: -1 }, endpoints: [], name: "", prefix: "", subnets: [], ttl: DEFAULT_MESH_TTL,
  } as MeshConfig, context, warnings);
  if (mesh.store.length === 0) fail("Store", `${label} needs Store (the etcd endpoints, e.g. http://192.0.2.10:2379)`);
  if (mesh.network.prefix < 0) fail("Network", `${label} needs Network (the mesh's prefix, e.g. 10.70.0.0/16)`);
  if (mesh.prefix === "") mesh.prefix = defaultMeshPrefix(mesh.network);
  if ((mesh.certFile === undefined) !== (mesh.keyFile === undefined)) fail(mesh.certFile ? "CertFile" : "KeyFile", "a client certificate needs both CertFile and KeyFile");
  if ((mesh.username === undefined) !== (mesh.password === undefined)) fail(mesh.username ? "Username" : "Password", "etcd authentication needs both Username and Password");
  const tls = mesh.caFile ?? mesh.certFile;
  if (tls && !mesh.store.every((url) => url.startsWith("https:"))) fail("Store", "CAFile/CertFile are for https:// store endpoints");
  const ipHost = mesh.store.find((url) => url.startsWith("https:") && /^(\[.*\]|[\d.]+)$/.test(new URL(url).hostname));
  if (ipHost && !mesh.serverName) {
    fail("Store", `${ipHost}: an https:// endpoint given by IP address needs ServerName (a DNS name in the server's certificate): TLS here cannot send an IP address as the server name`);
  }
  for (const subnet of mesh.subnets) {
    if (cidrOverlaps(subnet, mesh.network)) fail("Subnets", `${formatCidr(subnet)} overlaps the mesh's Network ${formatCidr(mesh.network)}`);
  }
  if (iface.addresses.length > 0 && !iface.addresses.some((a) => cidrContains(mesh.network, a.address))) {
    fail("Network", `no [Interface] Address is inside ${formatCidr(mesh.network)}; leave Address out to have one allocated`);
  }
  if (iface.host?.saveConfig) fail(null, `SaveConfig cannot be used with ${label}: mesh members would be written as static peers`);
  return mesh;
}

/** True when one prefix contains the other. */
function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  return a.address.length === b.address.length && (a.prefix <= b.prefix ? cidrContains(a, b.address) : cidrContains(b, a.address));
}

/** The line of the AllowedIPs item that yields `cidr` (for error messages). */
function lineOfCidr(raw: RawConfig, section: RawSection, cidr: Cidr): number | null {
  const entry = section.entries.get("AllowedIPs");
  if (!entry) return section.line;
  for (const { text, line } of new ValueReader(raw.file, raw.format, entry).strings()) {
    const parsed = parseCidr(text);
    if (typeof parsed !== "string" && parsed.prefix === cidr.prefix && ipEquals(parsed.address, cidr.address)) {
      return line;
    }
  }
  return entry.line;
}


/**
 * For an unknown key: the key it was probably meant to be, written as the format wants
 * ("listenport" or "ListenPort" in a .toml file → "listen_port"; "listen_port" in a .conf → "ListenPort").
 */
export function suggestKey(kind: SectionKind, key: string, format: ConfigFormat): string | null {
  const squash = (s: string) => s.replace(/[_-]/g, "").toLowerCase();
  const spec = keysOf(kind).find((s) => squash(s.ini) === squash(key));
  return spec ? keyName(spec, format) : null;
}
