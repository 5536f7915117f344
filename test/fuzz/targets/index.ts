// Every fuzz target, in the order a run takes them.
import type { Target } from "../engine.ts";
import { cliTarget } from "./cli.ts";
import { configTarget } from "./config.ts";
import { offloadTarget } from "./offload.ts";
import { wireguardTarget, wontunTarget } from "./protocol.ts";
import { operationsTarget, uapiSetTarget, uapiStatusTarget } from "./uapi.ts";

export const TARGETS: Target<any>[] = [
  configTarget, cliTarget, wontunTarget, wireguardTarget, uapiSetTarget, uapiStatusTarget, operationsTarget, offloadTarget,
];
