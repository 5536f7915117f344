// The check a native AEAD backend must pass before it is used: the same bytes as noble (the
// reference, itself checked against RFC 8439 in the tests), a round trip, and a tampered tag refused.
import type { AeadBackend } from "./aead.ts";
import { nobleBackend } from "./aead-noble.ts";

const TAG = 16;

/** Undefined if `backend` agrees with noble, else what went wrong. */
export function crossCheckAgainstNoble(backend: AeadBackend): string | undefined {
  const keyBytes = Uint8Array.from({ length: 32 }, (_, i) => (i * 29 + 3) & 0xff);
  const counter = 0x1_0203_0405; // above 2^32, so both counter words are exercised
  for (const len of [0, 1, 63, 64, 65, 300]) {
    const a = new Uint8Array(new ArrayBuffer(len + TAG + 8));
    for (let i = 0; i < len; i++) a[i + 5] = (i * 7 + len) & 0xff;
    const b = a.slice();
    const ka = backend.createKey(keyBytes);
    const kb = nobleBackend.createKey(keyBytes);
    try {
      backend.seal(ka, counter, a, 5, len);
      nobleBackend.seal(kb, counter, b, 5, len);
      for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return `sealed bytes differ from noble (len ${len})`;
      if (!backend.open(ka, counter, a, 5, len + TAG)) return `cannot open own output (len ${len})`;
      for (let i = 0; i < len; i++) if (a[i + 5] !== ((i * 7 + len) & 0xff)) return `wrong plaintext (len ${len})`;
      backend.seal(ka, counter, a, 5, len);
      a[5 + len] ^= 1;
      if (backend.open(ka, counter, a, 5, len + TAG)) return `accepted a tampered tag (len ${len})`;
    } finally {
      backend.destroyKey(ka);
      nobleBackend.destroyKey(kb);
    }
  }
  return undefined;
}

