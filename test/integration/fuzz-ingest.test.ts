/**
 * Fuzz lines through a real tallyd (a child process), a real Redis and a
 * Carbon listener: fuzzed statsd datagrams over UDP and a fuzzed stream over
 * TCP, with known-good lines interleaved. The good totals arrive exact,
 * tallyd's metrics_received, bad_lines_seen and events_ignored equal what the
 * same parser counts in process on the same bytes, the one oversized datagram
 * and the one overlong TCP line are counted, every line Carbon receives is
 * `name finite-value timestamp` (but statsd's counter Infinity), and tallyd
 * is still running. FUZZ_SEED=<n> replays a run.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { afterEach, test } from 'node:test';
import { StatsdLineParser } from '../../src/parse/statsd-line.js';
import type { SampleSink } from '../../src/parse/sample-sink.js';
import { CarbonListener, freePort, freeUdpPort } from '../helpers/carbon.js';
import { fuzzSeed, garbageLine, GOOD_PREFIX, GoodTotals, Rand, SANITIZED_KEY } from '../helpers/fuzz.js';
import { cleanup, testPrefix } from '../helpers/redis.js';
import { spawnTallyd, testConfig, waitForOutput, type ChildTallyd } from '../helpers/tallyd.js';

const SEED = fuzzSeed();
const FLUSH = 1000;
const MAX_PACKET = 8192;

/** Lines joined by '\n': garbage (each under 6,000 bytes) and good lines; ~size bytes. */
function fuzzLines(r: Rand, good: GoodTotals, size: number): Buffer {
  const parts: Buffer[] = [];
  let total = 0;
  while (total < size) {
    const g = r.chance(0.3) ? null : garbageLine(r);
    if (g !== null && g.length > 6000) continue;
    const line = g ?? Buffer.from(good.next(r));
    parts.push(line, Buffer.from('\n'));
    total += line.length + 1;
  }
  return Buffer.concat(parts);
}

const ignore: SampleSink = { counter: () => undefined, gauge: () => undefined, timer: () => undefined, set: () => undefined };

/** The bytes as they are (sendUdp's strings would be sent as UTF-8). */
async function sendDatagrams(port: number, datagrams: readonly Buffer[]): Promise<void> {
  const sock = dgram.createSocket('udp4');
  for (const d of datagrams) await new Promise<void>((res, rej) => sock.send(d, port, '127.0.0.1', (e) => (e ? rej(e) : res())));
  await new Promise<void>((res) => sock.close(() => res()));
}

function sendTcp(port: number, data: Buffer, r: Rand): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => {
      for (let p = 0; p < data.length; ) {
        const n = 1 + r.int(4096);
        sock.write(data.subarray(p, p + n));
        p += n;
      }
      sock.end();
    });
    sock.on('error', reject);
    sock.on('close', () => resolve());
  });
}

let child: ChildTallyd | null = null;
let carbon: CarbonListener | null = null;
let prefix = '';

afterEach(async () => {
  if (child !== null && child.proc.exitCode === null && child.proc.signalCode === null) {
    child.proc.kill('SIGKILL');
    await child.exited;
  }
  child = null;
  await carbon?.stop();
  await cleanup(prefix);
});

test(`fuzzed statsd over UDP and TCP into a real tallyd: good totals exact, bad input counted exactly, every Carbon line finite, seed ${SEED}`, async (t) => {
  t.diagnostic(`FUZZ_SEED=${SEED}`);
  const r = new Rand(SEED);
  prefix = testPrefix('fuzz-ingest');
  carbon = new CarbonListener();
  await carbon.start();
  const udp = await freeUdpPort();
  const tcp = await freePort();
  child = spawnTallyd(
    testConfig(prefix, carbon.port, {
      flushInterval: FLUSH,
      servers: [
        { server: 'udp', address: '127.0.0.1', port: udp, maxPacketSize: MAX_PACKET },
        { server: 'tcp', address: '127.0.0.1', port: tcp, maxPacketSize: MAX_PACKET },
      ],
      log: { level: 'info' },
    }),
  );
  await waitForOutput(child, 'tallyd is up');

  // The same parser, in process, on the same bytes: what tallyd must count.
  const reference = new StatsdLineParser({ keyNameSanitize: true });
  const goodUdp = new GoodTotals(`${GOOD_PREFIX}udp`, true);
  const datagrams: Buffer[] = [];
  for (let i = 0; i < 150; i++) {
    const d = fuzzLines(r, goodUdp, r.int(1400));
    reference.parsePacket(d, 0, d.length, ignore);
    datagrams.push(d);
  }
  datagrams.push(Buffer.alloc(MAX_PACKET + 1, 0x78)); // oversized: counted, not parsed
  const goodTcp = new GoodTotals(`${GOOD_PREFIX}tcp`, true);
  const stream = fuzzLines(r, goodTcp, 150_000);
  reference.parsePacket(stream, 0, stream.length, ignore);
  const overlong = Buffer.concat([Buffer.alloc(MAX_PACKET * 2, 0x79), Buffer.from('\n')]); // overlong line: counted, not parsed

  await sendDatagrams(udp, datagrams);
  const cut = stream.indexOf(0x0a, stream.length >> 1) + 1; // between two lines
  await sendTcp(tcp, Buffer.concat([stream.subarray(0, cut), overlong, stream.subarray(cut)]), r);

  const c = carbon;
  const sum = (name: string): number => c.sum(name);
  const want: Array<[string, number]> = [
    ['stats_counts.statsd.metrics_received', reference.metricsReceived],
    ['stats_counts.statsd.bad_lines_seen', reference.badLines],
    ['stats_counts.statsd.events_ignored', reference.eventsIgnored],
    ['stats_counts.statsd.oversized_packets', 2],
  ];
  for (const good of [goodUdp, goodTcp]) {
    for (const [name, v] of good.counters) want.push([`stats_counts.${name}`, v]);
    for (const [name, tm] of good.timers) want.push([`stats.timers.${name}.count`, tm.count], [`stats.timers.${name}.sum`, tm.values.reduce((a, b) => a + b, 0)]);
    for (const [name, m] of good.sets) want.push([`stats.sets.${name}.count`, m.size]);
  }
  const missing = (): string[] => want.filter(([name, v]) => sum(name) !== v).map(([name, v]) => `${name}: ${sum(name)} of ${v}`);
  await c.waitFor(() => missing().length === 0, 20_000, 'the totals').catch((err: Error) => {
    throw new Error(`${err.message}; off: ${missing().slice(0, 8).join(', ')}; udp_kernel_drops ${sum('stats_counts.statsd.udp_kernel_drops')}`);
  });
  // One more period published after that: nothing more arrives for any of them.
  const lastTs = Math.max(...c.lines.map((l) => l.ts));
  await c.waitFor(() => c.series('stats_counts.statsd.metrics_received').some((l) => l.ts > lastTs), 5000, 'a later period');
  assert.deepEqual(missing(), [], `seed ${SEED}: exact after a further period`);

  for (const good of [goodUdp, goodTcp]) {
    for (const [name, tm] of good.timers) {
      const series = (stat: string) => c.series(`stats.timers.${name}.${stat}`).map((l) => Number(l.value));
      assert.equal(Math.max(...series('upper')), Math.max(...tm.values), `${name}.upper`);
      assert.equal(Math.min(...series('lower')), Math.min(...tm.values), `${name}.lower`);
    }
    for (const [name, v] of good.gauges) {
      const s = c.series(`stats.gauges.${name}`);
      assert.equal(s[s.length - 1]?.value, String(v), `${name}: the last value`);
    }
  }

  assert.deepEqual(c.malformed, [], 'every Carbon line is `name value ts`');
  for (const l of c.lines) {
    assert.ok(SANITIZED_KEY.test(l.name) && Number.isInteger(l.ts) && l.ts % (FLUSH / 1000) === 0, `${l.name} ${l.value} ${l.ts}`);
    if (Number.isFinite(Number(l.value))) continue;
    // statsd's own exception: an overflowed counter sum prints Infinity, on both its rate and count lines.
    const m = /^stats(?:_counts)?\.(.+)$/.exec(l.name);
    assert.ok(m && /^-?Infinity$/.test(l.value), `not finite: ${l.name} ${l.value} ${l.ts}`);
    for (const pair of [`stats.${m[1]}`, `stats_counts.${m[1]}`]) {
      assert.ok(c.series(pair).some((p) => p.ts === l.ts && p.value === l.value), `${pair} is ${l.value} too at ${l.ts}`);
    }
  }
  assert.equal(child.proc.exitCode, null, 'tallyd is still running');
  assert.ok(!/uncaught|TypeError|RangeError/i.test(child.output()), child.output().slice(-2000));
  assert.match(child.output(), /"msg":"bad line: [a-z ]+"/, 'bad lines are logged (rate-limited, with the line)');
  // The oversized datagram and the overlong TCP line are logged with their first 200 bytes.
  assert.ok(child.output().includes(`"head":"${'x'.repeat(200)}"`), 'the oversized datagram quoted');
  assert.ok(child.output().includes(`"head":"${'y'.repeat(200)}"`), 'the overlong tcp line quoted');
  t.diagnostic(
    `${datagrams.length} datagrams, ${stream.length} TCP bytes: ${reference.metricsReceived} lines, ${reference.badLines} bad values, ` +
      `${reference.eventsIgnored} events, ${c.lines.length} Carbon lines checked`,
  );
  child.proc.kill('SIGTERM');
  assert.equal(await child.exited, 0, child.output().slice(-2000));
});
