// Loading a native crypto library through bun:ffi: the first of several sonames that opens.

/** The bindings of the first of `names` that `open` loads, or why none did. */
export function openFirst<T>(names: readonly string[], open: (name: string) => T, what: string): T | string {
  const errors: string[] = [];
  for (const name of names) {
    try {
      return open(name);
    } catch (e) {
      errors.push(`${name}: ${(e as Error).message}`);
    }
  }
  return `cannot load ${what} (${errors.join("; ")})`;
}

/** The native backends write the counter into the nonce as host-order 32-bit words. */
export function isLittleEndian(): boolean {
  return new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
}
