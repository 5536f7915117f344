// Running wontun inside lab hosts: write a config, start `wontun up`, wait until it runs, and
// check connectivity with the real tools (ping, nc).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach } from "bun:test";
import { Lab, waitFor, type Host, type SpawnedProcess } from "./netns.ts";

export const REPO = resolve(import.meta.dir, "../..");
export const MAIN = join(REPO, "src/cli/main.ts");
export const COMPILED = join(REPO, "dist/wontun");

/** The command that runs wontun from source with the bun running the tests, or a binary. */
export function wontunCommand(binary?: string): string[] {
  return binary ? [binary] : [process.execPath, MAIN];
}

export class ConfigDir {
  readonly path = mkdtempSync(join(tmpdir(), "wontun-test-"));

  write(fileName: string, text: string): string {
    const file = join(this.path, fileName);
    writeFileSync(file, text);
    return file;
  }

  remove(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}

export interface StartOptions {
  binary?: string;
  args?: string[];
  /** Wait for the "running" log line (default true). */
  wait?: boolean;
}

/** Starts `wontun up CONFIG` in `host` and waits until it reports that it runs. */
export async function startWontun(host: Host, config: string, opts: StartOptions = {}): Promise<SpawnedProcess> {
  const proc = host.spawn([...wontunCommand(opts.binary), "up", config, "--log-level", "debug", ...(opts.args ?? [])]);
  if (opts.wait !== false) {
    let exited = false;
    proc.exited.then(() => (exited = true));
    await waitFor(() => {
      if (exited) throw new Error(`wontun exited early:\n${proc.output()}`);
      return proc.output().includes("running");
    }, 10_000, `wontun in ${host.short} to start:\n${proc.output()}`);
  }
  return proc;
}

/** Stops a wontun with SIGTERM and returns its exit status. */
export async function stopWontun(proc: SpawnedProcess): Promise<number> {
  proc.kill("SIGTERM");
  return await proc.exited;
}

export async function ping(host: Host, address: string, count = 1): Promise<boolean> {
  const r = await host.run(["ping", "-c", String(count), "-i", "0.2", "-W", "1", address], { timeoutMs: 5000 + count * 1000 });
  return r.code === 0;
}

export async function waitForPing(host: Host, address: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(() => ping(host, address), timeoutMs, `ping ${address} from ${host.short}`);
}

/**
 * One TCP exchange over the tunnel with nc: `listener` listens on `address`:port and says
 * `reply`; `dialer` connects and says `hello`. Returns what each side received.
 */
export async function ncExchange(
  listener: Host,
  dialer: Host,
  address: string,
  hello: string,
  reply: string,
  port = 7000 + Math.floor(Math.random() * 1000),
): Promise<{ listenerGot: string; dialerGot: string }> {
  const server = listener.spawn(["sh", "-c", `printf '%s\\n' '${reply}' | nc -N -l ${address} ${port}`]);
  let dialerGot = "";
  await waitFor(async () => {
    const r = await dialer.run(["sh", "-c", `printf '%s\\n' '${hello}' | nc -N -w 5 ${address} ${port}`], { timeoutMs: 8000 });
    dialerGot = r.stdout;
    return r.code === 0;
  }, 15_000, `nc ${address}:${port} from ${dialer.short}`);
  await server.exited;
  return { listenerGot: server.output(), dialerGot };
}

export interface Pair {
  server: Host;
  client: Host;
  dir: ConfigDir;
  serverConf: string;
  clientConf: string;
}

export const SERVER_CONF = `[Interface]
Name=server
Address=10.10.0.1/24

[Peer]
Name=client-A
AllowedIPs=10.10.0.3/32
`;

export const CLIENT_CONF = `[Interface]
Name=client-A
Address=10.10.0.3/24

[Peer]
Name=server
Endpoint=192.0.2.1:19988
AllowedIPs=10.10.0.0/24
`;

/**
 * A fresh lab and config directory for each test of the calling file, removed after each test
 * whether it passed or not. Call at the top level of a test file.
 */
export function labPerTest(): { lab(tag: string, prefix?: string): Promise<Lab>; dir(): ConfigDir } {
  let lab: Lab | null = null;
  let dir: ConfigDir | null = null;
  afterEach(async () => {
    await lab?.cleanup();
    dir?.remove();
    lab = null;
    dir = null;
  });
  return {
    async lab(tag: string, prefix?: string): Promise<Lab> {
      lab = await Lab.create(tag, prefix);
      return lab;
    },
    dir(): ConfigDir {
      dir ??= new ConfigDir();
      return dir;
    },
  };
}
