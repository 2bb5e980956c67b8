/**
 * The fast path for the usual ZeroMQ status message in aggregate mode: a
 * JSON array (or one object) of plain items such as
 * `{"name": "api.rss", "value": 123, "time": 1796000000, "type": "c"}`,
 * read straight from the inflated bytes into the sink, without JSON.parse,
 * an object per item or a string per name: names go through an intern table
 * (key-intern.ts) like statsd lines' keys.
 *
 * The scan runs in C (native/zmq_scan.c; its header has the grammar), so
 * this reader exists only when tallyd's native addon was built
 * (createFastReader() answers undefined otherwise) and every message then
 * takes the general path (zmq-message.ts + zmq-item.ts), with the same
 * results. There used to be a JavaScript copy of the scanner as well; one
 * grammar fewer to keep in step was worth more than what it saved without
 * the addon (bench/README.md, "One ZeroMQ fast path").
 *
 * It takes only what it can read exactly as the general path would, and
 * answers NOT_FAST for anything else: escapes or non-ASCII bytes in a
 * string, `tags`, a set (`type: "s"`), a nested value, a duplicated member,
 * any item the general path would reject or any JSON it would not parse. The
 * caller then takes the general path for the whole message, so results,
 * bad-item reasons and counters are the same either way. A message is read
 * completely before any of it is emitted. The C scanner also looks known
 * names up in this reader's intern table; new names are sanitized and
 * interned here.
 */
import type { SampleSink } from './sample-sink.js';
import { KeyBuilder } from './sanitize.js';
import { finishHash, INTERN_MAX_PROBE, KeyInternTable, type InternOptions } from './key-intern.js';
import { nativeAddon, type TallydAddon } from '../native/addon.js';

export interface FastReaderOptions {
  readonly keyNameSanitize: boolean;
  /** Longest accepted name in bytes, prefix not included (as the general path counts). */
  readonly maxNameLength: number;
  /** The socket's prefix, prepended to every name. */
  readonly prefix: string;
  readonly intern?: InternOptions;
}

const SPACE = 0x20;

const T_COUNTER = 1;
const T_GAUGE = 2;

/** The fast path gave up: the general path reads the message. */
export const NOT_FAST = -1;

/** A fast reader, or undefined when the native addon (its scanner) is not there: the general path reads everything. */
export function createFastReader(opts: FastReaderOptions): ZmqFastReader | undefined {
  const addon = nativeAddon();
  return typeof addon === 'string' ? undefined : new ZmqFastReader(opts, addon);
}

export class ZmqFastReader {
  /** Items read by the last read() that returned >= 0. */
  count = 0;
  readonly intern: KeyInternTable;
  private readonly key: KeyBuilder;
  private readonly seed: number;
  private readonly sanitize: boolean;
  private readonly prefix: string;
  private types = new Uint8Array(64);
  private values = new Float64Array(64);
  private rates = new Float64Array(64);
  private names: string[] = [];
  private keys = new Int32Array(64);
  /** Filled by the native scanner: each item's name bytes and their hash. */
  private nameOff = new Int32Array(64);
  private nameLen = new Int32Array(64);
  private nameHash = new Int32Array(64);
  /** Filled by the native scanner with the intern table's entry of each name, or -1. */
  private entries = new Int32Array(64);
  private readonly native: TallydAddon;
  // The name of the item being read, set by resolveName.
  private itemName = '';
  private itemKey = -1;

  /** See createFastReader(), which finds the addon. */
  constructor(opts: FastReaderOptions, addon: TallydAddon) {
    this.sanitize = opts.keyNameSanitize;
    this.prefix = opts.prefix;
    this.key = new KeyBuilder(opts.keyNameSanitize, Math.max(1, Math.floor(opts.maxNameLength)));
    this.intern = new KeyInternTable(opts.intern);
    this.seed = this.intern.seed;
    this.native = addon;
  }

  /**
   * Reads buf[start, end) (inflated text whose first significant byte is
   * '[' or '{'); returns the number of items held for emit(), or NOT_FAST.
   * The C scanner fills types, values, rates and the names' places, and looks
   * the names up in the intern table (entries); names it did not find (new
   * ones) are resolved here.
   */
  read(buf: Buffer, start: number, end: number): number {
    this.count = 0;
    const addon = this.native;
    const intern = this.intern;
    const t = intern.lookupTables();
    let n: number;
    for (;;) {
      n = t === null
        ? addon.zmqScan(buf, start, end, this.seed >>> 0, this.types, this.values, this.rates, this.nameOff, this.nameLen, this.nameHash)
        : addon.zmqScan(
          buf, start, end, this.seed >>> 0, this.types, this.values, this.rates, this.nameOff, this.nameLen, this.nameHash,
          this.entries, t.slots, t.slotHash, t.entryOff, t.entryNameLen, t.entryTagLen, t.arena, INTERN_MAX_PROBE,
        );
      if (n !== -2) break;
      this.grow();
    }
    if (n < 0) return NOT_FAST;
    for (let i = 0; i < n; i++) if (!(1 / this.rates[i]! < Infinity)) return NOT_FAST; // the general path rejects it
    const names = this.names;
    const keys = this.keys;
    const entries = this.entries;
    // Entries stay good until the first new name: adding it may clear the table (a new generation).
    let found = t !== null;
    let hits = 0;
    for (let i = 0; i < n; i++) {
      const e = found ? entries[i]! : -1;
      if (e >= 0) {
        names[i] = intern.nameOf(e);
        keys[i] = intern.keyBase + e;
        hits++;
        continue;
      }
      found = false;
      const s = this.nameOff[i]!;
      if (!this.resolveName(buf, s, s + this.nameLen[i]!, this.nameHash[i]!)) {
        intern.countHits(hits);
        return NOT_FAST;
      }
      names[i] = this.itemName;
      keys[i] = this.itemKey;
    }
    intern.countHits(hits);
    this.count = n;
    return n;
  }

  /** Hands the items of the last successful read() to the sink, in order. */
  emit(sink: SampleSink): void {
    const n = this.count;
    for (let i = 0; i < n; i++) {
      const type = this.types[i];
      const name = this.names[i]!;
      const key = this.keys[i]!;
      if (type === T_COUNTER) sink.counter(name, this.values[i]!, this.rates[i]!, key);
      else if (type === T_GAUGE) sink.gauge(name, this.values[i]!, false, key);
      else sink.timer(name, this.values[i]!, this.rates[i]!, key);
    }
    this.count = 0;
  }

  private grow(): void {
    const n = this.types.length * 2;
    const t = new Uint8Array(n);
    t.set(this.types);
    this.types = t;
    const v = new Float64Array(n);
    v.set(this.values);
    this.values = v;
    const r = new Float64Array(n);
    r.set(this.rates);
    this.rates = r;
    const widen = (a: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> => {
      const b = new Int32Array(n);
      b.set(a);
      return b;
    };
    this.keys = widen(this.keys);
    this.nameOff = widen(this.nameOff);
    this.nameLen = widen(this.nameLen);
    this.nameHash = widen(this.nameHash);
    this.entries = widen(this.entries);
  }

  /**
   * The item's final key (prefix + sanitized name) for name bytes buf[s, e)
   * (nameHash: their FNV-1a hash from the seed), from the intern table or built once; false when the general path would
   * reject the name (empty after sanitizing, too long, unsafe unsanitized).
   */
  private resolveName(buf: Buffer, s: number, e: number, nameHash: number): boolean {
    const hash = finishHash(nameHash, this.seed);
    const intern = this.intern;
    const entry = intern.find(buf, s, e, 0, 0, hash);
    if (entry >= 0) {
      this.itemName = intern.nameOf(entry);
      this.itemKey = intern.keyBase + entry;
      return true;
    }
    if (!this.sanitize) {
      for (let i = s; i < e; i++) if (buf[i] === SPACE) return false;
    }
    const key = this.key;
    key.reset();
    key.appendName(buf, s, e);
    if (key.length === 0 || key.overflow) return false;
    const name = this.prefix + key.toString();
    const added = intern.add(buf, s, e, 0, 0, hash, name);
    this.itemName = name;
    this.itemKey = added >= 0 ? intern.keyBase + added : -1;
    return true;
  }
}

