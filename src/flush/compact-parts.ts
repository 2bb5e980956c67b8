/**
 * The leader's compaction of an open period's parts (store/packed-parts.ts):
 * a busy name is in every batch tick's part (50 a period at the default
 * batchInterval, times the processes), so a period's string grows with
 * ticks x names where layout 2's hashes held each name once. Every so often
 * (Flusher, compactEvery) the shard's leader reads the parts appended so
 * far, rewrites them as compacted parts holding each name once, and puts
 * them in place of what it read (compactParts-3.lua; parts appended meanwhile
 * stay after them). Redis then holds about one entry a name, and the merges'
 * byte budget is spent on distinct names, as maxNamesPerPeriod means.
 *
 * Exact: folding the compacted parts and then any later parts gives the
 * same period as folding the original parts and the same later parts
 * (fold-parts.ts), whatever the bound and the count the fold starts from at
 * flush (test/unit/compact-parts.test.ts checks it on random parts):
 *
 * - values are the left fold of the name's values in merge order, with the
 *   fold's own rules (a sum that would be NaN keeps the first overflow; -0
 *   is 0), so later parts add to the same double; timer samples keep their
 *   order; set members are unions;
 * - the bound decides a name at its first appearance in merge order, and the
 *   counters, timers and sets of one part are met section by section: so the
 *   names are written in groups, one compacted part for each original part
 *   that brought names new to the period, each group in that part's order;
 * - a name the bound drops is counted once a part it was in: each item says
 *   how many parts it stands for;
 * - a tombstone (statsd's delcounters, deltimers) is kept where it was: the
 *   names it takes out end their run there (their items before it stay, with
 *   what they had summed so far), and a name that comes back after it starts
 *   a new item in the group of the part it came back in, as the fold sees a
 *   new name.
 *
 * Only counters, timers and sets are compacted: parts with gauges (layout 3's
 * merges keep gauges in hashes; only tests write them) or a tombstone with
 * sets are left as they are (null).
 */
import { FLAG_COMPACTED, PartWriter, readPartsSliced, tombstonePart, type PartVisitor } from '../store/packed-parts.js';
import type { CompactOutcome } from '../store/store.js';
import { addKeepingOverflow } from './fold-parts.js';
import { runSync, SLICE, type Sliced } from './slices.js';

/** An open period's parts are compacted once they reach this many bytes (and then as they double). */
export const COMPACT_MIN_BYTES = 64 * 1024;
/** A compaction that kept more than this share of the bytes found few names repeated (a flood of new names). */
const COMPACT_POOR = 0.75;

/**
 * When the leader compacts each open period next (Flusher.compactOpen looks every fifth of flushInterval, 100 ms
 * to 1 s). The mark starts at COMPACT_MIN_BYTES and doubles on what a compaction left, so the bytes a compaction
 * reads are at most about twice those appended since the last one. A compaction that saved little (a flood of new
 * names, each once) sets the period's mark four times further, and makes the next periods start eight times what
 * it read: a flood costs a few compactions in its first period, then none, until compactions save again. A
 * compaction that would not make the parts smaller is not put (Store.compactPeriod: 'kept'). The start stays
 * within a quarter of the merges' byte budget (bound.ts) and a period's mark within its last quarter, so busy names
 * after a flood, or beside one, are compacted before they fill it.
 */
export class CompactSchedule {
  private readonly at = new Map<number, number>();
  private start = COMPACT_MIN_BYTES;
  private readonly maxStart: number;

  /** budget: the shard's byte budget of a period's parts (partsBudget; 0 for none). */
  constructor(private readonly budget = 0) {
    this.maxStart = budget > 0 ? Math.max(COMPACT_MIN_BYTES, Math.floor(budget / 4)) : Infinity;
  }

  /** Whether the period (boundary ms), its parts at `bytes`, is due for a compaction. */
  due(boundaryMs: number, bytes: number): boolean {
    return bytes >= (this.at.get(boundaryMs) ?? this.start);
  }

  /** What a compaction of the period did. */
  done(boundaryMs: number, r: CompactOutcome): void {
    if (r.status === 'compacted' && r.bytesOut <= COMPACT_POOR * r.bytesIn) {
      this.mark(boundaryMs, r.bytesNow, Math.max(COMPACT_MIN_BYTES, 2 * r.bytesNow));
      this.start = COMPACT_MIN_BYTES;
    } else if (r.status === 'compacted' || r.status === 'kept') {
      // Little or nothing saved (a flood of new names; or parts that hold gauges).
      const now = r.status === 'compacted' ? r.bytesNow : r.bytesIn;
      this.mark(boundaryMs, now, now + 3 * Math.max(r.bytesIn, COMPACT_MIN_BYTES));
      this.start = Math.min(this.maxStart, Math.max(this.start, 8 * r.bytesIn));
    }
    // raced: due again at the next look; closed: forgotten with the period (keep)
  }

  /**
   * The period's next mark: `want`, but never past the budget's last quarter (or half the room left, when the
   * parts are in it already), so a period whose compaction left it large still compacts before the merges' budget
   * refuses its parts; and at least COMPACT_MIN_BYTES past what the parts hold now.
   */
  private mark(boundaryMs: number, now: number, want: number): void {
    const room = this.budget > 0 ? Math.max(0.75 * this.budget, now + (this.budget - now) / 2) : Infinity;
    this.at.set(boundaryMs, Math.max(now + COMPACT_MIN_BYTES / 4, Math.min(want, room)));
  }

  /** Forgets the periods no longer open. */
  keep(open: readonly number[]): void {
    const still = new Set(open);
    for (const ts of this.at.keys()) if (!still.has(ts)) this.at.delete(ts);
  }
}

interface CounterItem {
  readonly kind: 0;
  readonly name: string;
  value: number;
  parts: number;
}
interface TimerItem {
  readonly kind: 1;
  readonly name: string;
  count: number;
  readonly samples: number[];
  parts: number;
}
interface SetItem {
  readonly kind: 2;
  readonly name: string;
  readonly members: Set<string>;
  parts: number;
}
type Item = CounterItem | TimerItem | SetItem;

/** What the compacted string holds, in order: a group of items (one compacted part), or a tombstone as it was. */
type Block = { readonly items: Item[] } | { readonly tombstone: { counters: string[]; timers: string[] } };

/** Raised inside the visitor to leave parts that cannot be compacted as they are. */
class NotCompactable extends Error {}

class Compactor implements PartVisitor {
  readonly blocks: Block[] = [];
  /** Each name's item being summed (its current run: until a tombstone takes it out). */
  private readonly counters = new Map<string, CounterItem>();
  private readonly timers = new Map<string, TimerItem>();
  private readonly sets = new Map<string, SetItem>();
  /** The group of the part being read, made when it brings its first new name. */
  private group: Item[] | null = null;
  private tombstone: { counters: string[]; timers: string[] } | null = null;

  part(_late: boolean, tombstone: boolean): void {
    this.group = null;
    this.tombstone = tombstone ? { counters: [], timers: [] } : null;
  }

  end(): void {
    if (this.tombstone !== null) this.blocks.push({ tombstone: this.tombstone });
    this.tombstone = null;
  }

  private add(item: Item): void {
    if (this.group === null) {
      this.group = [];
      this.blocks.push({ items: this.group });
    }
    this.group.push(item);
  }

  counter(name: string, value: number, parts: number): void {
    if (this.tombstone !== null) {
      this.tombstone.counters.push(name);
      this.counters.delete(name);
      return;
    }
    const c = this.counters.get(name);
    if (c === undefined) {
      const item: CounterItem = { kind: 0, name, value: value + 0, parts };
      this.counters.set(name, item);
      this.add(item);
      return;
    }
    c.value = addKeepingOverflow(c.value, value);
    c.parts += parts;
  }

  timer(name: string, count: number, samples: Float64Array, from: number, to: number, parts: number): void {
    if (this.tombstone !== null) {
      this.tombstone.timers.push(name);
      this.timers.delete(name);
      return;
    }
    let t = this.timers.get(name);
    if (t === undefined) {
      t = { kind: 1, name, count: count + 0, samples: [], parts };
      this.timers.set(name, t);
      this.add(t);
    } else {
      t.count = addKeepingOverflow(t.count, count);
      t.parts += parts;
    }
    for (let i = from; i < to; i++) t.samples.push(samples[i]!);
  }

  gauge(): void {
    throw new NotCompactable('gauges in a part');
  }

  set(name: string, members: readonly string[], parts: number): void {
    if (this.tombstone !== null) throw new NotCompactable('sets in a tombstone');
    if (members.length === 0) return; // the fold ignores it: not an appearance
    let s = this.sets.get(name);
    if (s === undefined) {
      s = { kind: 2, name, members: new Set(), parts };
      this.sets.set(name, s);
      this.add(s);
    } else {
      s.parts += parts;
    }
    for (const m of members) s.members.add(m);
  }
}

/** What a compaction made: the compacted bytes, and how many parts and items went in and came out. */
export interface Compacted {
  readonly bytes: Buffer;
  readonly partsIn: number;
  readonly partsOut: number;
  readonly items: number;
}

/** compactParts in slices (slices.ts); null when the parts hold what is not compacted (see the header). */
export function* compactPartsSliced(buf: Buffer): Sliced<Compacted | null> {
  const c = new Compactor();
  let partsIn: number;
  try {
    partsIn = yield* readPartsSliced(buf, c);
  } catch (err) {
    if (err instanceof NotCompactable) return null;
    throw err;
  }
  const out: Buffer[] = [];
  let items = 0;
  let sinceYield = 0;
  const none = new Float64Array(0);
  for (const b of c.blocks) {
    if ('tombstone' in b) {
      out.push(tombstonePart(b.tombstone.counters, b.tombstone.timers));
      continue;
    }
    const w = new PartWriter(FLAG_COMPACTED);
    // The fold meets a part's counters, then its timers, then its sets: the group is written in that order.
    for (const it of b.items) if (it.kind === 0) w.counter(it.name, it.value, it.parts);
    for (const it of b.items) {
      if (it.kind !== 1) continue;
      const s = it.samples.length > 0 ? Float64Array.from(it.samples) : none;
      w.timer(it.name, it.count, s, 0, s.length, it.parts);
    }
    for (const it of b.items) if (it.kind === 2) w.set(it.name, it.members, it.members.size, it.parts);
    out.push(w.finish());
    items += b.items.length;
    sinceYield += b.items.length;
    if (sinceYield >= SLICE) {
      sinceYield = 0;
      yield;
    }
  }
  return { bytes: Buffer.concat(out), partsIn, partsOut: out.length, items };
}

/**
 * The parts in buf (appended one after another, as a period's string holds them) rewritten with each name once
 * (see the header), or null when they hold gauges or a tombstone with sets. Throws PackedPartError on a part that
 * does not read back, as the fold would.
 */
export function compactParts(buf: Buffer): Compacted | null {
  return runSync(compactPartsSliced(buf));
}
