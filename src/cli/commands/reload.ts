// `wontun reload IFACE|CONFIG`: the daemon re-reads its config file (SIGHUP, as systemd's
// ExecReload sends); the daemon logs what changed, or why it refused the file.
import { defineCommand } from "citty";
import { parseCommandLine } from "../args.ts";
import { writeOut } from "../output.ts";
import { daemonPid, interfaceArgument } from "../running-tunnel.ts";

export const reloadArgs = {
  tunnel: { type: "positional", description: "Interface name, or the config file it was started from", required: true },
} as const;

export const reloadCommand = defineCommand({
  meta: { name: "reload", description: "Make a running tunnel re-read its config file (same as SIGHUP)" },
  args: reloadArgs,
  run({ rawArgs }) {
    const args = parseCommandLine("reload", rawArgs, reloadArgs);
    const iface = interfaceArgument(args.tunnel);
    const pid = daemonPid(iface);
    process.kill(pid, "SIGHUP");
    writeOut(`${iface}: reload requested (pid ${pid}); the daemon's log says what changed\n`);
  },
});
