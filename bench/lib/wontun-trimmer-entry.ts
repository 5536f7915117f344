// dist/wontun with the file-page trimmer (src/memory/file-pages.ts) started first, for A/B runs
// of bench/scale.ts (--binary) until the daemon starts the trimmer itself:
//   bun build --compile --minify bench/lib/wontun-trimmer-entry.ts --outfile /tmp/wontun-trim
// WONTUN_TRIM_FILE_PAGES=off turns it off, as it will in the daemon.
import { cli } from "../../src/cli/main.ts";
import { startFilePageTrimmer } from "../../src/memory/file-pages.ts";

const args = process.argv.slice(2);
// Only the long-running commands: `up`, `--conf` and wireguard-go's `-f IFACE` / `IFACE`.
if (args[0] === "up" || args[0] === "--conf" || args[0] === "-f" || args[0] === "--foreground") startFilePageTrimmer();
process.exit(await cli(args));
