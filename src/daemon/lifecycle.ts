// A daemon's life after start-up: SIGTERM/SIGINT stop it (a second one exits at once), SIGHUP
// reloads its config. Returns when the loop has ended; closing is the caller's (the host setup
// has steps before and after the interface goes).
import type { Logger } from "../log.ts";
import type { TunnelDaemon } from "./daemon.ts";

export interface LifecycleHooks {
  /** Around a reload (systemd's RELOADING=1 / READY=1). */
  beforeReload?: () => void;
  afterReload?: () => void;
  /** When a signal asks the daemon to stop (systemd's STOPPING=1). */
  onStop?: () => void;
}

export async function runUntilStopped(daemon: TunnelDaemon, log: Logger, hooks: LifecycleHooks = {}): Promise<void> {
  let stops = 0;
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
  try {
    await daemon.run();
  } finally {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
    process.off("SIGHUP", reload);
  }
}
