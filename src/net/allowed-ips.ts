// AllowedIPs: a longest-prefix-match table from IP prefixes to values (peers), used to pick
// the peer for an outgoing packet by its destination and to check the source of an incoming one.
//
// Design: one path-compressed binary trie per family (PATRICIA-style: every node holds a whole
// prefix, and nodes exist only where a prefix is stored or where two subtrees branch), stored
// as fixed-size records in one Int32Array rather than as JS objects:
//   IPv4, 4 ints (16 B): key, meta, child0, child1
//   IPv6, 8 ints (32 B): key0..key3, meta, child0, child1, unused
// meta is the prefix length plus the number of the value's slot in a plain JS array (0: none);
// a child link is the element offset of the child's record, taken by the bit just after the
// node's prefix. Offset 0 (record 0, unused) is the nil link, so zero-filled memory is empty.
// Freed records are chained through child0; the array grows by half when full.
// Why: path compression keeps fewer than 2n records for n prefixes (~45 B per IPv4 prefix all
// told), and a walk takes one step per branching on its path, each a masked compare of a word.
// Keeping a record's fields side by side costs one cache miss per step, not one per field.
// Once a table holds a few hundred prefixes, a 2^16-entry jump table indexed by the address's
// top 16 bits (512 KiB) says where each walk leaves the prefixes shorter than /16, which skips
// the ~13 top steps of a 100k-prefix table; changes rewrite only the entries they affect.
// Lookups read addresses straight out of the packet buffer and allocate nothing. Multibit
// (stride) tries throughout would take fewer steps but cost far more memory on sparse tables.

import type { Cidr } from "./ip.ts";

/** MASK[b]: the top b bits of a 32-bit word set (as an int32), for b = 0..32. */
const MASK = new Int32Array(33);
for (let b = 1; b <= 32; b++) MASK[b] = -1 << (32 - b);

/** The part of a full-length mask `prefix` that falls into word `word`. */
function wordMask(word: number, prefix: number): number {
  const inWord = prefix - word * 32;
  return inWord <= 0 ? 0 : inWord >= 32 ? -1 : MASK[inWord];
}

/**
 * A record's meta word: prefix length in the low 8 bits, and above them the number of the slot
 * in `values` holding the prefix's value (0: no value stored here). So meta >= HAS: has a value.
 */
const HAS = 0x100;
const PREFIX_BITS = 0xff;
const SLOT_SHIFT = 8;
const MAX_SLOTS = 1 << 23;
const INITIAL_RECORDS = 16;

/** The jump table is indexed by the top JUMP_BITS of an address; built from this many prefixes. */
const JUMP_BITS = 16;
const JUMP_THRESHOLD = 256;

/** One family's trie. Keys are passed in as `words` 32-bit words of the scratch Int32Array. */
class Trie<T> {
  readonly words: number;
  readonly maxBits: number;
  /** log2 of the record size in ints. */
  private readonly shift: number;
  /** Offsets within a record: meta, then the two child links. */
  private readonly meta: number;
  private readonly kid: number;
  nodes: Int32Array;
  /** Values by slot number (slot 0 unused); freed slots are listed in freeSlots. */
  values: (T | undefined)[] = [undefined];
  private freeSlots: number[] = [];
  root = 0;
  /** Next never-used record number (those below it are in use or on the free list). */
  private next = 1;
  private freeHead = 0;
  count = 0;
  /** Scratch key (for lookups and inserts), reused so that nothing is allocated per call. */
  readonly scratch: Int32Array;
  /** Scratch path for remove(): record offsets from the root down. */
  private readonly path: Int32Array;
  /**
   * Once the table is large: for each /16 block i (of word 0), jump[2i] is the record where the
   * walk for any address in the block leaves the prefixes shorter than /16 (the first record of
   * length >= 16 on its path, or nil) and jump[2i+1] the best valued record passed on the way.
   * A lookup starts there instead of at the root, skipping the ~13 top steps. Each change
   * rewrites only the entries under the prefix it touched. (2^16 * 8 B = 512 KiB.)
   */
  private jump: Int32Array | null = null;

  constructor(words: 1 | 4) {
    this.words = words;
    this.maxBits = words * 32;
    this.shift = words === 1 ? 2 : 3;
    this.meta = words;
    this.kid = words + 1;
    this.scratch = new Int32Array(words);
    this.path = new Int32Array(this.maxBits + 2);
    this.nodes = new Int32Array(INITIAL_RECORDS << this.shift);
  }

  reset(): void {
    this.nodes = new Int32Array(INITIAL_RECORDS << this.shift);
    this.values = [undefined];
    this.freeSlots = [];
    this.root = 0;
    this.next = 1;
    this.freeHead = 0;
    this.count = 0;
    this.jump = null;
  }

  /** Longest match for the IPv4 address `a` (as an int32). Record: key, meta, kid0, kid1. */
  lookup4(a: number): T | undefined {
    const nodes = this.nodes;
    const jump = this.jump;
    let p: number;
    let best: number;
    if (jump !== null) {
      const j = (a >>> (32 - JUMP_BITS)) << 1;
      p = jump[j];
      best = jump[j + 1];
    } else {
      p = this.root;
      best = 0;
    }
    while (p !== 0) {
      const meta = nodes[p + 1];
      const b = meta & PREFIX_BITS;
      if (((a ^ nodes[p]) & MASK[b]) !== 0) break;
      if (meta >= HAS) best = p;
      // A /32 record has no children, so for b = 32 (a shift by -1, i.e. 31) this reads nil.
      p = nodes[p + 2 + ((a >>> (31 - b)) & 1)];
    }
    return best === 0 ? undefined : this.values[nodes[best + 1] >>> SLOT_SHIFT];
  }

  /** Longest match for the IPv4 address at `buf[offset..offset+4]`. */
  lookupAt4(buf: Uint8Array, offset: number): T | undefined {
    if (offset < 0 || offset + 4 > buf.length) return undefined;
    return this.lookup4((buf[offset] << 24) | (buf[offset + 1] << 16) | (buf[offset + 2] << 8) | buf[offset + 3]);
  }

  /** Longest match for the IPv6 address at `buf[offset..offset+16]`. */
  lookupAt6(buf: Uint8Array, offset: number): T | undefined {
    if (offset < 0 || offset + 16 > buf.length) return undefined;
    const a = this.scratch;
    for (let w = 0, o = offset; w < 4; w++, o += 4) {
      a[w] = (buf[o] << 24) | (buf[o + 1] << 16) | (buf[o + 2] << 8) | buf[o + 3];
    }
    return this.lookup6();
  }

  /** Longest match for the IPv6 address in `scratch`. Record: key0..3, meta, kid0, kid1, -. */
  lookup6(): T | undefined {
    const a = this.scratch;
    const nodes = this.nodes;
    const jump = this.jump;
    let p: number;
    let best: number;
    if (jump !== null) {
      const j = (a[0] >>> (32 - JUMP_BITS)) << 1;
      p = jump[j];
      best = jump[j + 1];
    } else {
      p = this.root;
      best = 0;
    }
    let from = 0; // words before this one are known to match
    while (p !== 0) {
      const meta = nodes[p + 4];
      const b = meta & PREFIX_BITS;
      const full = b >>> 5;
      let i = from;
      while (i < full && a[i] === nodes[p + i]) i++;
      if (i < full) break;
      const rest = b & 31;
      if (rest !== 0 && ((a[full] ^ nodes[p + full]) & MASK[rest]) !== 0) break;
      if (meta >= HAS) best = p;
      if (b === 128) break;
      from = full;
      p = nodes[p + 5 + ((a[full] >>> (31 - rest)) & 1)];
    }
    return best === 0 ? undefined : this.values[nodes[best + 4] >>> SLOT_SHIFT];
  }

  private prefixOf(p: number): number {
    return this.nodes[p + this.meta] & PREFIX_BITS;
  }

  private hasValue(p: number): boolean {
    return this.nodes[p + this.meta] >= HAS;
  }

  private slotOf(p: number): number {
    return this.nodes[p + this.meta] >>> SLOT_SHIFT;
  }

  private child(p: number, dir: number): number {
    return this.nodes[p + this.kid + dir];
  }

  private setChild(p: number, dir: number, c: number): void {
    this.nodes[p + this.kid + dir] = c;
  }

  /** Bit `i` (0 = most significant) of the scratch key. */
  private keyBit(i: number): number {
    return (this.scratch[i >>> 5] >>> (31 - (i & 31))) & 1;
  }

  /** Bit `i` of record `p`'s key. */
  private nodeBit(p: number, i: number): number {
    return (this.nodes[p + (i >>> 5)] >>> (31 - (i & 31))) & 1;
  }

  /** Length of the common prefix of the scratch key and record `p`'s key, at most `limit`. */
  private common(p: number, limit: number): number {
    const nodes = this.nodes;
    const key = this.scratch;
    for (let w = 0; w * 32 < limit; w++) {
      const x = key[w] ^ nodes[p + w];
      if (x !== 0) return Math.min(w * 32 + Math.clz32(x), limit);
    }
    return limit;
  }

  /** A new record for the scratch key cut to `prefix` bits, without value or children. */
  private alloc(prefix: number): number {
    let p = this.freeHead;
    if (p !== 0) {
      this.freeHead = this.child(p, 0);
      this.setChild(p, 0, 0);
    } else {
      if (this.next << this.shift === this.nodes.length) {
        // Grow by half: less slack on average than doubling, still amortized O(1).
        const records = this.nodes.length >> this.shift;
        const grown = new Int32Array((records + (records >> 1)) << this.shift);
        grown.set(this.nodes);
        this.nodes = grown;
      }
      p = this.next++ << this.shift;
    }
    for (let w = 0; w < this.words; w++) this.nodes[p + w] = this.scratch[w] & wordMask(w, prefix);
    this.nodes[p + this.meta] = prefix;
    return p;
  }

  private release(p: number): void {
    this.nodes[p + this.meta] = 0; // only valueless records are released
    this.setChild(p, 1, 0);
    this.setChild(p, 0, this.freeHead);
    this.freeHead = p;
  }

  /** Points `parent`'s link `dir` (or the root, for parent 0) at `p`. */
  private link(parent: number, dir: number, p: number): void {
    if (parent === 0) this.root = p;
    else this.setChild(parent, dir, p);
  }

  private store(p: number, value: T): T | undefined {
    let slot = this.slotOf(p);
    if (slot !== 0) {
      const old = this.values[slot];
      this.values[slot] = value;
      return old;
    }
    slot = this.freeSlots.pop() ?? this.values.length;
    this.values[slot] = value;
    this.nodes[p + this.meta] |= slot << SLOT_SHIFT;
    this.count++;
    return undefined;
  }

  private drop(p: number): void {
    const slot = this.slotOf(p);
    this.values[slot] = undefined;
    this.freeSlots.push(slot);
    this.nodes[p + this.meta] &= PREFIX_BITS;
    this.count--;
  }

  /** Inserts the scratch key (host bits already cleared) with length `prefix`. */
  insert(prefix: number, value: T): T | undefined {
    // Checked up front so that a failed insert leaves the trie as it was.
    if (this.count >= MAX_SLOTS - 1) throw new RangeError(`AllowedIps holds at most ${MAX_SLOTS - 1} prefixes per family`);
    const before = this.count;
    const old = this.insertRecord(prefix, value);
    if (this.count !== before) {
      // A new prefix changes only the walks of the blocks under the topmost record that the
      // insert created or gave a value to. (A replaced value changes nothing: jump entries
      // hold records, not values.)
      this.afterChange(this.changedKey, this.changedPrefix);
    }
    return old;
  }

  /** Key word 0 and prefix length of the topmost record the last insert created or changed. */
  private changedKey = 0;
  private changedPrefix = 0;

  private noteChange(p: number): void {
    this.changedKey = this.nodes[p];
    this.changedPrefix = this.prefixOf(p);
  }

  private insertRecord(prefix: number, value: T): T | undefined {
    let parent = 0;
    let dir = 0;
    let p = this.root;
    while (p !== 0) {
      const nb = this.prefixOf(p);
      const common = this.common(p, Math.min(nb, prefix));
      if (common === nb) {
        if (nb === prefix) {
          this.noteChange(p);
          return this.store(p, value);
        }
        parent = p;
        dir = this.keyBit(nb);
        p = this.child(p, dir);
        continue;
      }
      // The key leaves this record's prefix after `common` bits.
      if (common === prefix) {
        // The new prefix covers p: it goes in between parent and p.
        const m = this.alloc(prefix);
        this.setChild(m, this.nodeBit(p, prefix), p);
        this.link(parent, dir, m);
        this.noteChange(m);
        return this.store(m, value);
      }
      // They branch: a valueless record for the common part, with p and a new leaf below it.
      const split = this.alloc(common);
      const leaf = this.alloc(prefix);
      const side = this.keyBit(common);
      this.setChild(split, side, leaf);
      this.setChild(split, side ^ 1, p);
      this.link(parent, dir, split);
      this.noteChange(split);
      return this.store(leaf, value);
    }
    const leaf = this.alloc(prefix);
    this.link(parent, dir, leaf);
    this.noteChange(leaf);
    return this.store(leaf, value);
  }

  /** Removes the exact prefix (scratch key, host bits cleared); returns its value. */
  remove(prefix: number): T | undefined {
    const path = this.path;
    let depth = 0;
    let p = this.root;
    while (p !== 0) {
      const nb = this.prefixOf(p);
      if (nb > prefix || this.common(p, nb) !== nb) return undefined;
      path[depth++] = p;
      if (nb === prefix) break;
      p = this.child(p, this.keyBit(nb));
    }
    if (p === 0 || !this.hasValue(p)) return undefined;
    const old = this.values[this.slotOf(p)];
    this.drop(p);
    // What changed lies under the topmost record spliced out (or p, if none was).
    let topKey = this.nodes[p];
    let topPrefix = prefix;
    // Splice out valueless records with fewer than two children, from p upwards.
    for (let d = depth - 1; d >= 0; d--) {
      const m = path[d];
      if (this.hasValue(m)) break;
      const k0 = this.child(m, 0);
      const k1 = this.child(m, 1);
      if (k0 !== 0 && k1 !== 0) break;
      const parent = d > 0 ? path[d - 1] : 0;
      this.link(parent, parent !== 0 && this.child(parent, 1) === m ? 1 : 0, k0 | k1);
      topKey = this.nodes[m];
      topPrefix = this.prefixOf(m);
      this.release(m);
    }
    this.afterChange(topKey, topPrefix);
    return old;
  }

  /** Removes every prefix whose value is `value`; returns how many. */
  removeValue(value: T): number {
    let removed = 0;
    for (let n = 1; n < this.next; n++) {
      const p = n << this.shift;
      if (this.hasValue(p) && this.values[this.slotOf(p)] === value) {
        this.drop(p);
        removed++;
      }
    }
    if (removed > 0) {
      this.root = this.prune(this.root);
      this.afterChange(0, 0);
    }
    return removed;
  }

  /**
   * Brings the jump table up to date after a change under the prefix (`key0` = its first
   * word, `prefix` = its length): builds it when the table has grown large enough, else
   * rewrites the entries of the /16 blocks that prefix covers.
   */
  private afterChange(key0: number, prefix: number): void {
    if (this.jump === null) {
      if (this.count < JUMP_THRESHOLD) return;
      this.jump = new Int32Array(2 << JUMP_BITS);
      key0 = 0;
      prefix = 0;
    }
    const c = Math.min(prefix, JUMP_BITS);
    const lo = (key0 >>> (32 - JUMP_BITS)) & ~((1 << (JUMP_BITS - c)) - 1);
    this.fillJump(this.jump, this.root, 0, 0, 1 << JUMP_BITS, lo, lo + (1 << (JUMP_BITS - c)));
  }

  /**
   * Fills the jump entries of blocks [lo, hi) ∩ [qlo, qhi), all of whose walks reach record `p`
   * having passed `best` as the best valued record so far.
   */
  private fillJump(jump: Int32Array, p: number, best: number, lo: number, hi: number, qlo: number, qhi: number): void {
    if (hi <= qlo || lo >= qhi) return;
    const b = p === 0 ? 0 : this.prefixOf(p);
    if (p === 0 || b >= JUMP_BITS) {
      for (let i = Math.max(lo, qlo), end = Math.min(hi, qhi); i < end; i++) {
        jump[i << 1] = p;
        jump[(i << 1) | 1] = best;
      }
      return;
    }
    // Blocks outside p's prefix stop at p with no start record.
    const rlo = this.nodes[p] >>> (32 - JUMP_BITS);
    const rhi = rlo + (1 << (JUMP_BITS - b));
    this.fillJump(jump, 0, best, lo, rlo, qlo, qhi);
    this.fillJump(jump, 0, best, rhi, hi, qlo, qhi);
    if (this.hasValue(p)) best = p;
    const mid = rlo + (1 << (JUMP_BITS - 1 - b));
    this.fillJump(jump, this.child(p, 0), best, rlo, mid, qlo, qhi);
    this.fillJump(jump, this.child(p, 1), best, mid, rhi, qlo, qhi);
  }

  /** Drops valueless records with fewer than two children below `p`; returns what replaces p. */
  private prune(p: number): number {
    if (p === 0) return 0;
    const k0 = this.prune(this.child(p, 0));
    const k1 = this.prune(this.child(p, 1));
    this.setChild(p, 0, k0);
    this.setChild(p, 1, k1);
    if (this.hasValue(p) || (k0 !== 0 && k1 !== 0)) return p;
    this.release(p);
    return k0 | k1;
  }

  /** Appends the stored prefixes in address order, then prefix length (pre-order walk). */
  collect(out: Array<{ cidr: Cidr; value: T }>): void {
    const walk = (p: number): void => {
      if (p === 0) return;
      if (this.hasValue(p)) {
        const address = new Uint8Array(this.words * 4);
        for (let w = 0; w < this.words; w++) {
          const word = this.nodes[p + w];
          address[w * 4] = word >>> 24;
          address[w * 4 + 1] = word >>> 16;
          address[w * 4 + 2] = word >>> 8;
          address[w * 4 + 3] = word;
        }
        out.push({ cidr: { address, prefix: this.prefixOf(p) }, value: this.values[this.slotOf(p)] as T });
      }
      walk(this.child(p, 0));
      walk(this.child(p, 1));
    };
    walk(this.root);
  }

  /** Records reachable from the root, counted by walking the trie. */
  liveNodes(): number {
    const walk = (p: number): number => (p === 0 ? 0 : 1 + walk(this.child(p, 0)) + walk(this.child(p, 1)));
    return walk(this.root);
  }

  /** Bytes held by the record array and jump table, plus 8 per value slot. */
  byteLength(): number {
    return this.nodes.byteLength + (this.jump?.byteLength ?? 0) + this.values.length * 8;
  }
}

export class AllowedIps<T> {
  private readonly v4 = new Trie<T>(1);
  private readonly v6 = new Trie<T>(4);

  /** Number of prefixes stored (both families). */
  get size(): number {
    return this.v4.count + this.v6.count;
  }

  /** Loads a key into the family trie's scratch words, host bits cleared. */
  private load(cidr: Cidr): Trie<T> {
    const { address, prefix } = cidr;
    const trie = address.length === 4 ? this.v4 : address.length === 16 ? this.v6 : null;
    if (!trie) throw new RangeError(`an IP address has 4 or 16 bytes, not ${address.length}`);
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > trie.maxBits) {
      throw new RangeError(`prefix length ${prefix} is out of range (0-${trie.maxBits})`);
    }
    const key = trie.scratch;
    for (let w = 0; w < trie.words; w++) {
      const i = w * 4;
      const word = (address[i] << 24) | (address[i + 1] << 16) | (address[i + 2] << 8) | address[i + 3];
      key[w] = word & wordMask(w, prefix);
    }
    return trie;
  }

  /** Maps `cidr` (host bits ignored) to `value`; returns the value it replaces, if any. */
  insert(cidr: Cidr, value: T): T | undefined {
    const trie = this.load(cidr);
    return trie.insert(cidr.prefix, value);
  }

  /** Removes exactly `cidr` (host bits ignored); returns its value, if it was there. */
  remove(cidr: Cidr): T | undefined {
    const trie = this.load(cidr);
    return trie.remove(cidr.prefix);
  }

  /** The value of the longest prefix containing `address` (4 or 16 bytes). */
  lookup(address: Uint8Array): T | undefined {
    if (address.length === 4) return this.lookupPacket(address, 0, 4);
    if (address.length === 16) return this.lookupPacket(address, 0, 6);
    return undefined;
  }

  /**
   * Longest match for the address stored at `buf[offset..]` (4 bytes for family 4, 16 for 6),
   * e.g. the source or destination field of a packet. Allocates nothing.
   */
  lookupPacket(buf: Uint8Array, offset: number, family: 4 | 6): T | undefined {
    // Kept tiny so that it inlines into the caller; the work is in the family's trie.
    return family === 4 ? this.v4.lookupAt4(buf, offset) : this.v6.lookupAt6(buf, offset);
  }

  /** Removes every prefix mapped to `value` (compared with ===); returns how many. */
  removeValue(value: T): number {
    return this.v4.removeValue(value) + this.v6.removeValue(value);
  }

  clear(): void {
    this.v4.reset();
    this.v6.reset();
  }

  /** All prefixes: IPv4 first, each family by address, then by prefix length. */
  entries(): Array<{ cidr: Cidr; value: T }> {
    const out: Array<{ cidr: Cidr; value: T }> = [];
    this.v4.collect(out);
    this.v6.collect(out);
    return out;
  }

  /**
   * For tests and benchmarks: trie nodes in use (walks the whole trie) and the approximate bytes
   * the tables hold (typed arrays, plus 8 per value slot; the values themselves not counted).
   */
  stats(): { prefixes: number; nodes: number; bytes: number } {
    return {
      prefixes: this.size,
      nodes: this.v4.liveNodes() + this.v6.liveNodes(),
      bytes: this.v4.byteLength() + this.v6.byteLength(),
    };
  }
}
