// Command-line options shared by the bench scripts: --name value, --name=value, --flag.

export function parseArgs(argv: string[], flags: Set<string>): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) throw new Error(`unexpected argument "${a}"`);
    const eq = a.indexOf("=");
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (eq > 0) out.set(name, a.slice(eq + 1));
    else if (flags.has(name)) out.set(name, "true");
    else {
      if (i + 1 >= argv.length) throw new Error(`--${name} needs a value`);
      out.set(name, argv[++i]);
    }
  }
  return out;
}

export function numberOption(opts: Map<string, string>, name: string, fallback: number, min = 0): number {
  const raw = opts.get(name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}, not "${raw}"`);
  return n;
}

/**
 * The command line of a harness: `flags` are the options without a value. Prints HELP and exits
 * 0 on --help, prints the error and HELP and exits 2 on a bad option.
 */
export function commandLine(help: string, flags: string[]): Map<string, string> {
  let opts: Map<string, string>;
  try {
    opts = parseArgs(process.argv.slice(2), new Set(["help", ...flags]));
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${help}`);
    process.exit(2);
  }
  if (opts.has("help")) {
    console.log(help);
    process.exit(0);
  }
  return opts;
}
