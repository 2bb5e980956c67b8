import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runInNewContext } from 'node:vm';
import { DEFAULT_HTTP, DEFAULTS } from '../../src/config/defaults.js';
import { ConfigError } from '../../src/config/errors.js';
import { GRAPHITE_KEYS, REDIS_KEYS, TOP_LEVEL_KEYS, ZMQ_SERVER_KEYS } from '../../src/config/keys.js';
import { loadConfig, MAX_CONFIG_BYTES, parseConfigText } from '../../src/config/load.js';
import { MAX_YAML_ALIASES } from '../../src/config/parse.js';
import { type Config, isZmqServer, type ServerConfig } from '../../src/config/types.js';

/** Repository paths, relative to the working directory so that messages are short and exact. */
const rel = (p: string): string => relative(process.cwd(), fileURLToPath(new URL(`../../${p}`, import.meta.url)));
const SHIPPED = rel('config/tallyd.conf.js');
const STATSD_EXAMPLE = rel('config/statsd-example.js');
const ETSY_EXAMPLE = rel('node_modules/statsd/exampleConfig.js');
const fixture = (name: string): string => rel(`test/fixtures/config/${name}`);

/** Loads with an empty environment unless one is given. */
function load(file: string | null, overrides: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}) {
  return loadConfig({ file, env, overrides });
}

/** The statsd (udp/tcp) servers of a config, asserting it has no ZeroMQ one. */
function statsdServers(config: Config): ServerConfig[] {
  return config.servers.map((s) => {
    assert.ok(!isZmqServer(s), `unexpected zmq server ${JSON.stringify(s)}`);
    return s;
  });
}

function tempFile(name: string, text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'tallyd-config-')), name);
  writeFileSync(file, text);
  return file;
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a ConfigError');
}

describe('shipped and statsd configs', () => {
  it('loads config/tallyd.conf.js without warnings; everything but servers, graphiteHost and http is a default', () => {
    const { config, warnings } = load(SHIPPED);
    assert.deepEqual(warnings, []);
    assert.equal(config.source, SHIPPED);
    assert.deepEqual(config.servers.map((s) => (isZmqServer(s) ? [s.server, s.bind, s.type, s.mode] : [s.server, s.address, s.port])),
      [['udp', '0.0.0.0', 8125], ['tcp', '0.0.0.0', 8125], ['zmq', 'tcp://0.0.0.0:5555', 'sub', 'aggregate']]);
    assert.equal(config.graphiteHost, '127.0.0.1');
    assert.deepEqual(config.http, DEFAULT_HTTP); // on in the shipped config, off when absent
    assert.deepEqual({ ...config, source: null, servers: DEFAULTS.servers, graphiteHost: null, http: null }, DEFAULTS);
  });

  it('documents every supported key in config/tallyd.conf.js', () => {
    const text = readFileSync(SHIPPED, 'utf8');
    for (const key of [...TOP_LEVEL_KEYS, ...GRAPHITE_KEYS, ...REDIS_KEYS, ...ZMQ_SERVER_KEYS, 'deleteCounters', 'deleteGauges']) {
      assert.match(text, new RegExp(`\\b${key}: `), key);
    }
  });

  it('returns a deep-frozen config', () => {
    const { config } = load(SHIPPED);
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.servers) && Object.isFrozen(config.servers[0]));
    assert.ok(Object.isFrozen(config.redis) && Object.isFrozen(config.graphite) && Object.isFrozen(config.percentThreshold));
    assert.throws(() => {
      (config.redis as { url: string }).url = 'redis://elsewhere';
    }, TypeError);
  });

  it("loads Etsy statsd's own exampleConfig.js as it is", () => {
    const { config, warnings } = load(ETSY_EXAMPLE);
    assert.deepEqual(warnings, []);
    assert.equal(config.graphiteHost, 'graphite.example.com');
    assert.equal(config.graphitePort, 2003);
    assert.deepEqual(config.servers, DEFAULTS.servers);
  });

  it('loads config/statsd-example.js with statsd semantics', () => {
    const { config, warnings } = load(STATSD_EXAMPLE);
    assert.deepEqual(warnings, [`${STATSD_EXAMPLE}: port: ignored because servers is set (as in statsd)`]);
    assert.deepEqual(config.percentThreshold, [90, 99, -10]);
    assert.deepEqual([config.deleteCounters, config.deleteTimers, config.deleteSets, config.deleteGauges], [true, true, true, false]);
    assert.equal(config.gaugesMaxTTL, 3);
    assert.deepEqual(config.histogram[0], { metric: 'render', bins: [0.01, 0.1, 1, 10, 'inf'] });
    assert.deepEqual(config.graphite, { ...DEFAULTS.graphite, legacyNamespace: false, globalSuffix: 'web01' });
    assert.deepEqual(statsdServers(config).map((s) => [s.server, s.address, s.port, s.address_ipv6]),
      [['udp', '0.0.0.0', 8125, false], ['tcp', '0.0.0.0', 8125, false], ['udp', '::', 8127, true]]);
  });

  it("reads each JS config exactly as statsd's eval('config = ' + data) does, without running it", () => {
    for (const file of [SHIPPED, STATSD_EXAMPLE, ETSY_EXAMPLE]) {
      const text = readFileSync(file, 'utf8');
      const evaluated: unknown = JSON.parse(JSON.stringify(runInNewContext(`config = ${text}`, {})));
      assert.deepEqual(parseConfigText(text, file), evaluated, file);
    }
  });
});

describe('file formats', () => {
  it('gives deep-equal configs for the same settings in JSON and YAML', () => {
    const json = load(fixture('same.json'));
    const yaml = load(fixture('same.yaml'));
    assert.deepEqual([json.warnings, yaml.warnings], [[], []]);
    assert.deepEqual({ ...json.config, source: null }, { ...yaml.config, source: null });
    assert.deepEqual(statsdServers(json.config).map((s) => [s.server, s.address]), [['udp', '0.0.0.0'], ['tcp', '127.0.0.1']]);
    assert.deepEqual(json.config.histogram, [{ metric: 'render', bins: [0.1, 1, 10, 'inf'] }]);
    assert.deepEqual(json.config.redis, { url: 'redis://10.0.0.5:6380/2', keyPrefix: 'app:', shards: 16, nodes: [], username: '', password: '', waitReplicas: 0, waitTimeout: 1000, commandTimeout: 10000, embedded: 'auto' });
  });

  it('strips module.exports / export default / parentheses without moving line numbers', () => {
    assert.deepEqual(parseConfigText('// c\nmodule.exports = {\n  port: 1, // x\n};\n', 'a.js'), { port: 1 });
    assert.deepEqual(parseConfigText('/* c */ export default { port: 2 }', 'a.js'), { port: 2 });
    assert.deepEqual(parseConfigText("({ a: ')', b: [1, 2,], })  ;", 'a.js'), { a: ')', b: [1, 2] });
    const err = configError(() => parseConfigText('module.exports = {\n  a: 1,\n  b: ;\n};\n', 'w.js'));
    assert.equal(err.message, 'w.js:3:6: syntax error: invalid character \';\' (an object literal of plain values is expected; code is not run)');
  });

  it('detects the syntax of other extensions from the content', () => {
    assert.deepEqual(parseConfigText('{ port: 8125, }', 'statsd.conf'), { port: 8125 });
    assert.deepEqual(parseConfigText('# yaml\nport: 8125\n', 'statsd.conf'), { port: 8125 });
    assert.deepEqual(parseConfigText('', 'empty.yaml'), {});
    assert.equal(configError(() => parseConfigText('[1]', 'x.json')).message,
      'x.json: the top level must be an object of settings, got an array');
  });
});

describe('statsd semantics', () => {
  const deletes = (c: Config): boolean[] => [c.deleteCounters, c.deleteTimers, c.deleteSets, c.deleteGauges];

  it('turns deleteIdleStats into every delete* not set explicitly, as stats.js does', () => {
    assert.deepEqual(deletes(load(null).config), [false, false, false, false]);
    assert.deepEqual(deletes(load(null, { deleteIdleStats: true }).config), [true, true, true, true]);
    assert.deepEqual(deletes(load(null, { deleteIdleStats: true, deleteGauges: false }).config), [true, true, true, false]);
    assert.deepEqual(deletes(load(null, { deleteCounters: true }).config), [true, false, false, false]);
    assert.deepEqual(deletes(load(null, { deleteIdleStats: false, deleteSets: true }).config), [false, false, true, false]);
  });

  it('normalises server names and defaults a missing one to udp', () => {
    const { config } = load(null, {
      servers: [{ server: 'udp', port: 1 }, { server: 'tcp', port: 2 }, { server: './servers/udp', port: 3 },
        { server: './servers/tcp', port: 4, maxPacketSize: 1024, recvBufferSize: 65536 }, { port: 5, address_ipv6: true }],
    });
    assert.deepEqual(config.servers, [
      { server: 'udp', address: '0.0.0.0', port: 1, address_ipv6: false, maxPacketSize: 65536, recvBufferSize: 8388608, udpReader: 'auto' },
      { server: 'tcp', address: '0.0.0.0', port: 2, address_ipv6: false, maxPacketSize: 65536, recvBufferSize: 8388608, udpReader: 'auto' },
      { server: 'udp', address: '0.0.0.0', port: 3, address_ipv6: false, maxPacketSize: 65536, recvBufferSize: 8388608, udpReader: 'auto' },
      { server: 'tcp', address: '0.0.0.0', port: 4, address_ipv6: false, maxPacketSize: 1024, recvBufferSize: 65536, udpReader: 'auto' },
      { server: 'udp', address: '::', port: 5, address_ipv6: true, maxPacketSize: 65536, recvBufferSize: 8388608, udpReader: 'auto' },
    ]);
  });

  it('udpReader: auto by default, set per server or for all at the top level, checked', () => {
    const udp = (cfg: Config) => statsdServers(cfg).map((s) => s.udpReader);
    assert.deepEqual(udp(load(null).config), ['auto']);
    assert.deepEqual(udp(load(null, { udpReader: 'dgram', servers: [{ port: 1 }, { port: 2, udpReader: 'native' }] }).config), ['dgram', 'native']);
    assert.equal(configError(() => load(null, { servers: [{ port: 1, udpReader: 'fast' }] })).message,
      'overrides: servers[0].udpReader: must be one of "auto", "native", "dgram", got "fast"');
  });

  it('http: off when absent or null, defaults per key, each key checked', () => {
    assert.equal(load(null).config.http, null);
    assert.equal(load(null, { http: null }).config.http, null);
    assert.deepEqual(load(null, { http: {} }).config.http, DEFAULT_HTTP);
    assert.deepEqual(load(null, { http: { port: 0, address: '::1' } }).config.http, { ...DEFAULT_HTTP, port: 0, address: '::1' });
    assert.equal(configError(() => load(null, { http: { port: 70000 } })).message, 'overrides: http.port: must be an integer port number 0..65535, got 70000');
    assert.equal(configError(() => load(null, { http: { historyMaxBytes: 0 } })).message, 'overrides: http.historyMaxBytes: must be a positive integer, got 0');
    assert.equal(configError(() => load(null, { http: 8127 })).message, 'overrides: http: must be an object, got 8127');
    assert.deepEqual(load(null, { http: { portt: 1 } }).warnings, ['overrides: http.portt: unknown key, ignored (did you mean port?)']);
  });

  it('uses the top-level port/address/server as the single server when servers is absent', () => {
    assert.deepEqual(load(null).config.servers, DEFAULTS.servers);
    assert.deepEqual(load(null, { port: 9125, address: '127.0.0.1' }).config.servers,
      [{ server: 'udp', address: '127.0.0.1', port: 9125, address_ipv6: false, maxPacketSize: 65536, recvBufferSize: 8388608, udpReader: 'auto' }]);
    assert.deepEqual(load(null, { server: './servers/tcp', port: 0 }).config.servers,
      [{ server: 'tcp', address: '0.0.0.0', port: 0, address_ipv6: false, maxPacketSize: 65536, recvBufferSize: 8388608, udpReader: 'auto' }]);
  });

  it('listifies percentThreshold and forces a small or fractional gaugesMaxTTL to 1', () => {
    assert.deepEqual(load(null, { percentThreshold: -95.5 }).config.percentThreshold, [-95.5]);
    assert.equal(load(null, { gaugesMaxTTL: 5 }).config.gaugesMaxTTL, 5);
    const loaded = load(null, { gaugesMaxTTL: 2.5 });
    assert.equal(loaded.config.gaugesMaxTTL, 1);
    assert.deepEqual(loaded.warnings, ['overrides: gaugesMaxTTL: 2.5 is not an integer > 1, so 1 is used (as in statsd)']);
  });

  it('warns about statsd keys it ignores, and about other backends and their settings', () => {
    const { warnings } = load(null, {
      backends: ['./backends/graphite', './backends/console', 'statsd-influxdb-backend'],
      graphiteProtocol: 'pickle', keyFlush: { interval: 1000 }, debug: false, title: 'statsd', influxdb: { host: 'x' },
      log: { backend: 'syslog', level: 'LOG_DEBUG' },
    });
    assert.deepEqual(warnings, [
      'overrides: backends: backend "statsd-influxdb-backend" is not supported by tallyd and is ignored (graphite and console are)',
      "overrides: keyFlush: statsd's frequent-keys log is not implemented; ignored",
      'overrides: title: tallyd does not change its process title; ignored',
      'overrides: influxdb: unknown key, ignored (perhaps a setting of "statsd-influxdb-backend", not loaded by tallyd)',
      'overrides: log.backend: tallyd logs to stderr (pino, log.format); statsd\'s log backend is ignored',
      'overrides: log.level: statsd\'s syslog level "LOG_DEBUG" is read as pino level "debug"',
    ]);
    assert.equal(load(null, { log: { level: 'LOG_DEBUG' } }).config.log.level, 'debug');
  });

  it('reads backends, pickle and the outbox bound; an old outboxMaxChunks warns and is ignored', () => {
    const { config, warnings } = load(null, {
      backends: ['./backends/console', 'graphite'], graphiteProtocol: 'pickle', graphitePicklePort: 2114, outboxMaxChunks: 5,
      console: { prettyprint: true },
    });
    assert.deepEqual(config.backends, ['console', 'graphite']);
    assert.equal(config.graphiteProtocol, 'pickle');
    assert.equal(config.graphitePicklePort, 2114);
    assert.equal(config.console.prettyprint, true);
    assert.equal(config.outboxMaxBytes, 256 * 1024 * 1024);
    assert.equal(config.carbonWriteTimeout, 10_000);
    assert.deepEqual(warnings, ['overrides: outboxMaxChunks: replaced by outboxMaxBytes (the outbox bound is in bytes now); ignored']);
    assert.deepEqual(load(null, {}).config.backends, ['graphite']);
  });
});

describe('layering', () => {
  const file = fixture('same.json');

  it('lets REDIS_URL and TALLYD_* override the file, and overrides beat the environment', () => {
    assert.equal(load(file).config.redis.url, 'redis://10.0.0.5:6380/2');
    assert.equal(load(file, {}, { REDIS_URL: 'redis://env:6379' }).config.redis.url, 'redis://env:6379');
    const env = { REDIS_URL: 'redis://env:6379', TALLYD_REDIS_URL: 'rediss://tallyd:6380', TALLYD_FLUSH_INTERVAL: '2000',
      TALLYD_LOG_LEVEL: 'debug', TALLYD_REDIS_KEY_PREFIX: 'env:' };
    const { config } = load(file, {}, env);
    assert.deepEqual([config.redis.url, config.redis.keyPrefix, config.flushInterval, config.log.level],
      ['rediss://tallyd:6380', 'env:', 2000, 'debug']);
    const over = load(file, { 'redis.keyPrefix': 'flag:', redis: { url: 'redis://flag:1' } }, env).config;
    assert.deepEqual(over.redis, { url: 'redis://flag:1', keyPrefix: 'flag:', shards: 16, nodes: [], username: '', password: '', waitReplicas: 0, waitTimeout: 1000, commandTimeout: 10000, embedded: 'auto' });
    assert.equal(load(file, {}, { REDIS_URL: '' }).config.redis.url, 'redis://10.0.0.5:6380/2');
  });

  it('leaseTtl is at least 500 ms (a member\'s liveness is judged against a quarter and a third of it)', () => {
    assert.equal(load(file, { leaseTtl: 500 }).config.leaseTtl, 500);
    assert.equal(configError(() => load(file, { leaseTtl: 499 })).message,
      'overrides: leaseTtl: must be an integer number of milliseconds, at least 500, got 499');
  });

  it('reads redis.commandTimeout (ms) and rejects a non-positive one', () => {
    assert.equal(load(file, { 'redis.commandTimeout': 250 }).config.redis.commandTimeout, 250);
    assert.equal(configError(() => load(file, { 'redis.commandTimeout': 0 })).message,
      'overrides: redis.commandTimeout: must be a positive integer number of milliseconds, got 0');
  });

  it('reads redis.nodes (a Redis Cluster): host:port entries, not with url; waitReplicas 1 by default with nodes, 0 without', () => {
    const cluster = load(null, { redis: { nodes: ['127.0.0.1:7000', 'redis-b.local:7001', '[::1]:7002'] } }).config.redis;
    assert.deepEqual([cluster.nodes, cluster.waitReplicas, cluster.waitTimeout], [['127.0.0.1:7000', 'redis-b.local:7001', '[::1]:7002'], 1, 1000]);
    assert.equal(load(null).config.redis.waitReplicas, 0);
    assert.equal(load(null, { redis: { nodes: ['h:1'], waitReplicas: 0, waitTimeout: 50 } }).config.redis.waitReplicas, 0);
    assert.equal(configError(() => load(null, { redis: { url: 'redis://h:6379', nodes: ['h:7000'] } })).message,
      'overrides: redis.url: redis.url and redis.nodes are both set: use url for a single Redis, nodes for a Redis Cluster, not both');
    assert.equal(configError(() => load(null, { redis: { nodes: ['h:7000', 'h', 'h:70000', 7000] } })).message, [
      'overrides: redis.nodes[1]: must be "host:port" (port 1..65535), got "h"',
      'overrides: redis.nodes[2]: must be "host:port" (port 1..65535), got "h:70000"',
      'overrides: redis.nodes[3]: must be "host:port" (port 1..65535), got 7000',
    ].join('\n'));
    assert.equal(configError(() => load(null, { redis: { nodes: [] } })).message,
      'overrides: redis.nodes: must list at least one "host:port" (or leave it out for a single Redis at url)');
    assert.equal(configError(() => load(null, { redis: { nodes: ['h:1'], waitReplicas: -1 } })).message,
      'overrides: redis.waitReplicas: must be an integer 0..16 (replicas that confirm each merge), got -1');
  });

  it('reads redis.username / redis.password (TALLYD_REDIS_PASSWORD wins); a bad one is never quoted; not with a password in url', () => {
    const seeds = ['h:7000'];
    assert.deepEqual(load(null, { redis: { nodes: seeds } }).config.redis.password, '');
    const acl = load(null, { redis: { nodes: seeds, username: 'tallyd', password: 'pw1' } }).config.redis;
    assert.deepEqual([acl.username, acl.password], ['tallyd', 'pw1']);
    const withPassword = tempFile('pw.json', JSON.stringify({ redis: { nodes: seeds, password: 'pw-file' } }));
    assert.equal(load(withPassword).config.redis.password, 'pw-file');
    assert.equal(load(withPassword, {}, { TALLYD_REDIS_PASSWORD: 'pw-env' }).config.redis.password, 'pw-env');
    assert.equal(load(null, {}, { TALLYD_REDIS_PASSWORD: 'pw-env' }).config.redis.password, 'pw-env');
    assert.equal(configError(() => load(null, { redis: { nodes: seeds, password: 12345678 } })).message,
      'overrides: redis.password: must be a string, got a number (not shown)');
    assert.equal(configError(() => load(null, { redis: { nodes: seeds, username: 'tallyd' } })).message,
      'overrides: redis.username: needs redis.password (Redis authenticates a user with its password)');
    assert.equal(configError(() => load(null, { redis: { url: 'redis://:pw0@h:6379', password: 'pw1' } })).message,
      'overrides: redis.password: and the user or password in redis.url are both set: give the credentials in one place');
    assert.equal(load(null, { redis: { url: 'redis://h:6379', password: 'pw1' } }).config.redis.password, 'pw1');
  });

  it('names the environment variable behind a bad value', () => {
    const err = configError(() => load(file, {}, { TALLYD_FLUSH_INTERVAL: 'abc', REDIS_URL: 'localhost:6379' }));
    assert.deepEqual(err.message.split('\n'), [
      'env TALLYD_FLUSH_INTERVAL: flushInterval: must be a positive integer number of milliseconds, got "abc"',
      'env REDIS_URL: redis.url: must start with redis:// or rediss://, got "localhost:6379"',
    ]);
  });
});

describe('errors', () => {
  it('reports a syntax error with file, line and column', () => {
    const file = fixture('bad-syntax.js');
    const err = configError(() => load(file));
    assert.equal(err.code, 'ECONFIG');
    assert.equal(err.file, file);
    assert.equal(err.message,
      `${file}:4:23: syntax error: invalid character ';' (an object literal of plain values is expected; code is not run)`);
    assert.ok(err.cause instanceof SyntaxError);
    assert.match(configError(() => load(fixture('bad-syntax.json'))).message,
      new RegExp(`^${fixture('bad-syntax.json')}:3:3: syntax error: .*\\(strict JSON; use a \\.js file for comments\\)$`));
    assert.match(configError(() => load(fixture('bad-syntax.yaml'))).message,
      new RegExp(`^${fixture('bad-syntax.yaml')}:3:1: syntax error: \\S`));
  });

  it('warns about unknown keys, suggesting the closest known one, and ignores them (as statsd does)', () => {
    const file = fixture('unknown-key.js');
    const { config, warnings } = load(file);
    assert.deepEqual(warnings, [
      `${file}: flushInteval: unknown key, ignored (did you mean flushInterval?)`,
      `${file}: redis.keyprefix: unknown key, ignored (did you mean keyPrefix?)`,
      `${file}: frobnicate: unknown key, ignored`,
    ]);
    assert.equal(config.flushInterval, DEFAULTS.flushInterval);
    assert.equal(config.redis.keyPrefix, DEFAULTS.redis.keyPrefix);
  });

  it('rejects unknown keys with strictConfig: true, all at once, still suggesting', () => {
    const file = fixture('unknown-key.js');
    assert.equal(configError(() => load(file, { strictConfig: true })).message, [
      `${file}: flushInteval: unknown key (did you mean flushInterval?)`,
      `${file}: redis.keyprefix: unknown key (did you mean keyPrefix?)`,
      `${file}: frobnicate: unknown key`,
    ].join('\n'));
    // statsd keys tallyd ignores, and settings of another listed backend, still only warn.
    const { warnings } = load(null, { strictConfig: true, backends: ['graphite', 'statsd-librato-backend'], librato: {}, title: 'x' });
    assert.equal(warnings.length, 3);
    assert.equal(configError(() => load(null, { strictConfig: 'yes' })).message, 'overrides: strictConfig: must be true or false, got "yes"');
  });

  it('lists every wrong value in one error', () => {
    const file = fixture('bad-types.js');
    const err = configError(() => load(file));
    assert.equal(err.message, [
      `${file}: flushInterval: must be a positive integer number of milliseconds, got "abc"`,
      `${file}: deleteIdleStats: must be true or false, got "yes"`,
      `${file}: percentThreshold[1]: must be a non-zero number between -100 and 100, got 0`,
      `${file}: percentThreshold[2]: must be a non-zero number between -100 and 100, got 150`,
      `${file}: servers[0].server: must be "udp", "tcp", "zmq", "./servers/udp" or "./servers/tcp", got "./servers/sctp"`,
      `${file}: servers[0].port: must be an integer port number 0..65535, got 70000`,
      `${file}: graphite.legacyNamespace: must be true or false, got 1`,
      `${file}: redis.url: must start with redis:// or rediss://, got "http://127.0.0.1:6379"`,
      `${file}: log.level: must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent", got "verbose"`,
      `${file}: gaugesMaxTTL: must be an integer number of flushes, got "3"`,
    ].join('\n'));
    assert.equal(err.problems.length, 10);
    assert.deepEqual(err.problems[0], { key: 'flushInterval', reason: 'must be a positive integer number of milliseconds, got "abc"' });
  });

  it('checks batchInterval against flushInterval', () => {
    assert.equal(configError(() => load(null, { flushInterval: 1000, batchInterval: 1000 })).message,
      'overrides: batchInterval: must be less than flushInterval (1000), got 1000');
  });

  it('derives an unset batchInterval from flushInterval: half of it, at most 200 ms', () => {
    const batch = (flushInterval: number): number => load(null, { flushInterval }).config.batchInterval;
    assert.deepEqual([batch(10_000), batch(400), batch(200), batch(100), batch(3), batch(2)], [200, 200, 100, 50, 1, 1]);
    assert.equal(load(null, {}, { TALLYD_FLUSH_INTERVAL: '100' }).config.batchInterval, 50);
    assert.equal(load(null, { flushInterval: 100, batchInterval: 20 }).config.batchInterval, 20);
    assert.equal(configError(() => load(null, { flushInterval: 1 })).message,
      'overrides: flushInterval: must be greater than batchInterval (1), got 1');
  });

  it('refuses a config file over 1 MiB unread, naming the file', () => {
    const file = tempFile('big.js', `{ flushInterval: 1000, x: "${'a'.repeat(MAX_CONFIG_BYTES)}" }`);
    assert.equal(configError(() => load(file)).message,
      `${file}: the config file is too large: ${MAX_CONFIG_BYTES + 30} bytes, the limit is ${MAX_CONFIG_BYTES} (1 MiB)`);
  });

  it('reads a large .js file without a string per character', () => {
    const text = `module.exports = ({ flushInterval: 1000, x: "${'a'.repeat(MAX_CONFIG_BYTES - 100)}" });`;
    const split = String.prototype.split;
    let splits = 0;
    String.prototype.split = function (this: string, ...args: Parameters<typeof split>) {
      if (this.length > 1000) splits++;
      return split.apply(this, args);
    } as typeof split;
    try {
      assert.equal(parseConfigText(text, 'big.js')['flushInterval'], 1000);
    } finally {
      String.prototype.split = split;
    }
    assert.equal(splits, 0);
  });

  it('turns every parser failure into a ConfigError naming the file: YAML alias bomb, JSON5, deep nesting', () => {
    let bomb = 'a: &a [x, x, x, x, x, x, x, x, x]\n';
    let prev = 'a';
    for (const name of 'bcdefghi') {
      bomb += `${name}: &${name} [${Array(9).fill(`*${prev}`).join(', ')}]\n`;
      prev = name;
    }
    assert.equal(configError(() => parseConfigText(bomb, 'bomb.yaml')).message,
      `bomb.yaml: too many YAML aliases (more than ${MAX_YAML_ALIASES} expansions; an alias bomb?)`);
    assert.equal(configError(() => parseConfigText('{ a: }', 'x.json5')).message,
      "x.json5:1:6: syntax error: invalid character '}' (an object literal of plain values is expected; code is not run)");
    const deep = `a: ${'['.repeat(200_000)}${']'.repeat(200_000)}\n`;
    assert.match(configError(() => parseConfigText(deep, 'deep.yaml')).message, /^deep\.yaml(:\d+:\d+)?: .+/);
  });

  it('names a missing file', () => {
    const file = fixture('missing.js');
    const err = configError(() => load(file));
    assert.equal(err.message, `${file}: cannot read the config file: ENOENT (no such file or directory)`);
    assert.equal((err.cause as NodeJS.ErrnoException).code, 'ENOENT');
  });
});

describe('ZeroMQ servers', () => {
  it('reads zmq entries of servers with their defaults, beside udp and tcp ones', () => {
    const { config, warnings } = load(null, {
      servers: [
        { server: 'udp', port: 8125 },
        { server: 'zmq' },
        { server: './servers/zmq', bind: 'ipc:///run/tallyd/status.sock', type: 'pull', mode: 'passthrough', prefix: 'servers.',
          maxMessageSize: 4096, highWaterMark: 100 },
        { server: 'zmq', bind: 'tcp://127.0.0.1:0' },
        { server: 'zmq', bind: 'tcp://*:*' },
      ],
    });
    assert.deepEqual(warnings, []);
    assert.deepEqual(config.servers.slice(1), [
      { server: 'zmq', bind: 'tcp://0.0.0.0:5555', type: 'sub', mode: 'aggregate', prefix: '', maxMessageSize: 1048576, highWaterMark: 10000 },
      { server: 'zmq', bind: 'ipc:///run/tallyd/status.sock', type: 'pull', mode: 'passthrough', prefix: 'servers.',
        maxMessageSize: 4096, highWaterMark: 100 },
      { server: 'zmq', bind: 'tcp://127.0.0.1:0', type: 'sub', mode: 'aggregate', prefix: '', maxMessageSize: 1048576, highWaterMark: 10000 },
      { server: 'zmq', bind: 'tcp://*:*', type: 'sub', mode: 'aggregate', prefix: '', maxMessageSize: 1048576, highWaterMark: 10000 },
    ]);
  });

  it('reports every bad zmq key at once, unknown keys included', () => {
    assert.deepEqual(load(null, { servers: [{ server: 'zmq', port: 5555 }] }).warnings, ['overrides: servers[0].port: unknown key, ignored']);
    const err = configError(() => load(null, { strictConfig: true,
      servers: [
        { server: 'zmq', bind: 'tcp://0.0.0.0', type: 'push', mode: 'raw', prefix: 'a b', maxMessageSize: 0, port: 5555 },
        { server: 'zmq', bind: 'tcp://0.0.0.0:70000' },
        { server: 'zmq', bind: 'http://0.0.0.0:5555', highWaterMark: '10' },
      ],
    }));
    assert.deepEqual(err.message.split('\n'), [
      'overrides: servers[0].port: unknown key',
      'overrides: servers[0].bind: must be "tcp://host:port" (port 0..65535 or *) or "ipc:///path", got "tcp://0.0.0.0"',
      'overrides: servers[0].type: must be "sub" or "pull", got "push"',
      'overrides: servers[0].mode: must be "aggregate" or "passthrough", got "raw"',
      'overrides: servers[0].prefix: must not contain whitespace or \';\' (it is prepended to metric names), got "a b"',
      'overrides: servers[0].maxMessageSize: must be a positive integer, got 0',
      'overrides: servers[1].bind: must be "tcp://host:port" (port 0..65535 or *) or "ipc:///path", got "tcp://0.0.0.0:70000"',
      'overrides: servers[2].bind: must be "tcp://host:port" (port 0..65535 or *) or "ipc:///path", got "http://0.0.0.0:5555"',
      'overrides: servers[2].highWaterMark: must be a positive integer, got "10"',
    ]);
  });

  it('rejects two zmq servers on one endpoint, and a zmq server outside servers', () => {
    assert.equal(configError(() => load(null, { servers: [{ server: 'zmq', bind: 'tcp://0.0.0.0:5555' }, { server: 'zmq' }] })).message,
      'overrides: servers[1]: listens on the same zmq tcp://0.0.0.0:5555 as servers[0]');
    assert.equal(configError(() => load(null, { server: 'zmq' })).message,
      'overrides: server: ZeroMQ servers are entries of servers, e.g. servers: [{ server: "zmq", bind: "tcp://0.0.0.0:5555" }]');
  });
});

describe('redis.waitTimeout', () => {
  it('defaults to 1000 ms, at most half of redis.commandTimeout; set at or above commandTimeout it is an error', () => {
    assert.equal(load(null).config.redis.waitTimeout, 1000);
    assert.equal(load(null, { 'redis.commandTimeout': 250 }).config.redis.waitTimeout, 125);
    assert.equal(configError(() => load(null, { 'redis.waitTimeout': 3000, 'redis.commandTimeout': 1000 })).message,
      'overrides: redis.waitTimeout: must be less than redis.commandTimeout (1000), got 3000');
  });
});
