// Running in the background the way wireguard-go does for wg-quick: the command returns once the
// tunnel is ready, while the daemon runs on. Bun cannot fork, so the daemon is this program
// started again, detached (its own session), with a pipe on its stdout over which it says
// READY, or why it failed, before the caller exits.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { daemonRuntimeEnvironment } from "./bun-runtime.ts";

/** Set in the detached daemon's environment: report readiness on stdout. */
export const READY_ENV = "WONTUN_REPORT_READY";
const READY = "READY\n";

/** How to start this program again: the executable, or bun and the script when run from source. */
function selfCommand(): string[] {
  const script = process.argv[1];
  if (script && !script.startsWith("/$bunfs") && /\.(ts|js)$/.test(script) && existsSync(script)) return [process.execPath, script];
  return [process.execPath];
}

/**
 * Starts `args` as a detached copy of this program and resolves with its exit status as the
 * caller should report it: 0 once it said READY, 1 if it failed first (its message is relayed
 * to stderr). `logs`: the daemon's stderr stays the caller's (else /dev/null, as wireguard-go).
 */
export function runDetached(args: string[], logs: boolean): Promise<number> {
  const [command, ...prefix] = selfCommand();
  const child = spawn(command, [...prefix, ...args], {
    detached: true,
    stdio: ["ignore", "pipe", logs ? "inherit" : "ignore"],
    env: { ...process.env, ...daemonRuntimeEnvironment(), [READY_ENV]: "1" },
  });
  return new Promise((resolve) => {
    let said = "";
    let done = false;
    const finish = (code: number) => {
      if (done) return;
      done = true;
      child.stdout?.destroy();
      child.unref();
      resolve(code);
    };
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => {
      said += chunk;
      if (said.startsWith(READY)) finish(0);
    });
    child.on("error", (err) => {
      process.stderr.write(`wontun: cannot start the daemon: ${err.message}\n`);
      finish(1);
    });
    // "close", not "exit": by then everything the daemon wrote has been read.
    child.on("close", (code) => {
      if (said.trim()) process.stderr.write(`${said.trim()}\n`);
      else process.stderr.write(`wontun: the daemon exited (status ${code}) before it was ready\n`);
      finish(1);
    });
  });
}

/** In the detached daemon: tell the waiting caller that the tunnel is up. */
export function reportReady(): void {
  if (process.env[READY_ENV] !== "1") return;
  process.stdout.write(READY);
}

/** In the detached daemon: tell the waiting caller why start-up failed (it prints this). */
export function reportFailure(message: string): void {
  if (process.env[READY_ENV] !== "1") return;
  process.stdout.write(`${message}\n`);
}
