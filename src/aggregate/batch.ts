/**
 * The in-memory fold of one batch tick: every sample a process receives
 * between two merges lands here, so Redis sees one round trip per batch no
 * matter how many packets arrived (DESIGN invariant 1).
 *
 * Each metric type keeps its names in first-seen order, each with a dense
 * slot number, and its numbers in typed arrays indexed by slot: a sample of a
 * name already in the batch allocates nothing (no boxed numbers, no
 * per-sample Map.set). A sample finds its slot by the parser's intern key id
 * when it has one (a small int table, see Slots), else by one Map<string,
 * slot> lookup; names from the parser are interned strings
 * (parse/key-intern.ts), so even that lookup hits on a cached hash and
 * identity. Timer samples share one Float64Array, each timer's in a run that
 * moves to a twice-as-large one when full. encodeMerge reads the slots in
 * first-seen order, so the merge ARGV is what one Map per type gave. Keys are
 * final statsd names (tags included), so `constructor` is just a name.
 */
import { KEY_SPAN } from '../parse/key-intern.js';
import type { SampleSink } from '../parse/sample-sink.js';

const INITIAL_SLOTS = 64;
const INITIAL_SAMPLES = 8;

function grownF64(a: Float64Array<ArrayBuffer>, need: number): Float64Array<ArrayBuffer> {
  const b = new Float64Array(Math.max(need, a.length * 2));
  b.set(a);
  return b;
}

function grownI32(a: Int32Array<ArrayBuffer>, size: number): Int32Array<ArrayBuffer> {
  const b = new Int32Array(size);
  b.set(a);
  return b;
}

function grownU32(a: Uint32Array<ArrayBuffer>, size: number): Uint32Array<ArrayBuffer> {
  const b = new Uint32Array(size);
  b.set(a);
  return b;
}

/** One set name's distinct members in the batch, and how many samples named it. */
export interface SetEntry {
  readonly members: Set<string>;
  samples: number;
}

/** Fibonacci hashing of a key id: sequential ids (an intern table's entries) spread evenly. */
const GOLDEN = 0x9e3779b1;

/**
 * Names of one metric type in first-seen order, each with a dense slot
 * number. A sample that comes with an intern key id (see SampleSink) finds
 * its slot in a small open-addressing table of ids, checks that the slot is
 * its name's (the same string object: one compare), and skips hashing the
 * name. The Map by name stays the authority, so keyed and unkeyed samples of
 * one name share a slot, and an id that is stale or from another table can
 * only cost a Map lookup, never land on another name.
 */
class Slots {
  readonly names: string[] = [];
  private readonly index = new Map<string, number>();
  /** Ids cached are [keyBase, keyBase + KEY_SPAN): one intern-table generation. */
  private keyBase = -1;
  /** (id - keyBase) + 1 per cell, 0 empty; the slot is in the same cell of keySlots. */
  private keyIds = new Int32Array(1);
  private keySlots = new Int32Array(1);
  private keyCount = 0;

  /** The slot of name; a new name gets the next one (== size before the call). */
  slot(name: string, key: number): number {
    const k = key - this.keyBase;
    if (key >= 0 && k >= 0 && k < KEY_SPAN) {
      const ids = this.keyIds;
      const mask = ids.length - 1;
      let c = Math.imul(k, GOLDEN) & mask;
      while (true) {
        const id = ids[c]!;
        if (id === k + 1) {
          const slot = this.keySlots[c]!;
          if (this.names[slot] === name) return slot;
          break;
        }
        if (id === 0) break;
        c = (c + 1) & mask;
      }
    }
    return this.byName(name, key);
  }

  get size(): number {
    return this.names.length;
  }

  /** By name: a sample without a key id, or the first of a name or id in this batch (then the id is cached). */
  private byName(name: string, key: number): number {
    let i = this.index.get(name);
    if (i === undefined) {
      i = this.names.length;
      this.index.set(name, i);
      this.names.push(name);
    }
    if (key >= 0) this.cacheKey(key, i);
    return i;
  }

  private cacheKey(key: number, slot: number): void {
    let k = key - this.keyBase;
    if (this.keyBase < 0 || k >= KEY_SPAN) {
      // A newer intern generation (ids only grow, KEY_SPAN apart): the cached ids are dead.
      this.keyBase = key - (key % KEY_SPAN);
      this.keyIds = new Int32Array(64);
      this.keySlots = new Int32Array(64);
      this.keyCount = 0;
      k = key - this.keyBase;
    } else if (k < 0) {
      return; // an older generation, or another parser's table: the name path serves it
    }
    if (2 * (this.keyCount + 1) > this.keyIds.length) this.growKeys();
    this.putKey(k, slot);
  }

  /** Map id offset k to slot, replacing what k mapped to. */
  private putKey(k: number, slot: number): void {
    const ids = this.keyIds;
    const mask = ids.length - 1;
    let c = Math.imul(k, GOLDEN) & mask;
    while (ids[c] !== 0 && ids[c] !== k + 1) c = (c + 1) & mask;
    if (ids[c] === 0) this.keyCount++;
    ids[c] = k + 1;
    this.keySlots[c] = slot;
  }

  private growKeys(): void {
    const ids = this.keyIds;
    const slots = this.keySlots;
    this.keyIds = new Int32Array(ids.length * 2);
    this.keySlots = new Int32Array(ids.length * 2);
    this.keyCount = 0;
    for (let c = 0; c < ids.length; c++) if (ids[c] !== 0) this.putKey(ids[c]! - 1, slots[c]!);
  }
}

const GAUGE_ABSENT = 0;
const GAUGE_ABSOLUTE = 1;
const GAUGE_DELTA = 2;

/** Gauges are clamped to the finite doubles, here and in the Lua scripts. */
const MAX_GAUGE = Number.MAX_VALUE;

export class Batch implements SampleSink {
  private readonly counterSlots = new Slots();
  private counterValues = new Float64Array(INITIAL_SLOTS);
  /** Samples per counter slot (what a shard's part of the batch holds, for late_samples). */
  private counterSamples = new Uint32Array(INITIAL_SLOTS);
  private readonly timerSlots = new Slots();
  private timerCountValues = new Float64Array(INITIAL_SLOTS);
  /** Every timer's samples, each timer's in one run [offset, offset + length) of capacity cap. */
  private sampleValues = new Float64Array(INITIAL_SLOTS * INITIAL_SAMPLES);
  private samplesUsed = 0;
  private timerOffsets = new Int32Array(INITIAL_SLOTS);
  private timerLengths = new Int32Array(INITIAL_SLOTS);
  /** 0 for a slot not yet given a run. */
  private timerCaps = new Int32Array(INITIAL_SLOTS);
  private readonly gaugeSlots = new Slots();
  private gaugeValues = new Float64Array(INITIAL_SLOTS);
  /** GAUGE_ABSENT, GAUGE_ABSOLUTE or GAUGE_DELTA per slot. */
  private gaugeKinds = new Uint8Array(INITIAL_SLOTS);
  private gaugeSamples = new Uint32Array(INITIAL_SLOTS);
  /** Set members per name (members are strings by nature), with the name's samples. */
  readonly sets = new Map<string, SetEntry>();
  /** Finished Graphite lines (`name value ts`, no newline) that bypass aggregation. */
  readonly passthroughLines: string[] = [];
  /** Samples folded in, for sizing decisions and self-metrics. */
  samples = 0;
  /** Distinct set members, summed over the set names. */
  private setMembers = 0;
  /** Gauge sums clamped to the finite doubles in this batch (values_clamped). */
  clamped = 0;

  // The fold methods keep their common path short and move growth into
  // separate methods, so the optimizer inlines them into the parser's emit
  // loop (a double passed to a call that is not inlined is boxed).

  counter(name: string, value: number, rate: number, key = -1): void {
    this.samples++;
    const i = this.counterSlots.slot(name, key);
    if (i >= this.counterValues.length) this.growCounterSlots(i + 1);
    this.counterSamples[i]!++;
    const values = this.counterValues;
    // statsd: counters[key] += Number(v) * (1 / sampleRate); a sum that overflowed stays at its first infinity (never NaN)
    const sum = values[i]! + value * (1 / rate);
    if (sum === sum) values[i] = sum;
  }

  gauge(name: string, value: number, delta: boolean, key = -1): void {
    this.samples++;
    const i = this.gaugeSlots.slot(name, key);
    if (i >= this.gaugeValues.length) this.growGaugeSlots(i + 1);
    this.gaugeSamples[i]!++;
    const kinds = this.gaugeKinds;
    const values = this.gaugeValues;
    if (kinds[i] === GAUGE_ABSENT) {
      kinds[i] = delta ? GAUGE_DELTA : GAUGE_ABSOLUTE;
      values[i] = value;
    } else if (delta) {
      const v = values[i]! + value;
      if (v > MAX_GAUGE || v < -MAX_GAUGE) this.clampGauge(i, v); // clamped to the finite doubles, counted
      else values[i] = v;
    } else {
      kinds[i] = GAUGE_ABSOLUTE;
      values[i] = value;
    }
  }

  timer(name: string, value: number, rate: number, key = -1): void {
    this.samples++;
    const i = this.timerSlots.slot(name, key);
    if (i >= this.timerCountValues.length) this.growTimerSlots(i + 1);
    const n = this.timerLengths[i]!;
    if (n === this.timerCaps[i]) this.growTimerRun(i, n);
    this.sampleValues[this.timerOffsets[i]! + n] = value;
    this.timerLengths[i] = n + 1;
    this.timerCountValues[i] = this.timerCountValues[i]! + 1 / rate;
  }

  set(name: string, member: string): void {
    this.samples++;
    const entry = this.sets.get(name);
    if (entry === undefined) {
      this.sets.set(name, { members: new Set<string>().add(member), samples: 1 });
      this.setMembers++;
    } else {
      entry.samples++;
      if (!entry.members.has(member)) {
        entry.members.add(member);
        this.setMembers++;
      }
    }
  }

  passthrough(line: string): void {
    this.samples++;
    this.passthroughLines.push(line);
  }

  get isEmpty(): boolean {
    return this.names + this.passthroughLines.length === 0;
  }

  /** Hash fields the merge writes: distinct names, set members, passthrough lines (what a merge costs Redis). */
  get size(): number {
    return this.counterSlots.size + this.timerSlots.size + this.gaugeSlots.size + this.setMembers + this.passthroughLines.length;
  }

  /** Distinct names in the batch. */
  get names(): number {
    return this.counterSlots.size + this.timerSlots.size + this.gaugeSlots.size + this.sets.size;
  }

  /** Counter names in first-seen order; counterValue(i) is the sum of names[i]. */
  get counterNames(): readonly string[] {
    return this.counterSlots.names;
  }

  counterValue(i: number): number {
    return this.counterValues[i] ?? 0;
  }

  /** Samples folded into counter i. */
  counterSampleCount(i: number): number {
    return this.counterSamples[i] ?? 0;
  }

  /** Timer names in first-seen order. */
  get timerNames(): readonly string[] {
    return this.timerSlots.names;
  }

  /**
   * The array holding every timer's samples: timer i's, in arrival order, are
   * [timerOffset(i), timerOffset(i) + timerLength(i)). Valid until the next sample.
   */
  get timerSampleArray(): Float64Array {
    return this.sampleValues;
  }

  timerOffset(i: number): number {
    return this.timerOffsets[i] ?? 0;
  }

  timerLength(i: number): number {
    return this.timerLengths[i] ?? 0;
  }

  /** Timer i's count: the sum of 1 / rate over its samples. */
  timerCount(i: number): number {
    return this.timerCountValues[i] ?? 0;
  }

  /** Gauge names in first-seen order. */
  get gaugeNames(): readonly string[] {
    return this.gaugeSlots.names;
  }

  /** Gauge i's value: absolute, or a delta to add to the stored gauge when gaugeIsDelta(i). */
  gaugeValue(i: number): number {
    return this.gaugeValues[i] ?? 0;
  }

  gaugeIsDelta(i: number): boolean {
    return this.gaugeKinds[i] === GAUGE_DELTA;
  }

  /** Samples folded into gauge i. */
  gaugeSampleCount(i: number): number {
    return this.gaugeSamples[i] ?? 0;
  }

  /** Timer i's run is full (or it has none yet): move it to a twice-as-large one at the end of the shared array. */
  private growTimerRun(i: number, n: number): void {
    const cap = Math.max(INITIAL_SAMPLES, n * 2);
    const at = this.samplesUsed;
    if (at + cap > this.sampleValues.length) this.sampleValues = grownF64(this.sampleValues, at + cap);
    this.samplesUsed = at + cap;
    const from = this.timerOffsets[i]!;
    if (n > 0) this.sampleValues.copyWithin(at, from, from + n);
    this.timerOffsets[i] = at;
    this.timerCaps[i] = cap;
  }

  private growTimerSlots(need: number): void {
    this.timerCountValues = grownF64(this.timerCountValues, need);
    const size = this.timerCountValues.length;
    this.timerOffsets = grownI32(this.timerOffsets, size);
    this.timerLengths = grownI32(this.timerLengths, size);
    this.timerCaps = grownI32(this.timerCaps, size);
  }

  private clampGauge(i: number, v: number): void {
    this.gaugeValues[i] = v > 0 ? MAX_GAUGE : -MAX_GAUGE;
    this.clamped++;
  }

  private growCounterSlots(need: number): void {
    this.counterValues = grownF64(this.counterValues, need);
    this.counterSamples = grownU32(this.counterSamples, this.counterValues.length);
  }

  private growGaugeSlots(need: number): void {
    this.gaugeValues = grownF64(this.gaugeValues, need);
    const kinds = new Uint8Array(this.gaugeValues.length);
    kinds.set(this.gaugeKinds);
    this.gaugeKinds = kinds;
    this.gaugeSamples = grownU32(this.gaugeSamples, this.gaugeValues.length);
  }
}
