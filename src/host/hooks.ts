// wg-quick's PreUp/PostUp/PreDown/PostDown: shell snippets run with `/bin/sh -c`, "%i" replaced
// by the interface name, their output copied into the log line by line.
import type { Logger } from "../log.ts";

export type HookPhase = "PreUp" | "PostUp" | "PreDown" | "PostDown";

export class HookError extends Error {
  constructor(readonly phase: HookPhase, readonly command: string, readonly code: number) {
    super(`${phase} \`${command}\` failed with exit status ${code}`);
    this.name = "HookError";
  }
}

/** Runs `commands` one after the other; the first that fails throws a HookError. */
export async function runHooks(phase: HookPhase, commands: string[], ifname: string, log: Logger): Promise<void> {
  for (const template of commands) {
    const command = template.replaceAll("%i", ifname);
    log.info(`[#] ${phase}: ${command}`);
    const proc = Bun.spawn(["/bin/sh", "-c", command], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    const copy = async (stream: ReadableStream<Uint8Array>) => {
      const text = await new Response(stream).text();
      for (const line of text.split("\n")) if (line !== "") log.info(`[${phase}] ${line}`);
    };
    await Promise.all([copy(proc.stdout), copy(proc.stderr)]);
    const code = await proc.exited;
    if (code !== 0) throw new HookError(phase, command, code);
  }
}
