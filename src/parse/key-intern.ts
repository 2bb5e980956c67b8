/**
 * The statsd line parser's intern table: the raw bytes of a line's key
 * region (name bytes + tag bytes, the part that decides the final statsd key)
 * -> the final key string (tags appended, sanitized). The key string is built
 * the first time a raw key is seen; after that a well-formed line whose key
 * is in the table costs a hash and a byte compare and allocates nothing, and
 * every sample of that name carries the same string object, so the Batch's
 * Map lookups find it by its cached hash and by identity.
 *
 * Layout (nothing per entry is a JS object): open addressing with linear
 * probing over an Int32Array of entry numbers (+1, 0 is empty) and their
 * hashes; an entry's raw bytes sit in one arena Buffer (name bytes then tag
 * bytes, with both lengths stored), its string in a plain array. The table
 * starts small and doubles (rehashing from the stored hashes) up to twice
 * maxEntries slots, so it stays at most half full.
 *
 * Bounded: when it holds maxEntries keys, or the arena would pass
 * maxArenaBytes, the next insert either doubles both limits or clears the
 * table and starts over. It doubles them (up to maxEntriesCap and
 * maxArenaCap) when the generation that filled up saw more hits than misses:
 * the names repeat, there are just more of them than the table holds (a
 * fleet past 100k names would otherwise clear the table every second or so
 * and miss on every name, the hot ones too, right after each clear). At the
 * caps it clears, so memory stays bounded whatever clients send. Clearing
 * beats an LRU here: an LRU would write on every hit, and a working set
 * under the limit (the normal case: names repeat every few seconds) never
 * clears at all. When the generation that
 * filled up saw more misses than hits (a flood of unique names: a client
 * putting ids in names), interning would only add a copy and an insert per
 * line and keep strings alive long enough to be promoted, so the table rests:
 * it answers `not held` and stores nothing for the next restLookups lookups
 * (10 x maxEntries by default), then tries again with an empty table. Each
 * further generation in a row that fills up the same way doubles the rest
 * (up to 64 times), so a steady flood costs close to nothing extra; one
 * that fills up with mostly hits ends the streak.
 * Probing is bounded too (INTERN_MAX_PROBE slots): a key whose run is longer is
 * simply not interned, so hash collisions, even crafted ones, cannot turn a
 * lookup into a scan. The seed is random per table for the same reason.
 */

/**
 * Default most keys kept at first. 100k distinct keys (tags included) is far
 * above what one tallyd sees per flush in the deployments it is built for
 * (the bench uses 1,000 per type) and costs at most ~20 MB: the index 2 x
 * 2^18 Int32 slots (2 MB), per-entry arrays (1.6 MB), the arena (<=
 * maxArenaBytes) and the strings (about the arena's size again).
 */
export const INTERN_MAX_ENTRIES = 100_000;
/** Default cap of the raw-bytes arena at first. */
export const INTERN_MAX_ARENA_BYTES = 8 << 20;
/**
 * Default limits the table may double up to while its names keep repeating
 * (see the header): a million keys, ~150-200 MB with their strings. Entry
 * numbers must stay below KEY_SPAN.
 */
export const INTERN_MAX_ENTRIES_CAP = 1_000_000;
export const INTERN_MAX_ARENA_CAP = 64 << 20;
/** Longer raw key regions are never interned (they are built every time, as without the table). */
export const INTERN_MAX_KEY_BYTES = 512;
/**
 * Key ids: every table generation (a new table, or one just cleared) numbers
 * its entries from a fresh multiple of KEY_SPAN, so within a generation an id
 * names one raw key and one string, and an id from a newer generation tells a
 * cache that older ones are dead. Ids stay below KEY_LIMIT, so they are small
 * integers (Smis: passing one never allocates); the bases wrap after 1,024
 * generations, so a sink caching by id must confirm the name it finds (Batch
 * compares the string, usually the very same object).
 */
export const KEY_SPAN = 1 << 20;
const KEY_LIMIT = 1 << 30;
let nextKeyBase = 0;

function takeKeyBase(): number {
  const base = nextKeyBase;
  nextKeyBase = (nextKeyBase + KEY_SPAN) % KEY_LIMIT;
  return base;
}

/** Slots a lookup or insert examines at most. */
export const INTERN_MAX_PROBE = 128;
const MIN_SLOTS = 1024;

const FNV_PRIME = 0x01000193;

/** One FNV-1a step; exported so the parser can hash the name while it scans for ':'. */
export function hashByte(h: number, b: number): number {
  return Math.imul(h ^ b, FNV_PRIME);
}

/** FNV-1a over buf[start, end), continuing from h. */
export function hashBytes(buf: Uint8Array, start: number, end: number, h: number): number {
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, FNV_PRIME);
  return h;
}

/** Mixes a name hash and a tag hash into the final hash (murmur3's fmix32 spreads FNV's low bits). */
export function finishHash(nameHash: number, tagHash: number): number {
  let h = nameHash ^ Math.imul(tagHash, 0x9e3779b1);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

function nextPow2(n: number): number {
  let p = MIN_SLOTS;
  while (p < n) p *= 2;
  return p;
}

export interface InternOptions {
  /** Most keys kept at first, before the table doubles its limits or is cleared (at most KEY_SPAN). */
  readonly maxEntries?: number;
  /** Most raw key bytes kept at first. */
  readonly maxArenaBytes?: number;
  /** Most keys the table may grow to hold (at most KEY_SPAN); maxEntries or less: it never grows. */
  readonly maxEntriesCap?: number;
  /** Most raw key bytes the table may grow to hold. */
  readonly maxArenaCap?: number;
  /** Lookups to skip interning for after a generation filled up with mostly misses; 0: never rest. */
  readonly restLookups?: number;
  /** Hash seed; random when absent. Fixed in tests that need reproducible collisions. */
  readonly seed?: number;
}

/** What KeyInternTable.find reads (see lookupTables()). */
export interface InternTables {
  readonly slots: Int32Array;
  readonly slotHash: Int32Array;
  readonly entryOff: Int32Array;
  readonly entryNameLen: Int32Array;
  readonly entryTagLen: Int32Array;
  readonly arena: Buffer;
}

export class KeyInternTable {
  /** The FNV-1a offset basis to start a name hash from. */
  readonly seed: number;
  /** Times the table was cleared because it was full (a self-metric candidate; tests read it). */
  clears = 0;
  /** Times it started resting after a generation of mostly misses (see the header). */
  rests = 0;
  /** Times it doubled its limits instead of clearing (see the header). */
  grows = 0;
  /** Key id of entry 0 of this generation (see KEY_SPAN). */
  keyBase: number;
  private maxEntries: number;
  private readonly maxEntriesCap: number;
  private readonly restLookups: number;
  /** Lookups of this generation that found their key, and that did not. */
  private hits = 0;
  private misses = 0;
  /** Lookups left to answer `not held` without looking. */
  private resting = 0;
  /** Generations in a row that filled up with mostly misses. */
  private churnStreak = 0;
  private maxArenaBytes: number;
  private readonly maxArenaCap: number;
  private maxSlots: number;
  private count = 0;
  private mask: number;
  /** Entry number + 1 per slot; 0 is empty. */
  private slots: Int32Array;
  /** The hash of the entry in each slot (compared before the bytes). */
  private slotHash: Int32Array;
  private entryHash: Int32Array;
  private entryOff: Int32Array;
  private entryNameLen: Int32Array;
  private entryTagLen: Int32Array;
  private names: string[] = [];
  private arena: Buffer;
  private arenaLen = 0;
  private tables: InternTables | null = null;

  constructor(opts: InternOptions = {}) {
    this.maxEntries = Math.min(KEY_SPAN, Math.max(1, Math.floor(opts.maxEntries ?? INTERN_MAX_ENTRIES)));
    this.keyBase = takeKeyBase();
    this.restLookups = Math.max(0, Math.floor(opts.restLookups ?? this.maxEntries * 10));
    this.maxArenaBytes = Math.max(INTERN_MAX_KEY_BYTES * 2, Math.floor(opts.maxArenaBytes ?? INTERN_MAX_ARENA_BYTES));
    this.maxEntriesCap = Math.min(KEY_SPAN, Math.max(this.maxEntries, Math.floor(opts.maxEntriesCap ?? INTERN_MAX_ENTRIES_CAP)));
    this.maxArenaCap = Math.max(this.maxArenaBytes, Math.floor(opts.maxArenaCap ?? INTERN_MAX_ARENA_CAP));
    this.maxSlots = nextPow2(this.maxEntries * 2);
    this.seed = (opts.seed ?? Math.floor(Math.random() * 0x100000000)) | 0;
    const slots = Math.min(MIN_SLOTS, this.maxSlots);
    this.mask = slots - 1;
    this.slots = new Int32Array(slots);
    this.slotHash = new Int32Array(slots);
    const entries = Math.min(slots >> 1, this.maxEntries);
    this.entryHash = new Int32Array(entries);
    this.entryOff = new Int32Array(entries);
    this.entryNameLen = new Int32Array(entries);
    this.entryTagLen = new Int32Array(entries);
    this.arena = Buffer.allocUnsafe(Math.min(16 * 1024, this.maxArenaBytes));
  }

  /** Keys held. */
  get size(): number {
    return this.count;
  }

  /**
   * The entry of name bytes buf[ns, ne) + tag bytes buf[ts, te), whose hash
   * is finishHash(hashBytes(name, seed), hashBytes(tags, seed)), or -1 when
   * not held. Allocates nothing. Its string is nameOf(entry), its key id
   * keyBase + entry.
   */
  find(buf: Uint8Array, ns: number, ne: number, ts: number, te: number, hash: number): number {
    if (this.resting > 0) return -1; // add counts the rest down
    const slots = this.slots;
    const slotHash = this.slotHash;
    const mask = this.mask;
    let i = hash & mask;
    for (let probe = 0; probe < INTERN_MAX_PROBE; probe++) {
      const e = slots[i]!;
      if (e === 0) break;
      if (slotHash[i] === hash && this.sameBytes(e - 1, buf, ns, ne, ts, te)) {
        this.hits++;
        return e - 1;
      }
      i = (i + 1) & mask;
    }
    this.misses++;
    return -1;
  }

  /**
   * The arrays find() reads, for the native ZeroMQ scanner to look names up the same way (zmq_scan.c), or null
   * while resting (find answers -1 then). Valid until the next add(), which may replace or clear them.
   */
  lookupTables(): InternTables | null {
    if (this.resting > 0) return null;
    const t = this.tables;
    if (
      t !== null && t.slots === this.slots && t.slotHash === this.slotHash && t.entryOff === this.entryOff &&
      t.entryNameLen === this.entryNameLen && t.entryTagLen === this.entryTagLen && t.arena === this.arena
    ) {
      return t;
    }
    this.tables = {
      slots: this.slots, slotHash: this.slotHash, entryOff: this.entryOff, entryNameLen: this.entryNameLen,
      entryTagLen: this.entryTagLen, arena: this.arena,
    };
    return this.tables;
  }

  /** Counts n lookups that found their entry outside find() (through lookupTables()), as find would have. */
  countHits(n: number): void {
    this.hits += n;
  }

  /** The key string of an entry find or add returned. */
  nameOf(entry: number): string {
    return this.names[entry]!;
  }

  /** The key string of a raw key (see find), or undefined. */
  get(buf: Uint8Array, ns: number, ne: number, ts: number, te: number, hash: number): string | undefined {
    const e = this.find(buf, ns, ne, ts, te, hash);
    return e < 0 ? undefined : this.names[e];
  }

  /**
   * Holds name as the key string of a raw key (see find) that find did not
   * find, clearing the table first when it is full. Returns the new entry,
   * or -1 when not held (too long, its probe run is full, or resting).
   */
  add(buf: Uint8Array, ns: number, ne: number, ts: number, te: number, hash: number, name: string): number {
    const nameLen = ne - ns;
    const tagLen = te - ts;
    const len = nameLen + tagLen;
    if (this.resting > 0) {
      this.resting--;
      return -1;
    }
    if (len > INTERN_MAX_KEY_BYTES) return -1;
    if (this.count >= this.maxEntries || this.arenaLen + len > this.maxArenaBytes) {
      const churn = this.misses > this.hits;
      if (this.hits > this.misses && this.raiseLimits()) return this.add(buf, ns, ne, ts, te, hash, name);
      this.clear(true);
      this.churnStreak = churn ? this.churnStreak + 1 : 0;
      if (churn && this.restLookups > 0) {
        this.resting = this.restLookups * 2 ** Math.min(6, this.churnStreak - 1);
        this.rests++;
        return -1;
      }
    }
    if (this.count >= this.slots.length >> 1) this.grow();
    const mask = this.mask;
    let i = hash & mask;
    let probe = 0;
    while (this.slots[i] !== 0) {
      if (++probe === INTERN_MAX_PROBE) return -1;
      i = (i + 1) & mask;
    }
    if (this.arenaLen + len > this.arena.length) {
      const bigger = Buffer.allocUnsafe(Math.min(this.maxArenaBytes, Math.max(this.arena.length * 2, this.arenaLen + len)));
      this.arena.copy(bigger, 0, 0, this.arenaLen);
      this.arena = bigger;
    }
    const off = this.arenaLen;
    const arena = this.arena;
    for (let k = 0; k < nameLen; k++) arena[off + k] = buf[ns + k]!;
    for (let k = 0; k < tagLen; k++) arena[off + nameLen + k] = buf[ts + k]!;
    this.arenaLen = off + len;
    const e = this.count++;
    this.entryHash[e] = hash;
    this.entryOff[e] = off;
    this.entryNameLen[e] = nameLen;
    this.entryTagLen[e] = tagLen;
    this.names[e] = name;
    this.slots[i] = e + 1;
    this.slotHash[i] = hash;
    return e;
  }

  /**
   * Doubles maxEntries and maxArenaBytes (each up to its cap), keeping every
   * key; false when both are at their caps. The slots grow as entries come.
   */
  private raiseLimits(): boolean {
    const entries = Math.min(this.maxEntriesCap, this.maxEntries * 2);
    const arena = Math.min(this.maxArenaCap, this.maxArenaBytes * 2);
    if (entries === this.maxEntries && arena === this.maxArenaBytes) return false;
    // Room on one axis only helps if the other is not what filled up.
    const fullEntries = this.count >= entries;
    const fullArena = this.arenaLen + INTERN_MAX_KEY_BYTES > arena;
    if (fullEntries || fullArena) return false;
    this.maxEntries = entries;
    this.maxArenaBytes = arena;
    this.maxSlots = nextPow2(entries * 2);
    this.widenEntries(Math.min(this.slots.length >> 1, entries));
    this.grows++;
    // The next decision looks at what came after this one.
    this.hits = 0;
    this.misses = 0;
    return true;
  }

  /** Forget every key (keeps the allocated arrays); later entries get key ids of a new generation. */
  clear(full = false): void {
    if (full) this.clears++;
    this.keyBase = takeKeyBase();
    this.hits = 0;
    this.misses = 0;
    this.count = 0;
    this.arenaLen = 0;
    this.names = [];
    this.slots.fill(0);
  }

  private sameBytes(e: number, buf: Uint8Array, ns: number, ne: number, ts: number, te: number): boolean {
    const nameLen = this.entryNameLen[e]!;
    if (nameLen !== ne - ns || this.entryTagLen[e] !== te - ts) return false;
    const arena = this.arena;
    let off = this.entryOff[e]!;
    for (let k = ns; k < ne; k++) if (arena[off++] !== buf[k]) return false;
    for (let k = ts; k < te; k++) if (arena[off++] !== buf[k]) return false;
    return true;
  }

  /** Makes the per-entry arrays hold `entries` entries, keeping the ones in use. */
  private widenEntries(entries: number): void {
    if (entries <= this.entryHash.length) return;
    const widen = (a: Int32Array): Int32Array => {
      const b = new Int32Array(entries);
      b.set(a.subarray(0, this.count));
      return b;
    };
    this.entryHash = widen(this.entryHash);
    this.entryOff = widen(this.entryOff);
    this.entryNameLen = widen(this.entryNameLen);
    this.entryTagLen = widen(this.entryTagLen);
  }

  /** Double the slots (and entry arrays) and re-place every entry from its stored hash. */
  private grow(): void {
    const slots = Math.min(this.slots.length * 2, this.maxSlots);
    if (slots === this.slots.length) return;
    this.slots = new Int32Array(slots);
    this.slotHash = new Int32Array(slots);
    this.mask = slots - 1;
    this.widenEntries(Math.min(slots >> 1, this.maxEntries));
    for (let e = 0; e < this.count; e++) {
      const h = this.entryHash[e]!;
      let i = h & this.mask;
      let probe = 0;
      while (this.slots[i] !== 0 && probe < INTERN_MAX_PROBE) {
        probe++;
        i = (i + 1) & this.mask;
      }
      if (probe === INTERN_MAX_PROBE) continue; // dropped: looked up, it misses and is rebuilt
      this.slots[i] = e + 1;
      this.slotHash[i] = h;
    }
  }
}
