// `wontun show [IFACE|all] [--json]`: what `wg show` prints, for both modes, plus wontun's own
// lines (mode, session state, drops). Asks each daemon over its control socket (`get=wontun`).
import { defineCommand } from "citty";
import { controlRequest } from "../../control/client.ts";
import { parseStatusResponse } from "../../control/uapi-get.ts";
import { renderShow, showJson } from "../../control/status-render.ts";
import type { DeviceStatus } from "../../control/model.ts";
import { parseCommandLine } from "../args.ts";
import { colorWanted, writeOut } from "../output.ts";
import { controlSocketOf, interfaceArgument, runningInterfaces } from "../running-tunnel.ts";

export const showArgs = {
  tunnel: { type: "positional", description: "Interface name, config file, or all (default: all)", required: false },
  json: { type: "boolean", description: "Print JSON (schema in the README)", default: false },
} as const;

const TIMEOUT_MS = 3000;

async function statusOf(iface: string): Promise<DeviceStatus> {
  const answer = await controlRequest(controlSocketOf(iface), "get=wontun\n\n", TIMEOUT_MS);
  return parseStatusResponse(answer);
}

export const showCommand = defineCommand({
  meta: { name: "show", description: "Show running tunnels: keys, endpoints, handshakes, transfer, state" },
  args: showArgs,
  async run({ rawArgs }) {
    const args = parseCommandLine("show", rawArgs, showArgs);
    const which = args.tunnel ?? "all";
    const statuses: DeviceStatus[] = [];
    if (which === "all") {
      for (const iface of runningInterfaces()) {
        try {
          statuses.push(await statusOf(iface));
        } catch (err) {
          // A stale socket or another implementation's: say so, show the rest.
          console.error(`wontun: ${iface}: ${(err as Error).message}`);
        }
      }
    } else {
      statuses.push(await statusOf(interfaceArgument(which)));
    }
    if (args.json) writeOut(`${JSON.stringify(showJson(statuses, Date.now()), null, 2)}\n`);
    else writeOut(renderShow(statuses, { color: colorWanted() }));
  },
});
