// Text for messages people read: input echoed back is quoted, escaped and cut short, so that a
// config or an argument can neither write control sequences to the terminal nor turn one error
// into megabytes; long lists are summarized.

/** Characters that must not reach a terminal raw: C0/C1 controls, DEL, line/paragraph separators, bidi controls. */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const NAMED = new Map([["\n", "\\n"], ["\r", "\\r"], ["\t", "\\t"]]);

/** Escapes characters that would act on a terminal (\n, \x1b, \u202e …); backslashes stay as they are. */
export function escapeControls(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const named = NAMED.get(c);
    if (named !== undefined) return named;
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/** Most characters of input quoted in a message. */
export const MAX_QUOTED = 60;

/** Shortens `text` to `max` characters (never splitting a surrogate pair), marking the cut with "…". */
export function truncate(text: string, max = MAX_QUOTED): string {
  if (text.length <= max) return text;
  let end = max;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${text.slice(0, end)}…`;
}

/** Input as a message shows it: cut to MAX_QUOTED characters, controls escaped, in double quotes. */
export function quote(text: string): string {
  return `"${escapeControls(truncate(text))}"`;
}

/** "a, b, c" for up to `max` items, else the first `max` and "and N more". */
export function summarizeList(items: readonly string[], max: number): string {
  if (items.length <= max) return items.join(", ");
  return `${items.slice(0, max).join(", ")} and ${items.length - max} more`;
}
