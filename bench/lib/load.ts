/**
 * The bench's workload: modes (type mix x metrics per datagram, or items per
 * ZeroMQ message), a deterministic corpus of datagrams for bench/lib/loadgen.c
 * (or of messages for bench/lib/zmq-loadgen.ts), and the exact
 * totals of any prefix of the looped corpus, so what reached Carbon can be
 * checked name by name: counter sums, timer counts, set sizes (every set
 * member is distinct: loadgen stamps its loop number into it), gauge last
 * values.
 */
import { writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';

export const TYPES = ['c', 'ms', 'g', 's'] as const;
export type MetricType = (typeof TYPES)[number];
export type Mix = Readonly<Record<MetricType, number>>;

/** Where the load goes in: statsd datagrams (bench/lib/loadgen.c), or ZeroMQ messages to a PULL or SUB socket (bench/lib/zmq-loadgen.ts). */
export type Transport = 'udp' | 'zmq-push' | 'zmq-pub';

/** The ZeroMQ modes: counters in `<items>`-item messages, zlib-compressed JSON; statsd has no ZeroMQ input, so tallyd only. */
export const ZMQ_MODES = ['zmq-push-100', 'zmq-pub-100'];

/** A fixed `time` member for every item (aggregate mode checks it but aggregates per flush period). */
const ITEM_TIME = 1_764_000_000;

export interface Mode {
  /** e.g. counters-1, mixed-32, zmq-push-100 */
  readonly name: string;
  readonly transport: Transport;
  readonly mix: Mix;
  /** Metrics per datagram, or items per ZeroMQ message. */
  readonly perDatagram: number;
}

const MIXES: Readonly<Record<string, Mix>> = {
  counters: { c: 1, ms: 0, g: 0, s: 0 },
  timers: { c: 0, ms: 1, g: 0, s: 0 },
  gauges: { c: 0, ms: 0, g: 1, s: 0 },
  sets: { c: 0, ms: 0, g: 0, s: 1 },
  mixed: { c: 70, ms: 20, g: 5, s: 5 },
};

export const UDP_MODES = ['counters-1', 'counters-32', 'mixed-1', 'mixed-32'];
export const DEFAULT_MODES = [...UDP_MODES, ...ZMQ_MODES];

/**
 * `<counters|timers|gauges|sets|mixed>-<metrics per datagram>`; `mixed` takes `mixOverride` (`c=70,ms=20,g=5,s=5`).
 * `zmq-<push|pub>-<items per message>`: counters, so every item adds up in Carbon.
 */
export function parseMode(spec: string, mixOverride?: string): Mode {
  const z = /^zmq-(push|pub)-(\d+)$/.exec(spec);
  if (z) {
    const items = Number(z[2]);
    if (!(items >= 1 && items <= 10_000)) throw new Error(`bad mode ${spec}: want zmq-<push|pub>-<1..10000 items per message>`);
    return { name: spec, transport: z[1] === 'push' ? 'zmq-push' : 'zmq-pub', mix: MIXES.counters as Mix, perDatagram: items };
  }
  const m = /^(counters|timers|gauges|sets|mixed)-(\d+)$/.exec(spec);
  const kind = m?.[1];
  const per = Number(m?.[2]);
  if (!kind || !(per >= 1 && per <= 1000)) {
    throw new Error(`bad mode ${spec}: want <counters|timers|gauges|sets|mixed>-<1..1000> or zmq-<push|pub>-<items>, e.g. mixed-32`);
  }
  const mix = kind === 'mixed' && mixOverride ? parseMix(mixOverride) : MIXES[kind];
  if (!mix) throw new Error(`bad mode ${spec}`);
  return { name: spec, transport: 'udp', mix, perDatagram: per };
}

export function parseMix(text: string): Mix {
  const mix: Record<MetricType, number> = { c: 0, ms: 0, g: 0, s: 0 };
  for (const part of text.split(',')) {
    const [k, v] = part.split('=');
    if (!k || !(TYPES as readonly string[]).includes(k) || !(Number(v) >= 0)) throw new Error(`bad --mix part ${part}: want c=70,ms=20,g=5,s=5`);
    mix[k as MetricType] = Number(v);
  }
  if (TYPES.every((t) => mix[t] === 0)) throw new Error('--mix: all weights are 0');
  return mix;
}

/** Metric names; the Carbon names are statsd's legacy namespace. */
export function metricName(type: MetricType, i: number): string {
  return `bench.${type === 'ms' ? 't' : type}.${i}`;
}

/** Per name, by type: counter sums, timer counts, set sizes, gauge last value (NaN: never sent). */
export interface Totals {
  readonly c: Float64Array;
  readonly ms: Float64Array;
  readonly s: Float64Array;
  readonly g: Float64Array;
}

export function emptyTotals(names: number): Totals {
  return { c: new Float64Array(names), ms: new Float64Array(names), s: new Float64Array(names), g: new Float64Array(names).fill(NaN) };
}

const TYPE_CODE: Readonly<Record<MetricType, number>> = { c: 0, ms: 1, g: 2, s: 3 };

export class Corpus {
  readonly lines: number;
  readonly datagrams: number;
  readonly bytes: number;
  private readonly type: Uint8Array;
  private readonly name: Uint32Array;
  private readonly value: Float64Array;
  private readonly loop: Totals;

  /** `lines` is rounded up to whole datagrams. */
  constructor(
    readonly mode: Mode,
    readonly names: number,
    file: string,
    lines = Math.max(32_768, names * 16),
  ) {
    const per = mode.perDatagram;
    this.datagrams = Math.ceil(lines / per);
    this.lines = this.datagrams * per;
    this.type = new Uint8Array(this.lines);
    this.name = new Uint32Array(this.lines);
    this.value = new Float64Array(this.lines);
    const rand = xorshift(0x7a11d);
    const weights = TYPES.map((t) => mode.mix[t]);
    const total = weights.reduce((a, b) => a + b, 0);
    const zmq = mode.transport !== 'udp';
    const parts: Buffer[] = [];
    let text = '';
    let items: Array<{ name: string; value: number; time: number; type: string }> = [];
    for (let j = 0; j < this.lines; j++) {
      let pick = (rand() / 0x100000000) * total;
      let code = 0;
      while (code < 3 && pick >= (weights[code] ?? 0)) pick -= weights[code++] ?? 0;
      while ((weights[code] ?? 0) === 0) code = (code + 1) % 4; // float edge: never a zero-weight type
      const idx = rand() % names;
      const type = TYPES[code] as MetricType;
      const value = type === 'c' ? 1 + (rand() % 3) : type === 'ms' ? rand() % 1000 : type === 'g' ? rand() % 100_000 : 1;
      this.type[j] = code;
      this.name[j] = idx;
      this.value[j] = value;
      if (zmq) {
        // One message: a 4-byte length, then the deflated JSON array, as a publisher sends it.
        items.push({ name: metricName(type, idx), value, time: ITEM_TIME, type });
        if ((j + 1) % per === 0) {
          const body = deflateSync(Buffer.from(JSON.stringify(items), 'utf8'));
          const len = Buffer.alloc(4);
          len.writeUInt32LE(body.length);
          parts.push(len, body);
          items = [];
        }
        continue;
      }
      const val = type === 's' ? `u#######-${j}` : String(value);
      text += `${j % per !== 0 ? '\n' : ''}${metricName(type, idx)}:${val}|${type}`;
      if ((j + 1) % per === 0) {
        parts.push(Buffer.from(text + '\0', 'utf8'));
        text = '';
      }
    }
    const buf = Buffer.concat(parts);
    this.bytes = buf.length;
    writeFileSync(file, buf);
    this.loop = emptyTotals(names);
    this.addLines(this.loop, 0, this.lines);
  }

  /** Exact totals of the first `sent` datagrams of the looped corpus. */
  expected(sent: number): Totals {
    const loops = Math.floor(sent / this.datagrams);
    const rest = (sent % this.datagrams) * this.mode.perDatagram;
    const t = emptyTotals(this.names);
    for (let i = 0; i < this.names; i++) {
      t.c[i] = (this.loop.c[i] ?? 0) * loops;
      t.ms[i] = (this.loop.ms[i] ?? 0) * loops;
      t.s[i] = (this.loop.s[i] ?? 0) * loops;
      if (loops > 0) t.g[i] = this.loop.g[i] ?? NaN;
    }
    this.addLines(t, 0, rest);
    return t;
  }

  private addLines(t: Totals, from: number, to: number): void {
    for (let j = from; j < to; j++) {
      const i = this.name[j] ?? 0;
      const v = this.value[j] ?? 0;
      switch (this.type[j]) {
        case TYPE_CODE.c:
          t.c[i] = (t.c[i] ?? 0) + v;
          break;
        case TYPE_CODE.ms:
          t.ms[i] = (t.ms[i] ?? 0) + 1;
          break;
        case TYPE_CODE.g:
          t.g[i] = v;
          break;
        default:
          t.s[i] = (t.s[i] ?? 0) + 1;
      }
    }
  }
}

/** xorshift32: the same corpus on every machine and run. */
export function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}
