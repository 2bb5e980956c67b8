/**
 * statsd's management console on mgmt_port, answering from the Redis state:
 * the same commands and the same replies as Etsy statsd's mgmt_server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Daemon } from '../../src/daemon.js';
import { sendUdp } from '../helpers/carbon.js';
import { askConsole } from '../helpers/console.js';
import { waitUntil } from '../helpers/steady-traffic.js';
import { cleanup, testPrefix } from '../helpers/redis.js';
import { startDaemon, testConfig } from '../helpers/tallyd.js';
import { createLogger } from '../../src/observability/logger.js';
import { Store } from '../../src/store/store.js';
import { mergeIntoShards, namesOverShards } from '../helpers/shards.js';
import { REDIS_URL } from '../helpers/redis.js';

/** One command, the reply up to `until` (as with nc). */
const ask = (port: number, cmd: string, until = 'END\n\n'): Promise<string> => askConsole(port, cmd, until, 3000);

describe('management console', () => {
  const prefix = testPrefix('console');
  let daemon: Daemon;
  let port = 0;

  before(async () => {
    daemon = await startDaemon(testConfig(prefix, null, { flushInterval: 3_600_000 }));
    port = daemon.ports.mgmt;
    await sendUdp(daemon.ports.udp[0]!, ['con.a:5|c\ncon.b:1|c\ncon.g:42|g\ncon.t:3|ms\ncon.t:4|ms\ncon.s:x|s', 'junk']);
    // Both datagrams merged into Redis, where the console reads from.
    const merged = await waitUntil(async () => {
      const counters = await ask(port, 'counters');
      return /'con\.a': 5/.test(counters) && /'statsd\.bad_lines_seen': 1/.test(counters);
    }, 5000);
    assert.ok(merged, 'the datagrams merged into redis');
  });
  after(async () => {
    await daemon.stop();
    await cleanup(prefix);
  });

  test('help lists the commands', async () => {
    assert.equal(
      await ask(port, 'help', '\n\n'),
      'Commands: stats, counters, timers, gauges, sets, delcounters, deltimers, delgauges, health, config, quit\n\n',
    );
  });

  test('counters, gauges, timers and sets dump the current state like statsd (util.inspect)', async () => {
    const counters = await ask(port, 'counters');
    assert.match(counters, /'con\.a': 5/);
    assert.match(counters, /'statsd\.bad_lines_seen': 1/);
    assert.ok(counters.endsWith('\nEND\n\n'));
    assert.match(await ask(port, 'gauges'), /'con\.g': 42/);
    assert.match(await ask(port, 'timers'), /'con\.t': \[ 3, 4 \]/);
    assert.match(await ask(port, 'sets'), /'con\.s': \[ 'x' \]/);
  });

  test('health reports and toggles the status (the operator\'s down says why)', async () => {
    const down = 'health: down\nreason: set down by the operator (health down)\n';
    assert.equal(await ask(port, 'health', '\n'), 'health: up\n');
    assert.equal(await ask(port, 'health down', down), down);
    assert.equal(await ask(port, 'health', down), down);
    assert.equal(await ask(port, 'health up', '\n'), 'health: up\n');
  });

  test('stats reports uptime, messages and graphite status', async () => {
    const text = await ask(port, 'stats');
    assert.match(text, /^uptime: \d+\n/);
    assert.match(text, /\nmessages\.bad_lines_seen: 1\n/);
    assert.match(text, /\nmessages\.last_msg_seen: \d+\n/);
    assert.match(text, /\ngraphite\.flush_length: \d+\n/);
    assert.match(text, /\ntallyd\.batches_merged: [1-9]\d*\n/);
    assert.match(text, /\ntallyd\.batches_dropped: 0\n/);
    assert.match(text, /\ntallyd\.udp_kernel_drops: 0\n/);
    assert.match(text, /\ntallyd\.redis_timeouts: 0\n/);
  });

  test('stats shows the backlog and the health facts', async () => {
    const text = await ask(port, 'stats');
    assert.match(text, /\nhealth\.status: up\n/);
    assert.match(text, /\nredis\.answers: yes\n/);
    assert.match(text, /\nredis\.ping_ms: [\d.]+\n/);
    assert.match(text, /\nflush\.leader: yes\n/);
    // flushInterval is 60 s: a period is committed only if a minute boundary passed during the test.
    assert.match(text, /\nflush\.last_committed_period: (unknown|\d+)\nflush\.last_committed_age_s: (unknown|\d+)\n/);
    assert.match(text, /\noutbox\.entries: \d+\noutbox\.bytes: \d+\noutbox\.oldest_age_s: unknown\n/);
    assert.match(text, /\nbatches\.waiting: [01]\n/);
    assert.ok(text.endsWith('\nEND\n\n'));
  });

  test('delcounters deletes exact names and folders, and says what it did not find', async () => {
    const reply = await ask(port, 'delcounters con.a nope.x');
    assert.equal(reply, 'deleted: con.a\nmetric nope.x not found\nEND\n\n');
    const counters = await ask(port, 'counters');
    assert.doesNotMatch(counters, /'con\.a'/);
    assert.match(counters, /'con\.b': 1/);
    assert.equal(await ask(port, 'delgauges con.*'), 'deleted: con.g\nEND\n\n');
    assert.equal(await ask(port, 'deltimers con.t'), 'deleted: con.t\nEND\n\n');
    assert.doesNotMatch(await ask(port, 'timers'), /con\.t/);
  });

  test('unknown commands get ERROR; quit closes the connection', async () => {
    assert.equal(await ask(port, 'frobnicate', '\n'), 'ERROR\n');
    assert.equal(await ask(port, 'quit', ''), '');
  });
});

describe('management console over shards (redis.shards: 4, names in several shards)', () => {
  const prefix = testPrefix('console-shards');
  let daemon: Daemon;
  let writer: Store;
  let port = 0;
  /** Counter names spread over all 4 shards, each with its value. */
  let counters: Array<{ name: string; shard: number; value: number }> = [];
  let idle: { name: string; shard: number };

  before(async () => {
    daemon = await startDaemon(testConfig(prefix, null, { flushInterval: 3_600_000, redis: { url: REDIS_URL, keyPrefix: prefix, shards: 4 } }));
    port = daemon.ports.mgmt;
    writer = await Store.open({ url: REDIS_URL, keyPrefix: prefix, shards: 4 }, createLogger('silent'));
    counters = namesOverShards(writer, 'sh.c', 4).map((x, i) => ({ ...x, value: i + 1 }));
    const boundary = Date.now() + 3_600_000;
    const written = await mergeIntoShards(writer, [
      ...counters.map((x) => ({ c: x.name, v: x.value })),
      ...namesOverShards(writer, 'sh.g', 4).map((x, i) => ({ g: x.name, v: 10 + i })),
      ...namesOverShards(writer, 'sh.t', 4).flatMap((x, i) => [{ ms: x.name, v: i }, { ms: x.name, v: 100 + i }]),
      ...namesOverShards(writer, 'sh.s', 4).map((x) => ({ s: x.name, member: `m-${x.shard}` })),
    ], boundary);
    assert.equal(written.size, 4, 'samples went into every shard');
    // A counter only known (idle: statsd lists it as 0) in a shard other than 0.
    idle = namesOverShards(writer, 'sh.idle', 4).find((x) => x.shard !== 0)!;
    await writer.storeFor(idle.name).rememberSeen({ counters: [idle.name] }, Date.now());
  });
  after(async () => {
    await writer.quit();
    await daemon.stop();
    await cleanup(prefix);
  });

  test('counters, gauges, timers and sets list every shard\'s names with their exact values', async () => {
    const text = await ask(port, 'counters');
    for (const x of counters) assert.match(text, new RegExp(`'${x.name.replace('.', '\\.')}': ${x.value}[,\n ]`), `${x.name} (shard ${x.shard})`);
    assert.match(text, new RegExp(`'${idle.name.replace('.', '\\.')}': 0[,\n ]`), `the idle ${idle.name} of shard ${idle.shard}`);
    assert.match(text, /'statsd\.bad_lines_seen': 0/);
    const gauges = await ask(port, 'gauges');
    namesOverShards(writer, 'sh.g', 4).forEach((x, i) => assert.match(gauges, new RegExp(`'${x.name.replace('.', '\\.')}': ${10 + i}[,\n ]`)));
    const timers = await ask(port, 'timers');
    namesOverShards(writer, 'sh.t', 4).forEach((x, i) => assert.match(timers, new RegExp(`'${x.name.replace('.', '\\.')}': \\[ ${i}, ${100 + i} \\]`)));
    const sets = await ask(port, 'sets');
    for (const x of namesOverShards(writer, 'sh.s', 4)) assert.match(sets, new RegExp(`'${x.name.replace('.', '\\.')}': \\[ 'm-${x.shard}' \\]`));
  });

  test('stats and health answer over every shard, and say how many shards there are and which this process leads', async () => {
    assert.equal(await ask(port, 'health', '\n'), 'health: up\n');
    const text = await ask(port, 'stats');
    assert.match(text, /\nflush\.shards: 4\n/);
    // Until the flush side leads shards of its own, the one Flusher leads shard 0.
    const led = /\nflush\.shards_led: (\d+)\nflush\.shards_led_ids: (none|[\d,]+)\n/.exec(text);
    assert.ok(led, text);
    const ids = led[2] === 'none' ? [] : led[2]!.split(',').map(Number);
    assert.equal(ids.length, Number(led[1]));
    for (const id of ids) assert.ok(id >= 0 && id < 4, `shard ${id} of 4`);
    assert.match(text, /\noutbox\.entries: 0\noutbox\.bytes: 0\noutbox\.oldest_age_s: unknown\n/);
  });

  test('delcounters and delgauges delete each name in its own shard, folders across shards', async () => {
    const [first, ...rest] = counters;
    assert.equal(await ask(port, `delcounters ${first!.name} nope.x`), `deleted: ${first!.name}\nmetric nope.x not found\nEND\n\n`);
    let text = await ask(port, 'counters');
    assert.doesNotMatch(text, new RegExp(`'${first!.name.replace('.', '\\.')}'`));
    for (const x of rest) assert.match(text, new RegExp(`'${x.name.replace('.', '\\.')}': ${x.value}[,\n ]`));
    const reply = await ask(port, 'delcounters sh.*');
    for (const x of [...rest, idle]) assert.match(reply, new RegExp(`deleted: ${x.name.replace('.', '\\.')}\n`));
    text = await ask(port, 'counters');
    assert.doesNotMatch(text, /'sh\./);
    // Gone from Redis in each shard, open periods and known names alike.
    for (const st of writer.shards) {
      const cur = await st.readCurrent();
      assert.deepEqual(Object.keys(cur.counters).filter((n) => n.startsWith('sh.')), [], `shard ${st.shard}'s open periods`);
      assert.deepEqual(cur.known.counters.filter((n) => n.startsWith('sh.')), [], `shard ${st.shard}'s known counters`);
    }
    const gauges = namesOverShards(writer, 'sh.g', 4);
    const dg = await ask(port, 'delgauges sh.g*');
    assert.equal(dg, 'metric sh.g* not found\nEND\n\n', 'statsd matches a folder only with ".*"');
    const all = await ask(port, `delgauges ${gauges.map((x) => x.name).join(' ')}`);
    assert.equal(all, gauges.map((x) => `deleted: ${x.name}\n`).join('') + 'END\n\n');
    assert.doesNotMatch(await ask(port, 'gauges'), /'sh\.g/);
    const timers = namesOverShards(writer, 'sh.t', 4);
    // Listed shard by shard: the order of a folder's names follows the shards.
    const dt = await ask(port, 'deltimers sh.*');
    assert.ok(dt.endsWith('\nEND\n\n'));
    assert.deepEqual(dt.split('\n').filter((l) => l.startsWith('deleted: ')).sort(), timers.map((x) => `deleted: ${x.name}`).sort());
    assert.doesNotMatch(await ask(port, 'timers'), /'sh\.t/);
  });
});
