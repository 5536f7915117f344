// wg and wg-quick warn when a file holding a private key can be read by others.
import { realpathSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";

/**
 * wg-quick's warning text when both the config file and its directory grant "other" the same
 * permission bits (so others can reach and read it), else null.
 */
export function worldAccessibleWarning(path: string): string | null {
  try {
    const file = realpathSync(resolve(path));
    const fileMode = statSync(file).mode;
    const dirMode = statSync(dirname(file)).mode;
    return (fileMode & dirMode & 0o007) !== 0 ? `Warning: \`${file}' is world accessible` : null;
  } catch {
    return null;
  }
}
