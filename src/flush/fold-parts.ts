/**
 * The leader's fold of a period's packed parts (store/packed-parts.ts), in
 * merge order, with the semantics layout 2's mergeBatch-15 had in Redis, a
 * part at a time where the script ran a batch at a time (checked against the
 * script, kept as the reference, on a real Redis: test/integration/fold-parts.test.ts):
 *
 * - counters and timer counts sum as doubles; an overflowed sum stays, never
 *   NaN (inf + -inf keeps the stored one);
 * - the names bound: a name new to the period is admitted while the period
 *   holds fewer than maxNames names (each type apart; a gauge held from
 *   earlier periods is not new; counters under the exempt prefix always come
 *   in), else dropped and counted once a part, a few named; a timer refused
 *   by its count loses its samples; a set name is decided once a part (a
 *   part carries each set once, with its members);
 * - gauges keep the period's ops: 's' replaces, 'd' adds to the period's op
 *   and keeps its mode; a late part's 's' gives way to an 's' already there
 *   and goes before a 'd' already there; sums clamped to +-MAX_VALUE, counted.
 *
 * Two differences are the design's, not slips, and the test holds them
 * equal: a gauge is "held" as of the fold (the persistent gauges the leader
 * reads at flush), where mergeBatch-15 asked at each merge, so a gauge first
 * persisted by the previous period's close, or forgotten since, can be new to
 * one and not the other; and the bound and exempt prefix are the folding
 * leader's, where each merge carries its sender's (they differ only while a
 * config change rolls over the processes). A value of -0 is stored as 0, as
 * the script stores the sender's String(-0).
 *
 * In layout 3 the stored parts hold no gauges (mergeBatch-11 merges them in
 * Redis and counts the ones it admits): the fold starts its count there
 * (FoldOptions.count), so the gauges come first in the bound.
 *
 * A tombstone part (statsd's delcounters, deltimers) takes the counters and
 * timers it names out of the period as folded so far; they stay counted in
 * the bound, as an HDEL left mergeBatch-15's count.
 */
import { readParts, type PartVisitor } from '../store/packed-parts.js';

/** A gauge's op in the period: the value it is set to ('s'), or the delta to the value it had ('d'). */
export interface GaugeOp {
  delta: boolean;
  value: number;
}

/** What one part did: names the bound refused (counted once a part each), up to 5 of them, gauges clamped. */
export interface PartOutcome {
  dropped: number;
  examples: string[];
  clamped: number;
}

export interface FoldOptions {
  /** Distinct names the period (this shard's share) takes; 0: unbounded. */
  readonly maxNames: number;
  /** Counters whose name starts with it are never dropped ('' for none). */
  readonly exemptPrefix: string;
  /** Whether a gauge is held from earlier periods (then not new to the period). */
  readonly held: (gauge: string) => boolean;
  /** Names the period already holds before its first part (the gauges its merges admitted, `p:<P>:names`). */
  readonly count?: number;
}

const MAX_EXAMPLES = 5;

/** a + b as the fold sums counters and timer counts: a sum that would be NaN (inf + -inf) keeps a, the first overflow. */
export function addKeepingOverflow(a: number, b: number): number {
  const sum = a + b;
  return sum !== sum ? a : sum;
}

export class PartsFolder implements PartVisitor {
  readonly counters = new Map<string, number>();
  readonly timerCounts = new Map<string, number>();
  /** Every sample of the period's timers, in merge order. */
  readonly timers = new Map<string, number[]>();
  readonly gauges = new Map<string, GaugeOp>();
  readonly sets = new Map<string, Set<string>>();
  /** One outcome a part, in order. */
  readonly outcomes: PartOutcome[] = [];
  /** Names the period holds (the bound's count). */
  count = 0;

  private late = false;
  private tombstone = false;
  private cur: PartOutcome = { dropped: 0, examples: [], clamped: 0 };

  constructor(private readonly opts: FoldOptions) {
    this.count = opts.count ?? 0;
  }

  part(late: boolean, tombstone = false): void {
    this.late = late;
    this.tombstone = tombstone;
    this.cur = { dropped: 0, examples: [], clamped: 0 };
  }

  end(): void {
    this.outcomes.push(this.cur);
  }

  counter(name: string, value: number, parts = 1): void {
    if (this.tombstone) this.counters.delete(name);
    else this.add(this.counters, name, value, true, parts);
  }

  timer(name: string, count: number, samples: Float64Array, from: number, to: number, parts = 1): void {
    if (this.tombstone) {
      this.timerCounts.delete(name);
      this.timers.delete(name);
      return;
    }
    if (!this.add(this.timerCounts, name, count, false, parts)) return; // refused: its samples go with it
    let list = this.timers.get(name);
    if (list === undefined) this.timers.set(name, (list = []));
    for (let i = from; i < to; i++) list.push(samples[i]!);
  }

  gauge(name: string, delta: boolean, value: number): void {
    const c = this.gauges.get(name);
    if (c === undefined) {
      if ((this.opts.maxNames > 0 && this.opts.held(name)) || this.admit(name, false)) this.gauges.set(name, { delta, value: value + 0 });
      return;
    }
    if (delta) {
      c.value = this.clamp(c.value + value);
    } else if (this.late) {
      // An older value than the period's own: an 's' there stays; a 'd' there applies on top of it.
      if (c.delta) {
        c.value = this.clamp(value + c.value);
        c.delta = false;
      }
    } else {
      c.delta = false;
      c.value = value + 0;
    }
  }

  set(name: string, members: readonly string[], parts = 1): void {
    if (members.length === 0) return;
    let held = this.sets.get(name);
    if (held === undefined) {
      if (!this.admit(name, false, parts)) return;
      this.sets.set(name, (held = new Set()));
    }
    for (const m of members) held.add(m);
  }

  /** Adds value to name's sum; false when the name is new and the bound refused it. */
  private add(map: Map<string, number>, name: string, value: number, isCounter: boolean, parts: number): boolean {
    const c = map.get(name);
    if (c !== undefined) {
      map.set(name, addKeepingOverflow(c, value));
      return true;
    }
    if (!this.admit(name, isCounter, parts)) return false;
    map.set(name, value + 0); // -0 is stored as 0 (the script stores the sender's String(-0))
    return true;
  }

  /**
   * A name new to the period: true when it comes in (and is counted), false when the bound drops it, counted once
   * for each part it stands for (a compacted part's item stands for several).
   */
  private admit(name: string, isCounter: boolean, parts = 1): boolean {
    const { maxNames, exemptPrefix } = this.opts;
    if (maxNames > 0 && this.count >= maxNames && !(isCounter && exemptPrefix.length > 0 && name.startsWith(exemptPrefix))) {
      this.cur.dropped += parts;
      if (this.cur.examples.length < MAX_EXAMPLES) this.cur.examples.push(name);
      return false;
    }
    this.count++;
    return true;
  }

  private clamp(x: number): number {
    if (x > Number.MAX_VALUE) {
      this.cur.clamped++;
      return Number.MAX_VALUE;
    }
    if (x < -Number.MAX_VALUE) {
      this.cur.clamped++;
      return -Number.MAX_VALUE;
    }
    return x;
  }
}

/** A period's parts (or none) folded whole, unbounded: what its leader will make of them (tests, the console). */
export function foldParts(parts: Buffer | null): PartsFolder {
  const folder = new PartsFolder({ maxNames: 0, exemptPrefix: '', held: () => false });
  readParts(parts ?? Buffer.alloc(0), folder);
  return folder;
}
