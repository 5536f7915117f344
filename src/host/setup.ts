// What `wontun up` does to the host around the tunnel, in wg-quick's order:
//   prepare (before the device starts): undo a killed predecessor's leftovers, warn about a
//     world-readable private key, choose the full tunnel's fwmark, run PreUp, size a WireGuard
//     tunnel's MTU from the routes (mtu.ts);
//   apply (once the TUN exists): ICMP redirects off, addresses and MTU, link up, DNS, routes,
//     rules and firewall, PostUp;
//   teardown: PreDown, SaveConfig, DNS/firewall/rules/routes removed, the device closed, PostDown.
// Every change that outlives the TUN is journaled in a state file first (state-file.ts). A failure
// during prepare/apply undoes what was done (without the down hooks, as wg-quick's trap does).
import { parseCidr, formatCidr, type Cidr } from "../net/ip.ts";
import { configureInterface, describeRule, interfaceIndex, RtNetlink, type RouteEntry } from "../sys/netlink.ts";
import type { Config } from "../config/model.ts";
import type { Logger } from "../log.ts";
import { resolveTable } from "./rt-tables.ts";
import { planRouting, RT_TABLE_MAIN, type RoutingPlan } from "./routing-policy.ts";
import { disableRedirects, enableSrcValidMark } from "./sysctl.ts";
import { runHooks } from "./hooks.ts";
import { applyDns, plannedDns, removeDns } from "./dns.ts";
import { applyFirewall, removeFirewall } from "./firewall.ts";
import { StateFile, stateFilePath, type HostStep } from "./state-file.ts";
import { saveConfig } from "./save-config.ts";
import { worldAccessibleWarning } from "./config-permissions.ts";
import { deriveTunnelMtu, WIREGUARD_OVERHEAD } from "./mtu.ts";
import { packetRoomFor } from "../device/bind.ts";

export interface HostOptions {
  config: Config;
  interfaceName: string;
  /** The config file, for SaveConfig and the permission warning; null when there is none. */
  configPath: string | null;
  log: Logger;
  /** Where the state file goes (tests); default /run/wontun. */
  runDir?: string;
}

const tableName = (t: number) => (t === RT_TABLE_MAIN ? "main" : String(t));

export class HostSetup {
  plan: RoutingPlan;
  /** What SaveConfig writes: the config the tunnel runs now (the control API may replace it). */
  runningConfig: () => Config;
  private readonly journal: StateFile;
  private applied = false;
  private done = false;
  /** The largest MTU the data path (built after prepare) carries: a reload may not go above it. */
  private mtuCeiling = 0;

  private constructor(private readonly opts: HostOptions, plan: RoutingPlan) {
    this.plan = plan;
    this.runningConfig = () => opts.config;
    this.journal = new StateFile(stateFilePath(opts.interfaceName, opts.runDir), opts.interfaceName);
  }

  /**
   * Before the device starts. Sets config.interface.fwmark when a full tunnel needs one, so the
   * device's sockets carry it from the start, and a WireGuard tunnel's MTU from the routes when
   * the config sets none: after PreUp and before the tunnel's own routes exist, as wg-quick does.
   */
  static async prepare(opts: HostOptions): Promise<HostSetup> {
    const { config, interfaceName, log } = opts;
    if (config.mode === "wireguard" && opts.configPath) {
      const warning = worldAccessibleWarning(opts.configPath);
      if (warning) log.warn(warning);
    }
    await cleanLeftovers(interfaceName, log, opts.runDir);
    const table = resolveTable(config.interface.host?.table ?? null);
    const plan = planRouting(config, table, listAllRoutes);
    if (plan.fwmark !== null && config.interface.fwmark !== plan.fwmark) {
      log.info(`full tunnel: fwmark ${plan.fwmark} on the tunnel's sockets, routing table ${plan.fwmark}`);
      config.interface.fwmark = plan.fwmark;
    }
    const setup = new HostSetup(opts, plan);
    await runHooks("PreUp", config.interface.host?.preUp ?? [], interfaceName, log);
    try {
      const underlay = deriveTunnelMtu(config);
      if (underlay) log.info(`mtu ${config.interface.mtu}: ${underlay.mtu} from ${underlay.from}, less ${WIREGUARD_OVERHEAD}, in whole 64-byte blocks`);
    } catch (e) {
      log.warn(`could not read the routes' MTU (${(e as Error).message}); mtu ${config.interface.mtu}`);
    }
    setup.mtuCeiling = packetRoomFor(config.interface.mtu);
    return setup;
  }

  /** Once the TUN interface `ifname` exists: everything else; undone again if any step fails. */
  async apply(ifname: string): Promise<void> {
    const { config, log } = this.opts;
    const host = config.interface.host;
    try {
      disableRedirects(ifname, (m) => log.warn(m));
      // Addresses, MTU, link up; the routes follow below, so that a conflict is an error.
      configureInterface(ifname, { mtu: config.interface.mtu, addresses: config.interface.addresses, routes: [] });
      if (host && host.dns.length > 0) {
        const planned = plannedDns(ifname);
        if (planned) this.journal.record({ kind: "dns", dns: planned }); // before: a crash leaves a record to delete
        await applyDns(ifname, host.dns, host.dnsSearch, log);
      }
      this.addRoutesAndRules(ifname);
      for (const family of this.plan.fullTunnel) {
        if (family === 4) enableSrcValidMark();
        const nftFamily = family === 4 ? "ip" : "ip6";
        // Journaled first: a crash inside nft leaves a table name to delete, nothing worse.
        const step: HostStep = { kind: "firewall", firewall: { family: nftFamily, table: `wontun-${ifname}` } };
        this.journal.record(step);
        const applied = await applyFirewall(nftFamily, ifname, config.interface.addresses, this.plan.fwmark!, log);
        if (!applied) this.journal.forget(step);
      }
      this.applied = true;
      await runHooks("PostUp", host?.postUp ?? [], ifname, log);
    } catch (e) {
      this.applied = false;
      await this.undoSteps();
      throw e;
    }
  }

  /**
   * A reload changed the config: the MTU and addresses follow, and routes come and go with the
   * AllowedIPs. A change of routing policy (full tunnel, its table or fwmark) needs a restart:
   * it is reported and left as it runs.
   */
  configReloaded(next: Config): void {
    const { log, interfaceName } = this.opts;
    const old = this.opts.config;
    // Without MTU the interface keeps the MTU it has (wg-quick's syncconf leaves it too).
    if (next.interface.mtuSet === false) next.interface.mtu = old.interface.mtu;
    if (next.interface.mtu > this.mtuCeiling) {
      log.warn(`reload: MTU ${next.interface.mtu} needs a restart (the data path carries packets of up to ${this.mtuCeiling} bytes); MTU stays ${old.interface.mtu}`);
      next.interface.mtu = old.interface.mtu;
    }
    if (!this.applied) return;
    const plan = planRouting(next, resolveTable(next.interface.host?.table ?? null), listAllRoutes);
    const policyChanged = plan.fullTunnel.join() !== this.plan.fullTunnel.join() || plan.rules.length !== this.plan.rules.length ||
      (next.interface.host?.table ?? null) !== (old.interface.host?.table ?? null);
    const index = interfaceIndex(interfaceName);
    const nl = RtNetlink.open();
    try {
      if (next.interface.mtu !== old.interface.mtu) nl.setMtu(index, next.interface.mtu);
      const key = (c: Cidr) => `${formatCidr(c)}`;
      const oldAddresses = new Set(old.interface.addresses.map(key));
      const nextAddresses = new Set(next.interface.addresses.map(key));
      for (const a of next.interface.addresses) if (!oldAddresses.has(key(a))) nl.addAddress(index, a);
      for (const a of old.interface.addresses) if (!nextAddresses.has(key(a))) nl.deleteAddress(index, a);
      if (policyChanged || plan.fullTunnel.length > 0) {
        const same = plan.routes.map((r) => key(r.cidr)).sort().join() === this.plan.routes.map((r) => key(r.cidr)).sort().join();
        if (!same || policyChanged) log.warn("reload: the routing policy (full tunnel, Table) changed; routes stay as they are until a restart");
      } else {
        const routeKey = (r: { cidr: Cidr; table: number }) => `${key(r.cidr)}@${r.table}`;
        const before = new Set(this.plan.routes.map(routeKey));
        const after = new Set(plan.routes.map(routeKey));
        for (const r of this.plan.routes) {
          if (after.has(routeKey(r))) continue;
          if (r.table === RT_TABLE_MAIN) nl.deleteRoute(index, r.cidr);
          else nl.deleteTableRoute(index, r.cidr, r.table);
          this.journal.forget({ kind: "route", cidr: formatCidr(r.cidr), table: r.table });
        }
        for (const r of plan.routes) {
          if (before.has(routeKey(r))) continue;
          this.journal.record({ kind: "route", cidr: formatCidr(r.cidr), table: r.table });
          const added = r.table === RT_TABLE_MAIN ? nl.addRoute(index, r.cidr) : nl.addTableRoute(index, r.cidr, r.table);
          if (!added) log.warn(`reload: route ${formatCidr(r.cidr)} already exists (another interface has it); not added`);
        }
        this.plan = plan;
      }
    } finally {
      nl.close();
    }
    this.opts.config = next;
    log.info(`interface ${interfaceName}: ${this.describe()}`);
  }

  /** A one-line summary for the log: addresses, MTU, routes and rules. */
  describe(): string {
    const { config } = this.opts;
    const routes = this.plan.routes.map((r) => `${formatCidr(r.cidr)}${r.table === RT_TABLE_MAIN ? "" : ` table ${tableName(r.table)}`}`);
    return `${config.interface.addresses.map(formatCidr).join(", ")} mtu ${config.interface.mtu}` +
      (routes.length ? `, routes ${routes.join(", ")}` : "") +
      (this.plan.rules.length ? `, rules ${this.plan.rules.map(describeRule).join("; ")}` : "");
  }

  /**
   * PreDown, SaveConfig, host changes undone, `closeDevice()` (which removes the interface),
   * PostDown. Safe to call when prepare/apply failed or more than once.
   */
  async teardown(closeDevice: () => void): Promise<void> {
    if (this.done) { closeDevice(); return; }
    this.done = true;
    const { log, interfaceName } = this.opts;
    const host = this.runningConfig().interface.host;
    const wasUp = this.applied;
    const errors: unknown[] = [];
    const attempt = async (what: () => unknown) => { try { await what(); } catch (e) { errors.push(e); log.error(String((e as Error).message ?? e)); } };
    if (wasUp) {
      await attempt(() => runHooks("PreDown", host?.preDown ?? [], interfaceName, log));
      if (host?.saveConfig && this.opts.configPath) {
        await attempt(() => { saveConfig(this.runningConfig(), this.opts.configPath!); log.info(`saved the running config to ${this.opts.configPath}`); });
      }
    }
    await attempt(() => this.undoSteps());
    closeDevice();
    if (wasUp) await attempt(() => runHooks("PostDown", host?.postDown ?? [], interfaceName, log));
    this.applied = false;
    if (errors.length) throw errors[0];
  }

  private addRoutesAndRules(ifname: string): void {
    const index = interfaceIndex(ifname);
    const nl = RtNetlink.open();
    try {
      for (const { cidr, table } of this.plan.routes) {
        this.journal.record({ kind: "route", cidr: formatCidr(cidr), table });
        const added = table === RT_TABLE_MAIN ? nl.addRoute(index, cidr) : nl.addTableRoute(index, cidr, table);
        if (!added) {
          this.journal.state.steps.pop(); // not ours: never undo it
          this.journal.write();
          throw new Error(`route ${formatCidr(cidr)} already exists in table ${tableName(table)} (another interface or an earlier route has it); ` +
            "remove it, or set Table = off and route by yourself");
        }
      }
      for (const rule of this.plan.rules) {
        this.journal.record({ kind: "rule", rule });
        if (!nl.addRule(rule)) throw new Error(`rule ${describeRule(rule)} already exists`);
      }
    } finally {
      nl.close();
    }
  }

  /** Undoes the journaled steps, newest first, and removes the state file. */
  private async undoSteps(): Promise<void> {
    const state = this.journal.state;
    await undoJournal(state.steps.slice(), this.opts.interfaceName, this.opts.log, (s) => this.journal.forget(s));
    this.journal.remove();
  }
}

function listAllRoutes(): RouteEntry[] {
  const nl = RtNetlink.open();
  try {
    return [...nl.listRoutes(4), ...nl.listRoutes(6)];
  } finally {
    nl.close();
  }
}

/** Undoes `steps` newest first; a step whose object is already gone counts as undone. */
async function undoJournal(steps: HostStep[], ifname: string, log: Logger, forget: (s: HostStep) => void): Promise<void> {
  let firstError: unknown = null;
  for (const step of steps.reverse()) {
    try {
      switch (step.kind) {
        case "rule": {
          const nl = RtNetlink.open();
          try {
            if (nl.deleteRule(step.rule)) log.info(`[#] ip rule delete ${describeRule(step.rule)}`);
          } finally { nl.close(); }
          break;
        }
        case "route": {
          // Routes via the TUN vanish with it; only an existing interface can still have them.
          let index = 0;
          try { index = interfaceIndex(ifname); } catch { break; }
          const cidr = parseCidr(step.cidr) as Cidr;
          const nl = RtNetlink.open();
          try {
            if (step.table === RT_TABLE_MAIN) nl.deleteRoute(index, cidr);
            else nl.deleteTableRoute(index, cidr, step.table);
          } finally { nl.close(); }
          break;
        }
        case "firewall":
          await removeFirewall(step.firewall, log);
          break;
        case "dns":
          await removeDns(step.dns, log);
          break;
      }
      forget(step);
    } catch (e) {
      log.error(`undo ${step.kind}: ${(e as Error).message}`);
      firstError ??= e;
    }
  }
  if (firstError) throw firstError;
}

/**
 * A state file for this interface (in this network namespace) while no such interface exists
 * means its wontun was killed: undo what it journaled.
 */
async function cleanLeftovers(ifname: string, log: Logger, runDir?: string): Promise<void> {
  const path = stateFilePath(ifname, runDir);
  const state = StateFile.read(path);
  if (!state) return;
  try {
    interfaceIndex(ifname);
    return; // the interface exists: its owner runs, and starting the device will say so
  } catch { /* gone: leftovers */ }
  log.warn(`${ifname}: a previous wontun (pid ${state.pid}) did not clean up; undoing ${state.steps.length} step(s) it left (${path})`);
  const journal = new StateFile(path, ifname);
  journal.state.steps.push(...state.steps);
  await undoJournal(state.steps.slice(), ifname, log, (s) => journal.forget(s));
  journal.remove();
}
