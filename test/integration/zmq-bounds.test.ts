/**
 * ZeroMQ bounds hold before memory is spent, in a tallyd of its own (a child
 * process, so its RSS is its own): a PUSH and a PUB publisher each send a
 * 64 MB frame to sockets bounded at 1 MB. libzmq refuses the frame from its
 * header and drops that connection: tallyd's RSS does not grow by the frame,
 * the disconnects are counted (`zmq_disconnects`) and logged, good messages
 * from the other publishers keep landing exactly, and the offending
 * publishers' messages land again once their libzmq has reconnected. A
 * message of too many frames is counted as a bad message. Without the native
 * addon every message decodes through the general path.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, afterEach, before, describe, test } from 'node:test';
import { deflateSync } from 'node:zlib';
import { Publisher, Push } from 'zeromq';
import { CarbonListener, freePort, sleep } from '../helpers/carbon.js';
import { cleanup, testPrefix } from '../helpers/redis.js';
import { spawnTallyd, testConfig, waitForOutput, type ChildTallyd } from '../helpers/tallyd.js';

const MB = 1024 * 1024;

/** Resident set of a process in bytes (VmRSS of /proc/<pid>/status). */
function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, 'VmRSS in /proc/<pid>/status');
  return Number(m[1]) * 1024;
}

const counter = (name: string, value = 1): Buffer => deflateSync(JSON.stringify([{ name, value, type: 'c' }]));

describe('ZeroMQ bounds in a tallyd process', () => {
  let carbon: CarbonListener;
  let child: ChildTallyd | null = null;
  let prefix = '';
  const sockets: Array<Publisher | Push> = [];

  before(async () => {
    carbon = new CarbonListener();
    await carbon.start();
  });
  after(async () => {
    await carbon.stop();
  });
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.close();
    if (child && child.proc.exitCode === null && child.proc.signalCode === null) {
      child.proc.kill('SIGKILL');
      await child.exited;
    }
    child = null;
    await cleanup(prefix);
    carbon.lines.length = 0;
  });

  function socket<T extends Publisher | Push>(s: T, endpoint: string): T {
    s.connect(endpoint);
    sockets.push(s);
    return s;
  }

  /** Sends msg until Carbon has seen name (a PUB's first messages are lost until the SUB's subscription reaches it). */
  async function until(name: string, send: () => Promise<void>, what: string): Promise<void> {
    const deadline = Date.now() + 15_000;
    while (carbon.sum(`stats_counts.${name}`) === 0) {
      assert.ok(Date.now() < deadline, `timed out: ${what}`);
      await send();
      await sleep(50);
    }
  }

  test('a 64 MB frame from a PUSH and from a PUB publisher: refused by libzmq, counted, RSS flat; everyone else goes on', async (t) => {
    prefix = testPrefix('zmq-bounds');
    const [pullPort, subPort] = [await freePort(), await freePort()];
    const pull = `tcp://127.0.0.1:${pullPort}`;
    const sub = `tcp://127.0.0.1:${subPort}`;
    child = spawnTallyd(testConfig(prefix, carbon.port, {
      servers: [
        { server: 'zmq', bind: pull, type: 'pull', maxMessageSize: MB },
        { server: 'zmq', bind: sub, type: 'sub', maxMessageSize: MB },
      ],
      log: { level: 'info' },
    }));
    await waitForOutput(child, 'tallyd is up');
    const pid = child.proc.pid!;

    const goodPush = socket(new Push({ linger: 0 }), pull);
    const badPush = socket(new Push({ linger: 0 }), pull);
    const goodPub = socket(new Publisher({ linger: 0 }), sub);
    const badPub = socket(new Publisher({ linger: 0 }), sub);
    // Both publishers are heard before anything is counted exactly.
    await until('join.push', () => badPush.send(counter('join.push')), 'the PUSH publisher reaches tallyd');
    await until('join.pub.good', () => goodPub.send(counter('join.pub.good')), 'the good PUB reaches tallyd');
    await until('join.pub.bad', () => badPub.send(counter('join.pub.bad')), 'the bad PUB reaches tallyd');
    for (let i = 0; i < 100; i++) await goodPush.send(counter('bounds.push', 1));
    await carbon.waitFor(() => carbon.sum('stats_counts.bounds.push') === 100, 10_000, 'the first 100 PUSH items');
    const rssBefore = rssBytes(pid);

    const big = Buffer.alloc(64 * MB, 0x20);
    await badPush.send(big);
    await badPub.send(big);
    await carbon.waitFor(() => carbon.sum('stats_counts.statsd.zmq_disconnects') === 2, 15_000, 'two disconnects counted');
    const grownMb = (rssBytes(pid) - rssBefore) / MB;
    t.diagnostic(`tallyd RSS ${(rssBefore / MB).toFixed(1)} MB before the 64 MB frames, grown by ${grownMb.toFixed(1)} MB after`);
    assert.ok(grownMb < 24, `tallyd's RSS grew by ${grownMb.toFixed(1)} MB for a 64 MB frame it refused`);

    // The others go on, exactly; the offending PUSH's next message arrives once its libzmq has reconnected.
    for (let i = 0; i < 100; i++) await goodPush.send(counter('bounds.push', 1));
    await badPush.send(counter('bounds.push.after', 5));
    await until('bounds.pub.good', () => goodPub.send(counter('bounds.pub.good')), 'the good PUB after the big frames');
    await until('bounds.pub.after', () => badPub.send(counter('bounds.pub.after')), 'the bad PUB after its reconnect');
    await carbon.waitFor(() => carbon.sum('stats_counts.bounds.push') === 200 && carbon.sum('stats_counts.bounds.push.after') === 5,
      10_000, 'the second 100 PUSH items and the reconnected PUSH');
    assert.equal(carbon.sum('stats_counts.statsd.zmq_disconnects'), 2);
    assert.equal(carbon.sum('stats_counts.statsd.zmq_bad_frames'), 0);
    assert.match(child.output(), /a zeromq publisher disconnected: it closed its socket, or libzmq dropped it for a frame over maxMessageSize/);
    assert.ok(child.output().length < 64 * 1024, 'the log quotes nothing of the frame');
  });

  test('without the native addon (TALLYD_SKIP_NATIVE=1) every shape of message decodes through the general path, exactly', async () => {
    prefix = testPrefix('zmq-noaddon');
    const pull = `tcp://127.0.0.1:${await freePort()}`;
    child = spawnTallyd(testConfig(prefix, carbon.port, { servers: [{ server: 'zmq', bind: pull, type: 'pull' }], log: { level: 'info' } }),
      { TALLYD_SKIP_NATIVE: '1' });
    await waitForOutput(child, 'tallyd is up');
    assert.match(child.output(), /"decoder":"general".*listening for zeromq status messages/);
    const s = socket(new Push({ linger: 0 }), pull);
    const shapes: Array<string | Buffer> = [
      deflateSync(JSON.stringify([{ name: 'na.c', value: 2, type: 'c', time: 1796000000 }, { name: 'na.c', value: 3, type: 'c' }])),
      JSON.stringify({ name: 'na.c', value: 5, type: 'c', rate: 0.5 }), // counts 10
      deflateSync(JSON.stringify([{ name: 'na.tagged', value: 4, type: 'c', tags: { env: 'prod' } }])),
      JSON.stringify([{ name: 'na.set', value: 'u1', type: 's' }, { name: 'na.set', value: 'u2', type: 's' }, { name: 'na.set', value: 'u1', type: 's' }]),
      'na.c:7|c\nna.c:1|c|@0.5',
      deflateSync(JSON.stringify([{ name: 'na.c', value: 1e308, type: 'g' }, { name: 'na.bad', value: [[[1]]], type: 'c' }])),
    ];
    for (let round = 0; round < 10; round++) for (const f of shapes) await s.send(f);
    await carbon.waitFor(() => carbon.sum('stats_counts.na.c') === 10 * (2 + 3 + 10 + 7 + 2), 10_000, 'the na.c counters');
    await carbon.waitFor(() => carbon.sum('stats_counts.na.tagged;env=prod') === 40 && carbon.sum('stats_counts.statsd.zmq_bad_items') === 10, 10_000,
      'the tagged counter and the bad items');
    assert.ok(carbon.series('stats.sets.na.set.count').some((l) => l.value === '2'));
    assert.equal(carbon.sum('stats_counts.na.bad'), 0);
    assert.equal(carbon.sum('stats_counts.statsd.zmq_bad_frames'), 0);
  });

  test('a message of 100 frames is one bad message; the next one lands', async () => {
    prefix = testPrefix('zmq-frames');
    const pull = `tcp://127.0.0.1:${await freePort()}`;
    child = spawnTallyd(testConfig(prefix, carbon.port, { servers: [{ server: 'zmq', bind: pull, type: 'pull' }], log: { level: 'info' } }));
    await waitForOutput(child, 'tallyd is up');
    const s = socket(new Push({ linger: 0 }), pull);
    await s.send(Array.from({ length: 100 }, () => counter('frames.many')));
    await s.send(['topic', counter('frames.two')]);
    await carbon.waitFor(() => carbon.sum('stats_counts.frames.two') === 1 && carbon.sum('stats_counts.statsd.zmq_bad_frames') === 1,
      10_000, 'the two-frame message and one bad message');
    assert.equal(carbon.sum('stats_counts.frames.many'), 0);
    assert.equal(carbon.sum('stats_counts.statsd.zmq_messages_received'), 2);
    assert.match(child.output(), /bad zeromq message: 100 frames \(at most 2: a topic and the status\)/);
  });
});
