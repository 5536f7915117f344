// What commands print on stdout goes through here. The CLI exits right after a command returns,
// and process.stdout.write into a pipe only queues what the pipe (64 KiB) cannot take yet, so
// output was cut short; writing synchronously until every byte is taken fixes that. A write that
// fails (a full disk, /dev/full, a closed pipe) is a runtime failure, not a silent success.
import { writeSync } from "node:fs";
import { isatty } from "node:tty";
import { renderUsage, type CommandDef } from "citty";

const WRITE_ERRORS = new Map([
  ["ENOSPC", "no space left on device"],
  ["EPIPE", "the reader has gone away (broken pipe)"],
  ["EIO", "input/output error"],
  ["EBADF", "stdout is not open"],
  ["EDQUOT", "disk quota exceeded"],
  ["EFBIG", "file too large"],
]);

/** Writes all of `text` to stdout (or `fd`) before returning; throws a one-line Error if it cannot. */
export function writeOut(text: string, fd = 1): void {
  const bytes = Buffer.from(text, "utf8");
  let offset = 0;
  while (offset < bytes.length) {
    try {
      offset += writeSync(fd, bytes, offset, bytes.length - offset);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // A non-blocking pipe that is full: the reader has not caught up yet, wait for it.
      if (code === "EAGAIN" || code === "EWOULDBLOCK") {
        Bun.sleepSync(1);
        continue;
      }
      const words = code ? WRITE_ERRORS.get(code) : undefined;
      throw new Error(`cannot write the output: ${code ? `${code}: ${words ?? (err as Error).message}` : String(err)}`);
    }
  }
}

/** Colours only for a terminal, and never when NO_COLOR is set (https://no-color.org). */
export function colorWanted(fd = 1): boolean {
  if (process.env.NO_COLOR) return false;
  return isatty(fd);
}

/** A command's --help text, written as writeOut does, without ANSI colours unless they are wanted. */
export async function printUsage(cmd: CommandDef<any>, parent?: CommandDef<any>): Promise<void> {
  const text = await renderUsage(cmd, parent);
  writeOut(`${colorWanted() ? text : text.replace(/\x1b\[[0-9;]*m/g, "")}\n\n`);
}
