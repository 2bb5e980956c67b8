/**
 * The ingest side of sharding against real Redis (DESIGN "Shards"): a
 * Batcher over `Store.open({ shards: 16 })` splits each sealed batch by
 * shard and merges one part per shard. Every name (tags included), set
 * member, timer sample and passthrough line lands in its own shard's keys and
 * nowhere else, exactly once per period, also when a part's reply is lost or
 * one shard's Redis hangs while the others merge; a shard the batch has
 * nothing for still sees the process's watermark advance, so its leader can
 * close the period; a part late on one shard only moves (and counts) that
 * part's samples.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Batcher, type MergeTarget, type ShardedTarget } from '../../src/aggregate/batcher.js';
import { createLogger } from '../../src/observability/logger.js';
import { SelfStats } from '../../src/observability/self-stats.js';
import { StatsdLineParser } from '../../src/parse/statsd-line.js';
import { Store } from '../../src/store/store.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { outboxText } from '../helpers/outbox.js';
import { cleanup, REDIS_URL, testPrefix } from '../helpers/redis.js';
import { RedisServer } from '../helpers/redis-server.js';
import { foldParts } from '../../src/flush/fold-parts.js';

const log = createLogger('silent');
const I = 10_000;
/** A period boundary: the clocks start inside the period ending here. */
const P = 1_000_000_000_000;
const SHARDS = 16;
const opts = { batchInterval: 1e9, flushInterval: I, leaseTtl: 60_000, maxPendingBatches: 100, prefixStats: 'statsd', maxBatchNames: 2000 };

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** What one period should hold, per stored name, and the statsd lines that send it. */
class Expected {
  readonly counters = new Map<string, number>();
  readonly timers = new Map<string, number[]>();
  readonly timerCounts = new Map<string, number>();
  readonly gauges = new Map<string, string>();
  readonly sets = new Map<string, Set<string>>();
  readonly passthrough: string[] = [];
  readonly lines: string[] = [];
}

/** n names of each type (a third with DogStatsD tags), several samples each; k (the period's index) changes the values. */
function traffic(tag: string, n: number, k: number): Expected {
  const e = new Expected();
  for (let i = 0; i < n; i++) {
    const tagged = i % 3 === 0;
    const tags = tagged ? `|#env:prod,az:${i % 4}` : '';
    const stored = (type: string) => `${tag}.${type}.${i}${tagged ? `;env=prod;az=${i % 4}` : ''}`;
    const raw = (type: string) => `${tag}.${type}.${i}`;
    e.lines.push(`${raw('c')}:${(i % 7) + 1}|c${tags}`, `${raw('c')}:${k + 1}|c|@0.5${tags}`);
    e.counters.set(stored('c'), (i % 7) + 1 + 2 * (k + 1));
    e.lines.push(`${raw('t')}:${i % 100}|ms${tags}`, `${raw('t')}:${(i + k) % 50}|ms${tags}`, `${raw('t')}:${k}|ms|@0.25${tags}`);
    e.timers.set(stored('t'), [i % 100, (i + k) % 50, k].sort((a, b) => a - b));
    e.timerCounts.set(stored('t'), 6);
    e.lines.push(`${raw('g')}:${i}|g${tags}`, `${raw('g')}:+${k + 1}|g${tags}`);
    e.gauges.set(stored('g'), `s${i + k + 1}`);
    e.lines.push(`${raw('s')}:a|s${tags}`, `${raw('s')}:b${k}|s${tags}`, `${raw('s')}:a|s${tags}`);
    e.sets.set(stored('s'), new Set(['a', `b${k}`]));
  }
  for (let i = 0; i < n / 10; i++) e.passthrough.push(`${tag}.pass.${k}.${i} ${i} ${1_700_000_000 + k}`);
  return e;
}

/** Ticks b until its queue is empty: a failed part is retried at the next tick, as every batchInterval. */
async function merged(b: Batcher, what: string): Promise<void> {
  await until(() => {
    b.tick();
    return b.backlog === 0;
  }, what);
}

/** Feeds e's lines (32 a datagram) and passthrough lines into the batcher. */
function send(parser: StatsdLineParser, b: Batcher, e: Expected): void {
  for (let i = 0; i < e.lines.length; i += 32) {
    const buf = Buffer.from(e.lines.slice(i, i + 32).join('\n'));
    parser.parsePacket(buf, 0, buf.length, b);
  }
  for (const line of e.passthrough) b.passthrough(line);
}

/** One period as stored, over every shard; each field checked to sit in its own shard. */
interface Stored {
  counters: Map<string, number>;
  timers: Map<string, number[]>;
  timerCounts: Map<string, number>;
  gauges: Map<string, string>;
  sets: Map<string, Set<string>>;
  /** Shards whose period keys hold anything. */
  shardsUsed: Set<number>;
}

/** A counter's value in period p of store st's shard (its parts folded), or undefined. */
async function counterIn(st: Store, p: number, name: string): Promise<number | undefined> {
  return foldParts(await st.redis.getBuffer(st.keys.period(p, 'parts'))).counters.get(name);
}

/** Reads period p from every shard (shardStore(s): the Store holding shard s) and checks each name's shard. */
async function readPeriod(shardStore: (s: number) => Store, shardOf: (name: string) => number, p: number): Promise<Stored> {
  const out: Stored = { counters: new Map(), timers: new Map(), timerCounts: new Map(), gauges: new Map(), sets: new Map(), shardsUsed: new Set() };
  for (let s = 0; s < SHARDS; s++) {
    const st = shardStore(s);
    const r = st.redis;
    const [parts, gauges] = await Promise.all([r.getBuffer(st.keys.period(p, 'parts')), r.hgetall(st.keys.period(p, 'gauges'))]);
    const { counters, timerCounts, timers, sets } = foldParts(parts);
    const mine = (name: string, what: string) => assert.equal(shardOf(name), s, `${what} ${JSON.stringify(name)} is in shard ${s}'s keys`);
    for (const [name, v] of counters) {
      mine(name, 'counter');
      assert.ok(!out.counters.has(name), `counter ${name} in one shard only`);
      out.counters.set(name, v);
    }
    for (const [name, v] of timerCounts) {
      mine(name, 'timer count');
      out.timerCounts.set(name, v);
    }
    for (const [name, v] of Object.entries(gauges)) {
      mine(name, 'gauge');
      out.gauges.set(name, v);
    }
    for (const [name, members] of sets) {
      mine(name, 'set');
      out.sets.set(name, new Set(members));
    }
    for (const [name, samples] of timers) {
      mine(name, 'timer');
      out.timers.set(name, [...samples]);
    }
    if (counters.size + Object.keys(gauges).length + sets.size + timers.size > 0) out.shardsUsed.add(s);
  }
  for (const v of out.timers.values()) v.sort((a, b) => a - b);
  return out;
}

/** Period p holds exactly e's names and values (tallyd's own statsd.* counters aside). */
function assertExact(got: Stored, e: Expected, what: string): void {
  const own = (m: Map<string, unknown>) => new Map([...m].filter(([k]) => !k.startsWith('statsd.')));
  assert.deepEqual(own(got.counters), e.counters, `${what}: counters per name`);
  assert.deepEqual(got.timerCounts, e.timerCounts, `${what}: timer counts per name`);
  assert.deepEqual(got.timers, e.timers, `${what}: timer samples per name, each once`);
  assert.deepEqual(got.gauges, e.gauges, `${what}: gauges per name`);
  assert.deepEqual(got.sets, e.sets, `${what}: set members per name`);
}

/** Every shard's outbox holds exactly the passthrough lines of its shard, each once. */
async function assertOutboxes(shardStore: (s: number) => Store, shardOf: (line: string) => number, lines: readonly string[]): Promise<void> {
  for (let s = 0; s < SHARDS; s++) {
    const got = (await outboxText(shardStore(s))).split('\n').filter((l) => l !== '').sort();
    assert.deepEqual(got, lines.filter((l) => shardOf(l) === s).sort(), `shard ${s}'s outbox: its passthrough lines, each once`);
  }
}

/**
 * The real shard Stores (shardStore(s) holds shard s), with the merge calls counted per shard and batch id
 * ("<shard> <batch id>" -> calls); a shard in lose gets its first merge run in Redis and its reply lost.
 */
function instrumented(shardStore: (s: number) => Store, shardOf: (name: string) => number, lose: ReadonlySet<number> = new Set())
  : ShardedTarget & { calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const lost = new Set<number>();
  const shards = Array.from({ length: SHARDS }, (_, s): MergeTarget => ({
    merge: async (...a: Parameters<MergeTarget['merge']>) => {
      const key = `${s} ${a[0]}`;
      calls.set(key, (calls.get(key) ?? 0) + 1);
      const res = await shardStore(s).merge(...a);
      if (lose.has(s) && !lost.has(s)) {
        lost.add(s);
        throw new Error('Command timed out'); // the merge ran; its reply never came back
      }
      return res;
    },
    heartbeat: (m, w) => shardStore(s).heartbeat(m, w),
    leave: (m) => shardStore(s).leave(m),
  }));
  return { shards, shardOf, calls };
}

/** calls (see instrumented) of shard s, as [batch id, calls]. */
function callsOf(calls: Map<string, number>, s: number): Array<[string, number]> {
  return [...calls].filter(([k]) => k.startsWith(`${s} `)).map(([k, n]) => [k.slice(k.indexOf(' ') + 1), n]);
}

describe('shards: the ingest side', () => {
  const prefixes: string[] = [];
  const stores: Store[] = [];
  let redis: RedisServer | null = null;

  async function open(name: string, url = REDIS_URL, extra: { commandTimeout?: number } = {}, prefix = testPrefix(name)): Promise<Store> {
    if (url === REDIS_URL && !prefixes.includes(prefix)) prefixes.push(prefix);
    const st = await Store.open({ url, keyPrefix: prefix, shards: SHARDS, ...extra }, log);
    stores.push(st);
    return st;
  }

  after(async () => {
    redis?.resume();
    for (const st of stores) await st.quit().catch(() => undefined);
    for (const p of prefixes) await cleanup(p);
    await redis?.stop();
  });

  test('thousands of names of every type, tagged or not, and passthrough lines land exactly in their own shard, per period; a lost reply is merged once', async () => {
    const store = await open('shards-ingest');
    assert.equal(store.shards.length, SHARDS);
    const clock = new ManualClock(P - I / 2);
    const parser = new StatsdLineParser({ keyNameSanitize: true });
    const self = new SelfStats();
    const target = instrumented((s) => store.shards[s] as Store, (n) => store.shardOf(n), new Set([3]));
    const b = new Batcher(target, opts, self, parser, log, clock);
    b.start();
    const first = traffic('ing', 1000, 0);
    send(parser, b, first);
    clock.advance(I / 2); // the boundary P seals the last batch of the first period
    await merged(b, 'the first period merged');
    const second = traffic('ing', 1000, 1);
    send(parser, b, second);
    clock.advance(I); // P + I
    await merged(b, 'the second period merged');
    await b.stop(5000);

    const shardStore = (s: number) => store.shards[s] as Store;
    const shardOf = (n: string) => store.shardOf(n);
    const p1 = await readPeriod(shardStore, shardOf, P);
    const p2 = await readPeriod(shardStore, shardOf, P + I);
    assertExact(p1, first, 'period P');
    assertExact(p2, second, 'period P + I');
    assert.equal(p1.shardsUsed.size, SHARDS, 'every shard got some of the first period');
    assert.equal(p2.shardsUsed.size, SHARDS, 'every shard got some of the second period');
    await assertOutboxes(shardStore, shardOf, [...first.passthrough, ...second.passthrough]);
    // tallyd's own counters are names like any other: one shard each, and exact.
    const received = (st: Stored) => st.counters.get('statsd.metrics_received');
    assert.equal(received(p1), first.lines.length, 'statsd.metrics_received in P');
    assert.equal(received(p2), second.lines.length, 'statsd.metrics_received in P + I');

    assert.equal(self.mergeErrors, 1, 'the lost reply, once');
    assert.equal(self.batchesDropped, 0);
    assert.equal(self.lateSamples, 0);
    const resent = callsOf(target.calls, 3).filter(([, n]) => n > 1);
    assert.deepEqual(resent.map(([, n]) => n), [2], 'shard 3: the part whose reply was lost was sent again, once (a duplicate: counted once)');
    for (let s = 0; s < SHARDS; s++) {
      if (s !== 3) assert.deepEqual(callsOf(target.calls, s).filter(([, n]) => n !== 1), [], `shard ${s}: one merge per batch, never repeated`);
    }
    assert.ok(callsOf(target.calls, 0).length >= 6, `several batches a period (maxBatchNames ${opts.maxBatchNames}): ${callsOf(target.calls, 0).length}`);
    for (let s = 0; s < SHARDS; s++) {
      assert.equal(await store.shards[s]!.redis.hexists(store.shards[s]!.keys.members, b.memberId), 0, `a clean stop leaves shard ${s}'s members`);
    }
  });

  test('one shard\'s Redis hangs (SIGSTOP) while the others merge: its part is retried, the rest never resent, every period exact', { timeout: 60_000 }, async () => {
    redis = await RedisServer.start();
    const prefix = testPrefix('shards-ingest-stop');
    const shared = await open('', REDIS_URL, {}, prefix);
    const own = await open('', redis.url, { commandTimeout: 300 }, prefix);
    const K = 5;
    // Shard K lives on the test's own redis-server, every other shard on the shared Redis.
    const shardStore = (s: number) => (s === K ? own : shared).shards[s] as Store;
    const target = instrumented(shardStore, (n) => shared.shardOf(n));
    const clock = new ManualClock(P - I / 2);
    const parser = new StatsdLineParser({ keyNameSanitize: true });
    const self = new SelfStats();
    const b = new Batcher(target, { ...opts, maxBatchNames: 1e6 }, self, parser, log, clock);
    b.start();

    const first = traffic('stop', 600, 0);
    redis.pause();
    send(parser, b, first);
    b.tick(); // one batch, 16 parts: shard K's hangs
    await until(() => self.mergeErrors >= 1, 'shard K\'s merge to time out');
    assert.equal(b.backlog, 1, 'the batch stays queued while a part is unmerged');
    const mergedShards = (await readPeriod((s) => shared.shards[s] as Store, (n) => shared.shardOf(n), P)).shardsUsed;
    assert.deepEqual([...mergedShards].sort((x, y) => x - y), [...Array(SHARDS).keys()].filter((s) => s !== K), 'every shard but K merged while K hung');
    // Retry rounds while K still hangs: only K's part goes out again.
    await until(() => {
      b.tick();
      return self.mergeErrors >= 3;
    }, 'two retries to time out too');
    const second = traffic('stop', 600, 1);
    clock.advance(I / 2); // the boundary P: later samples go to P + I, queued behind the first batch
    send(parser, b, second);
    b.tick();
    redis.resume();
    await merged(b, 'every part merged after SIGCONT');
    await b.stop(5000);

    for (let s = 0; s < SHARDS; s++) {
      if (s !== K) assert.deepEqual(callsOf(target.calls, s).filter(([, n]) => n !== 1), [], `shard ${s}: one merge per batch, never resent`);
    }
    const firstId = callsOf(target.calls, (K + 1) % SHARDS)[0]![0];
    assert.ok((target.calls.get(`${K} ${firstId}`) ?? 0) >= 4, `shard K: its part of the first batch retried (${target.calls.get(`${K} ${firstId}`)} calls)`);
    assertExact(await readPeriod(shardStore, (n) => shared.shardOf(n), P), first, 'period P');
    assertExact(await readPeriod(shardStore, (n) => shared.shardOf(n), P + I), second, 'period P + I');
    await assertOutboxes(shardStore, (n) => shared.shardOf(n), [...first.passthrough, ...second.passthrough]);
    // Nothing of shard K's on the shared Redis, nothing of the others' on the test's own.
    for (const p of [P, P + I]) {
      assert.equal(await shared.redis.exists(shared.shards[K]!.keys.period(p, 'parts')), 0);
      for (let s = 0; s < SHARDS; s++) if (s !== K) assert.equal(await own.redis.exists(own.shards[s]!.keys.period(p, 'parts')), 0);
    }
    assert.ok(self.batchesMerged >= 2);
    assert.equal(self.batchesDropped, 0);
    assert.equal(self.lateSamples, 0);
  });

  test("while one shard's part hangs, the shards whose parts merged keep hearing this process (their leaders must not take it for dead)", { timeout: 30_000 }, async () => {
    const hung = await RedisServer.start();
    try {
      const prefix = testPrefix('shards-ingest-beat');
      const shared = await open('', REDIS_URL, {}, prefix);
      const own = await open('', hung.url, { commandTimeout: 20_000 }, prefix);
      const K = 9;
      const shardStore = (s: number) => (s === K ? own : shared).shards[s] as Store;
      const clock = new ManualClock(P - I / 2);
      const parser = new StatsdLineParser({ keyNameSanitize: true });
      const self = new SelfStats();
      const b = new Batcher(instrumented(shardStore, (n) => shared.shardOf(n)), { ...opts, leaseTtl: 3000, maxBatchNames: 1e6 }, self, parser, log, clock);
      b.start();
      await until(async () => (await shared.shards[0]!.redis.hexists(shared.shards[0]!.keys.members, b.memberId)) === 1, 'the first heartbeats');
      const hbOf = async (s: number): Promise<number> => Number(((await shardStore(s).redis.hget(shardStore(s).keys.members, b.memberId)) ?? '0').split(' ')[0]);
      hung.pause();
      send(parser, b, traffic('beat', 300, 0));
      b.tick(); // one batch, a part for every shard: K's waits (no timeout for 20 s)
      const others = [...Array(SHARDS).keys()].filter((s) => s !== K);
      await until(async () => (await readPeriod((s) => shared.shards[s] as Store, (n) => shared.shardOf(n), P)).shardsUsed.size === others.length, 'every other part merged');
      const beforeBeat = await Promise.all(others.map(hbOf));
      // The heartbeat timer (every second here) finds the round still waiting for K: the other shards hear from it.
      clock.jump(1000);
      await until(async () => (await Promise.all(others.map(hbOf))).every((hb, i) => hb > beforeBeat[i]!), 'a heartbeat to every shard whose part merged', 5000);
      assert.equal(self.batchesMerged, 0, "the batch is not done: K's part is still in flight");
      hung.resume();
      await merged(b, 'every part merged after SIGCONT');
      await b.stop(5000);
      assert.equal(self.lateSamples, 0);
    } finally {
      hung.resume();
      await hung.stop();
    }
  });

  test('a shard without samples in a batch still sees the watermark advance, so its leader closes the period', async () => {
    const store = await open('shards-ingest-hb');
    const clock = new ManualClock(P - I / 2);
    const b = new Batcher(store, opts, new SelfStats(), { metricsReceived: 0, badLines: 0 }, log, clock);
    const name = 'hb.only';
    const a = store.shardOf(name);
    const quiet = (a + 7) % SHARDS;
    b.start(); // heartbeats every shard: watermark P
    const token = 'test-leader';
    const leader = store.shards[quiet] as Store;
    assert.equal(await leader.tryAcquireLease(token, 60_000), 2);
    await until(async () => (await leader.redis.hget(leader.keys.members, b.memberId)) !== null, 'the start heartbeat');
    const before = await leader.closePeriod(token, P, 60_000, Date.now());
    assert.deepEqual(before, { status: 'waiting', member: b.memberId, watermarkMs: P }, 'before the boundary the process may hold samples of P');

    b.counter(name, 1, 1);
    clock.advance(I / 2); // the boundary: the batch (hb.only, in shard a only) merges, every other shard gets a heartbeat
    await until(() => b.backlog === 0, 'the merge');
    for (let s = 0; s < SHARDS; s++) {
      const rec = await store.shards[s]!.redis.hget(store.shards[s]!.keys.members, b.memberId);
      assert.equal(rec?.split(' ')[1], String(P + I), `shard ${s} has the watermark P + I`);
    }
    assert.deepEqual(await leader.closePeriod(token, P, 60_000, Date.now()), { status: 'closed' }, 'the quiet shard closes P without waiting');
    assert.equal(await counterIn(store.shards[a]!, P, name), 1);
    await b.stop(5000);
  });

  test('a part late on one shard moves to that shard\'s next period and counts its own samples only', async () => {
    const store = await open('shards-ingest-late');
    const clock = new ManualClock(P - I / 2);
    const self = new SelfStats();
    const b = new Batcher(store, opts, self, { metricsReceived: 0, badLines: 0 }, log, clock);
    const names = Array.from({ length: 200 }, (_, i) => `late.c.${i}`);
    const L = store.shardOf('late.c.0');
    // Shard L's leader closes P before the batch arrives (say, the process was cut off longer than its ttl).
    const leader = store.shards[L] as Store;
    assert.equal(await leader.tryAcquireLease('t', 60_000), 2);
    assert.deepEqual(await leader.closePeriod('t', P, 60_000, Date.now()), { status: 'closed' });
    for (const n of names) {
      b.counter(n, 2, 1);
      b.counter(n, 3, 1);
    }
    b.tick();
    await until(() => b.backlog === 0, 'the merge');
    const inL = names.filter((n) => store.shardOf(n) === L);
    assert.ok(inL.length > 0 && inL.length < names.length);
    assert.equal(self.lateSamples, 2 * inL.length, 'late_samples: the samples of shard L\'s part, not of the batch');
    for (const n of names) {
      const s = store.shardOf(n);
      const st = store.shards[s] as Store;
      const into = s === L ? P + I : P;
      assert.equal(await counterIn(st, into, n), 5, `${n} in shard ${s}, period ${into === P ? 'P' : 'P + I'}`);
      assert.equal(await counterIn(st, s === L ? P : P + I, n), undefined, `${n} not in the other period`);
    }
    assert.equal(self.batchesMerged, 1);
    assert.equal(self.mergeErrors, 0);
    await b.stop(5000);
  });
});
