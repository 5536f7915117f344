// Copying a byte range from one Uint8Array to another without allocating. `dst.set(src.subarray())`
// creates a view object per call; a JS byte loop is ~15x slower than memcpy for MTU-sized packets.
// Buffer's native copy takes plain ranges (and handles overlap), so borrow it for any Uint8Array.

const bufferCopy = Buffer.prototype.copy;

/** Below this many bytes a plain loop beats the native call. */
const NATIVE_MIN = 32;

/**
 * Copies src[srcOffset..srcOffset+length) to dst[dstOffset..); both ranges must be in bounds.
 * Overlapping ranges are fine within one array (src === dst), not across two views of one buffer.
 */
export function copyBytes(
  src: Uint8Array,
  srcOffset: number,
  dst: Uint8Array,
  dstOffset: number,
  length: number,
): void {
  if (length < NATIVE_MIN && src !== dst) {
    for (let i = 0; i < length; i++) dst[dstOffset + i] = src[srcOffset + i];
    return;
  }
  bufferCopy.call(src, dst, dstOffset, srcOffset, srcOffset + length);
}
