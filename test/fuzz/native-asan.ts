/**
 * The native addon's fuzz pass, run by scripts/fuzz-native-asan.sh against
 * an AddressSanitizer + UBSan build (TALLYD_NATIVE_ADDON points addon.ts at
 * it): every entry point that takes untrusted bytes gets random, mutated,
 * truncated and oversized input, and its answers are checked. Sections:
 * - UDP reader: datagrams of random bytes, mutated and truncated statsd
 *   packets, empty ones, ones longer than the slot (up to 65,507 bytes) over
 *   loopback into a reader; every datagram arrives in order with its real
 *   length and its bytes, and the good lines' totals are exact. Then the
 *   error paths: open() failing at each late step (TALLYD_NATIVE_FAULT), a
 *   real socket error (ICMP port unreachable) cleared and read past, one the
 *   reader cannot recover from, readers dropped without close() (closed by
 *   their finalizers), and bad arguments.
 * - zmqInflate (native-asan-inflate.ts).
 * - zmqScan (native-asan-scan.ts, one separate section).
 * Exits non-zero on a failed check; ASan and UBSan end the process themselves
 * on a report (the script also looks for one in the output).
 *
 *   FUZZ_SEED=<n> FUZZ_ROUNDS=<n> (defaults 1 and 40)
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { nativeAddon, UdpEvent, type TallydAddon } from '../../src/native/addon.js';
import type { SampleSink } from '../../src/parse/sample-sink.js';
import { StatsdLineParser } from '../../src/parse/statsd-line.js';
import { waitUntil } from '../helpers/steady-traffic.js';
import { provokeSocketError, udpFdCount, udpSocketFd } from '../helpers/udp-socket-error.js';
import { fuzzInflate } from './native-asan-inflate.js';
import { fuzzScan } from './native-asan-scan.js';
import { Gen, truncations } from './mutate.js';

const SLOT = 512;
const SLOTS = 64;

async function until(what: string, pred: () => boolean, timeoutMs = 10_000): Promise<void> {
  assert.ok(await waitUntil(pred, timeoutMs), `timed out waiting for ${what}`);
}

/** A reader on 127.0.0.1 (or ::1):<ephemeral>; it checks each datagram against `expected`, in order, and parses those that fit. */
class Reader {
  readonly buf = Buffer.allocUnsafeSlow(SLOT * SLOTS);
  readonly lengths = new Int32Array(SLOTS);
  readonly expected: Buffer[] = [];
  readonly events: Array<{ n: number; kind: number }> = [];
  readonly parser = new StatsdLineParser({ keyNameSanitize: true });
  received = 0;
  good = 0;
  readonly handle: unknown;
  readonly port: number;
  private readonly sink: SampleSink = {
    counter: (name, value, rate) => {
      if (name === 'fuzz.good') this.good += value / rate;
    },
    gauge: () => undefined,
    timer: () => undefined,
    set: () => undefined,
  };

  constructor(
    private readonly lib: TallydAddon,
    readonly family: 4 | 6 = 4,
  ) {
    const s = lib.open(family, family === 6 ? '::1' : '127.0.0.1', 0, 1 << 22, false, this.buf, SLOT, this.lengths, (n, kind) => this.onBatch(n, kind));
    this.handle = s.handle;
    this.port = s.port;
    lib.start(s.handle, 1);
  }

  private onBatch(n: number, kind: number): void {
    if (kind !== UdpEvent.Read || n < 0) {
      this.events.push({ n, kind });
      return;
    }
    for (let i = 0; i < n; i++) {
      const want = this.expected[this.received];
      assert.ok(want !== undefined, `datagram #${this.received} was never sent`);
      const len = this.lengths[i]!;
      assert.equal(len, want.length, `datagram #${this.received}: length`);
      const off = i * SLOT;
      const have = Math.min(len, SLOT);
      assert.ok(this.buf.subarray(off, off + have).equals(want.subarray(0, have)), `datagram #${this.received}: bytes`);
      if (len <= SLOT) this.parser.parsePacket(this.buf, off, off + len, this.sink);
      this.received++;
    }
  }

  close(): void {
    this.lib.close(this.handle);
  }
}

/** Sends each datagram, awaiting its callback; in chunks that the reader must read before the next (no kernel drops). */
async function send(r: Reader, datagrams: readonly Buffer[]): Promise<void> {
  const s = dgram.createSocket(r.family === 6 ? 'udp6' : 'udp4');
  const to = r.family === 6 ? '::1' : '127.0.0.1';
  for (let i = 0; i < datagrams.length; i += 200) {
    const chunk = datagrams.slice(i, i + 200);
    for (const d of chunk) {
      r.expected.push(d);
      await new Promise<void>((resolve, reject) => s.send(d, r.port, to, (err) => (err ? reject(err) : resolve())));
    }
    await until(`${r.expected.length} datagrams read`, () => r.received === r.expected.length);
  }
  await new Promise<void>((resolve) => s.close(() => resolve()));
}

function datagrams(g: Gen, rounds: number): { list: Buffer[]; good: number } {
  const list: Buffer[] = [];
  let good = 0;
  const goodPacket = Buffer.from('fuzz.good:1|c\nfuzz.good:2|c|@0.5\nmut.ms:3|ms\nmut.s:u1|s');
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < 40; i++) {
      switch (g.int(6)) {
        case 0:
          list.push(Buffer.from('fuzz.good:1|c'));
          good += 1;
          break;
        case 1:
          list.push(Buffer.from(goodPacket));
          good += 5; // 1 + 2 / 0.5
          break;
        case 2:
          list.push(g.bytes(g.int(SLOT + 200)));
          break;
        case 3:
          list.push(g.mutate(Buffer.from(`mut.c:${g.int(1000)}|c\nmut.g:-${g.int(9)}|g\nmut.ms:1.5|ms|@0.1|#a:b,c`)));
          break;
        case 4:
          list.push(Buffer.alloc(0));
          break;
        default:
          list.push(g.bytes(SLOT + 1 + g.int(g.int(10) === 0 ? 65_507 - SLOT : 4000)));
      }
    }
  }
  list.push(g.bytes(65_507), g.bytes(SLOT), g.bytes(SLOT + 1));
  for (const t of truncations(Buffer.from('trunc.c:1|c\ntrunc.ms:2.5|ms|@0.5\ntrunc.s:x|s'))) list.push(t);
  return { list, good };
}

/** 20 readers opened, half of them started, none kept: their ports. (Not in an async function, whose suspended frame may keep the last one.) */
function openAndDrop(lib: TallydAddon, buf: Buffer, lengths: Int32Array): number[] {
  const ports: number[] = [];
  for (let i = 0; i < 20; i++) {
    const dropped = lib.open(4, '127.0.0.1', 0, 0, false, buf, SLOT, lengths, () => undefined);
    if (i % 2 === 0) lib.start(dropped.handle, i % 4);
    if (i % 3 === 0) ports.push(dropped.port);
  }
  return ports;
}

async function fuzzUdp(lib: TallydAddon, g: Gen, rounds: number): Promise<number> {
  // Datagrams, in order, byte for byte, and the good lines' totals.
  const r = new Reader(lib);
  const { list, good } = datagrams(g, rounds);
  await send(r, list);
  assert.equal(r.good, good, 'fuzz.good total');
  assert.equal(r.events.length, 0, 'no socket error');
  // The same over IPv6 (::1, a dual-stack socket), a tenth as many.
  const r6 = new Reader(lib, 6);
  const six = datagrams(g, Math.max(1, Math.floor(rounds / 10)));
  await send(r6, six.list);
  assert.equal(r6.good, six.good, 'fuzz.good total over IPv6');
  r6.close();
  // A real socket error (ECONNREFUSED from an ICMP port unreachable), then more datagrams.
  for (const keepErrQueue of [false, true]) {
    await provokeSocketError(udpSocketFd(r.port), keepErrQueue);
    await until('the socket error', () => r.events.length > 0);
    assert.equal(r.events.shift()?.kind, UdpEvent.PollError);
    await send(r, [Buffer.from('fuzz.good:1|c'), g.bytes(SLOT * 2)]);
  }
  // Close with datagrams queued: close() reads them first.
  const s = dgram.createSocket('udp4');
  const queued = Array.from({ length: 100 }, () => g.bytes(g.int(SLOT * 2)));
  for (const d of queued) {
    r.expected.push(d);
    await new Promise<void>((resolve, reject) => s.send(d, r.port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
  }
  r.close();
  r.close();
  assert.equal(r.received, r.expected.length, 'close() read what was queued');
  await new Promise<void>((resolve) => s.close(() => resolve()));

  // A socket error the reader cannot recover from (the poll refuses to start again): kind Stopped, then a clean close.
  process.env.TALLYD_NATIVE_FAULT = 'poll-restart';
  const stuck = new Reader(lib);
  delete process.env.TALLYD_NATIVE_FAULT;
  await provokeSocketError(udpSocketFd(stuck.port), false);
  await until('the reader stopped', () => stuck.events.length > 0);
  assert.equal(stuck.events[0]?.kind, UdpEvent.Stopped);
  stuck.close();

  // open() failing after each late step: everything it took is released (the handle's finalizer runs on gc).
  const buf = Buffer.allocUnsafeSlow(SLOT * 4);
  const lengths = new Int32Array(4);
  for (const fault of ['open-after-poll-init', 'open-after-timer-init', 'open-after-refs', 'open-after-external']) {
    process.env.TALLYD_NATIVE_FAULT = fault;
    for (let i = 0; i < 20; i++) assert.throws(() => lib.open(4, '127.0.0.1', 0, 0, false, buf, SLOT, lengths, () => undefined), { code: 'EINTERNAL' });
  }
  delete process.env.TALLYD_NATIVE_FAULT;
  await new Promise((resolve) => setImmediate(resolve));
  (globalThis as { gc?: () => void }).gc?.();

  // Readers dropped without close(): the handle's finalizer closes them (on a gc), some with datagrams queued. Their
  // callbacks do not hold the handle: one that does (as UdpServer's does) keeps its reader alive, like a bound
  // node:dgram socket, until close().
  await until('the closed readers\' sockets closed', () => udpFdCount() === 0);
  const q = dgram.createSocket('udp4');
  for (const port of openAndDrop(lib, buf, lengths)) {
    await new Promise<void>((resolve, reject) => q.send(g.bytes(g.int(SLOT * 2)), port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
  }
  await new Promise<void>((resolve) => q.close(() => resolve()));
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    await until('the dropped readers closed by their finalizers', () => {
      gc();
      return udpFdCount() === 0;
    });
  }

  // Bad arguments: a TypeError, never a crash.
  const bad = lib as unknown as { open(...args: unknown[]): unknown; start(...args: unknown[]): unknown; close(...args: unknown[]): unknown };
  const ok = [4, '127.0.0.1', 0, 0, false, buf, SLOT, lengths, () => undefined];
  for (const args of [[], ok.slice(0, 8), ok.map((v, i) => (i === 6 ? 0 : v)), ok.map((v, i) => (i === 6 ? SLOT * 5 : v)), ok.map((v, i) => (i === 7 ? new Float64Array(4) : v)),
    ok.map((v, i) => (i === 2 ? 70_000 : v)), ok.map((v, i) => (i === 8 ? 'cb' : v)), ok.map((v, i) => (i === 7 ? new Int32Array(0) : v))]) {
    assert.throws(() => bad.open(...args), TypeError);
  }
  assert.throws(() => bad.open(...ok.map((v, i) => (i === 1 ? 'not an address' : v))), { code: 'EINVAL' });
  assert.throws(() => bad.open(...ok.map((v, i) => (i === 1 ? `${'1'.repeat(100)}` : v))), { code: 'EINVAL' });
  for (const h of [undefined, {}, 1, 'x']) {
    assert.throws(() => bad.start(h), TypeError);
    assert.throws(() => bad.close(h), TypeError);
  }
  lib.start(r.handle, 1); // a closed reader: nothing happens
  return r.received + r6.received + stuck.received;
}

async function main(): Promise<void> {
  const lib = nativeAddon();
  if (typeof lib === 'string') throw new Error(`the native addon did not load: ${lib}`);
  const seed = Number(process.env.FUZZ_SEED ?? 1);
  const rounds = Number(process.env.FUZZ_ROUNDS ?? 40);
  const say = (msg: string) => process.stdout.write(`fuzz-native: ${msg}\n`);
  say(`addon ${process.env.TALLYD_NATIVE_ADDON ?? '(default build)'}, seed ${seed}, ${rounds} rounds`);
  let t = Date.now();
  say(`udp reader: ${await fuzzUdp(lib, new Gen(seed), rounds)} datagrams read and checked (${Date.now() - t} ms)`);
  t = Date.now();
  say(`zmqInflate: ${fuzzInflate(lib, new Gen(seed + 1), rounds)} calls checked (${Date.now() - t} ms)`);
  t = Date.now();
  say(`zmqScan: ${fuzzScan(lib, new Gen(seed + 2), rounds)} calls checked (${Date.now() - t} ms)`);
  // Collect the readers' handle objects, so LeakSanitizer at exit sees only what a finalizer failed to free (node
  // does not run the finalizers of objects still alive at exit).
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3 && gc; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    gc();
  }
  say('ok');
}

main().catch((err: unknown) => {
  process.stderr.write(`fuzz-native: FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
