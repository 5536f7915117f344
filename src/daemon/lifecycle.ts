// A daemon's signals: SIGTERM/SIGINT stop it (a second one exits at once), SIGHUP reloads its
// config. They are taken from the moment the daemon exists, before it starts: a stop asked for
// during start-up lets start-up finish and then ends the loop at once, so the host setup is
// still undone (the default action would kill the process and leave it all behind). Closing is
// the caller's: the host setup has steps before and after the interface goes.
import type { Logger } from "../log.ts";
import type { TunnelDaemon } from "./daemon.ts";

export interface LifecycleHooks {
  /** Around a reload (systemd's RELOADING=1 / READY=1). */
  beforeReload?: () => void;
  afterReload?: () => void;
  /** When a signal asks the daemon to stop (systemd's STOPPING=1). */
  onStop?: () => void;
}

export interface SignalHandling {
  /** Start-up is over: SIGHUP reloads from now on (before, it is logged and ignored). */
  running(): void;
  /** Gives the signals back to their default actions. */
  release(): void;
}

export function handleSignals(daemon: TunnelDaemon, log: Logger, hooks: LifecycleHooks = {}): SignalHandling {
  let stops = 0;
  let running = false;
  const stop = (signal: string) => {
    if (++stops > 1) {
      log.warn(`${signal} again: exiting now`);
      process.exit(1);
    }
    log.info(`${signal}: shutting down`);
    hooks.onStop?.();
    daemon.stop();
  };
  let reloading: Promise<void> | null = null;
  const reload = () => {
    if (!running) {
      log.warn("SIGHUP during start-up: ignored (send it again once the tunnel runs)");
      return;
    }
    if (reloading) {
      log.info("SIGHUP: a reload is already running");
      return;
    }
    log.info("SIGHUP: reloading the config");
    hooks.beforeReload?.();
    reloading = daemon
      .reload()
      .then((result) => (result.ok ? log.info(result.message) : log.error(result.message)))
      .catch((err) => log.error(`reload failed: ${(err as Error).message}`))
      .finally(() => {
        reloading = null;
        hooks.afterReload?.();
      });
  };
  const onInt = () => stop("SIGINT");
  const onTerm = () => stop("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  process.on("SIGHUP", reload);
  return {
    running: () => {
      running = true;
    },
    release: () => {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      process.off("SIGHUP", reload);
    },
  };
}
