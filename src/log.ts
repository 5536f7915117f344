// Logging through consola. Levels follow the CLI's --log-level; per-packet trace lines are
// guarded by `log.traceOn` so that building their text costs nothing when trace is off.
import { createConsola, type ConsolaInstance } from "consola";

export const LOG_LEVELS = ["error", "warn", "info", "debug", "trace"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const CONSOLA_LEVEL: Record<LogLevel, number> = { error: 0, warn: 1, info: 3, debug: 4, trace: 5 };

export interface Logger {
  readonly traceOn: boolean;
  readonly debugOn: boolean;
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
  trace(message: string): void;
}

const LABELS: Record<string, string> = {
  fatal: "ERROR", error: "ERROR", warn: "WARN ", info: "INFO ", success: "INFO ", log: "INFO ",
  debug: "DEBUG", trace: "TRACE", verbose: "TRACE",
};

/** One line per event, "TIME LEVEL message": easy to read, grep and ship to a log collector. */
const lineReporter = {
  log(entry: { type: string; args: unknown[]; date: Date }) {
    const text = entry.args.map((a) => (a instanceof Error ? a.message : String(a))).join(" ");
    process.stderr.write(`${entry.date.toISOString()} ${LABELS[entry.type] ?? "INFO "} ${text}\n`);
  },
};

export function createLogger(level: LogLevel = "info"): Logger {
  // Logs go to stderr so that stdout stays clean for command output (conf, pubkey, ...).
  const consola: ConsolaInstance = createConsola({ level: CONSOLA_LEVEL[level], reporters: [lineReporter] });
  return {
    traceOn: CONSOLA_LEVEL[level] >= 5,
    debugOn: CONSOLA_LEVEL[level] >= 4,
    error: (m) => consola.error(m),
    warn: (m) => consola.warn(m),
    info: (m) => consola.info(m),
    debug: (m) => consola.debug(m),
    trace: (m) => consola.trace(m),
  };
}

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}
