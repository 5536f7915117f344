// Argument checks shared by the AEAD backends: a bad counter or range is a caller bug, never a
// packet's fault, so it throws.

/** Throws RangeError unless `counter` is an integer in 0..2^53-1 and [off, off+room) fits `buf`. */
export function checkAeadArgs(counter: number, buf: Uint8Array, off: number, len: number, room: number): void {
  if (!(counter >= 0 && counter <= Number.MAX_SAFE_INTEGER && Math.floor(counter) === counter)) {
    throw new RangeError(`AEAD counter ${counter} is not an integer in 0..2^53-1`);
  }
  if (!((off | 0) === off && (len | 0) === len && off >= 0 && len >= 0 && off + room <= buf.length)) {
    throw new RangeError(`AEAD range off=${off} len=${len} does not fit a ${buf.length}-byte buffer`);
  }
}
