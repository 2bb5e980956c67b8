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
