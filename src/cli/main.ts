#!/usr/bin/env bun
// wontun's command line. Subcommands: up, show, down, reload, conf, genkey, pubkey, genpsk. The
// original program's invocation `wontun --conf FILE [--log-level L]` still works and means
// `wontun up FILE`; wireguard-go's `wontun [-f] IFACE` starts a tunnel for wg-quick.
import { defineCommand, runCommand, type CommandDef } from "citty";
import { upCommand } from "./commands/up.ts";
import { confCommand } from "./commands/conf.ts";
import { genkeyCommand, genpskCommand, pubkeyCommand } from "./commands/keys.ts";
import { showCommand } from "./commands/show.ts";
import { downCommand } from "./commands/down.ts";
import { reloadCommand } from "./commands/reload.ts";
import { isUserspaceInvocation, runUserspace } from "./commands/userspace.ts";
import { ConfigError } from "../config/model.ts";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from "./errors.ts";
import { VERSION } from "./version.ts";
import { hasFlag } from "./args.ts";
import { printUsage, writeOut } from "./output.ts";
import { escapeControls } from "../text.ts";

// No prototype: `wontun constructor` is an unknown command, not Object's constructor.
const subCommands: Record<string, CommandDef<any>> = Object.assign(Object.create(null), {
  up: upCommand,
  show: showCommand,
  down: downCommand,
  reload: reloadCommand,
  conf: confCommand,
  genkey: genkeyCommand,
  pubkey: pubkeyCommand,
  genpsk: genpskCommand,
});

const main = defineCommand({
  meta: { name: "wontun", version: VERSION, description: "A small VPN: TUN interface, UDP tunnel, one executable" },
  subCommands,
});

/** `--conf FILE` / `--conf=FILE` before any subcommand: the original wontun's invocation. */
export function rewriteLegacyInvocation(argv: string[]): string[] {
  const first = argv[0] ?? "";
  if (first in subCommands || !argv.some((a) => a === "--conf" || a.startsWith("--conf="))) return argv;
  const out = ["up"];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--conf") {
      if (i + 1 >= argv.length || argv[i + 1] === "" || argv[i + 1].startsWith("-")) throw new UsageError("--conf needs a config file");
      out.push(argv[++i]);
    } else if (argv[i].startsWith("--conf=")) {
      if (argv[i] === "--conf=") throw new UsageError("--conf needs a config file");
      out.push(argv[i].slice("--conf=".length));
    } else {
      out.push(argv[i]);
    }
  }
  return out;
}

async function usageOf(argv: string[]): Promise<CommandDef<any>> {
  const name = argv.find((a) => !a.startsWith("-"));
  return name && name in subCommands ? subCommands[name] : main;
}

export async function cli(rawArgv: string[]): Promise<number> {
  try {
    const argv = rewriteLegacyInvocation(rawArgv);
    const cmd = await usageOf(argv);
    const cmdArgs = (cmd.args ?? {}) as Parameters<typeof hasFlag>[2];
    if (hasFlag(argv, ["--help", "-h"], cmdArgs)) {
      await printUsage(cmd, cmd === main ? undefined : main);
      return EXIT_OK;
    }
    if (hasFlag(argv, ["--version", "-v"], cmdArgs)) {
      writeOut(`${VERSION}\n`);
      return EXIT_OK;
    }
    if (argv.length === 0) {
      await printUsage(main);
      return EXIT_USAGE;
    }
    if (!(argv[0] in subCommands) && isUserspaceInvocation(argv)) return await runUserspace(argv);
    await runCommand(main, { rawArgs: argv });
    return EXIT_OK;
  } catch (err) {
    const e = err as Error & { code?: string };
    if (err instanceof ConfigError) {
      console.error(`wontun: config error: ${e.message}`);
      return EXIT_USAGE;
    }
    if (err instanceof UsageError || e.name === "CLIError") {
      // citty's messages colour what they echo (an unknown command as typed): plain text, controls escaped.
      console.error(`wontun: ${escapeControls(e.message.replace(/\x1b\[[0-9;]*m/g, ""))} (see wontun --help)`);
      return EXIT_USAGE;
    }
    console.error(`wontun: ${e.message}`);
    if (process.env.WONTUN_DEBUG) console.error(e.stack);
    return EXIT_FAILURE;
  }
}

if (import.meta.main) {
  const code = await cli(process.argv.slice(2));
  process.exit(code);
}
