/**
 * A CPU profile of a built tallyd under loadgen load: starts `node --cpu-prof
 * <dist>/main.js` (UDP on a free port, its own Redis key prefix, a Carbon
 * listener that discards), sends a bench/lib/load.ts corpus with loadgen at a
 * fixed rate, stops tallyd with SIGINT (which writes the profiles: one per
 * thread), prints tallyd's CPU and the main thread's top functions.
 *
 *   npm run build && node --import tsx bench/profile/profile-daemon.ts [--mode mixed-32] [--rate 30000] [--seconds 6]
 *        [--dist dist] [--out bench/results/profiles] [--with-names 100000]
 *
 * --with-names N adds the scale curves' load at the same time (N distinct
 * counter names, each twice per 2 s flush, from a second loadgen), as in
 * the "ingest during 100k-name flushes" check.
 * --rate is datagrams/s (ZeroMQ modes, e.g. --mode zmq-push-100: messages/s, sent by bench/lib/zmq-loadgen.ts to a
 * PULL or SUB socket). loadgen must be built (bench/results/.build/loadgen: any `npm run bench` builds it).
 */
import { execFileSync, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Corpus, parseMode } from '../lib/load.js';
import { startZmqSender } from '../lib/loadgen.js';
import { scaleRate } from '../scale/scale-suite.js';
import { PER_DATAGRAM, writeScaleCorpus } from '../scale/scale-stats.js';
import { ROOT } from '../lib/servers.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

const mode = parseMode(arg('mode', 'mixed-32'));
const rate = Number(arg('rate', '30000'));
const seconds = Number(arg('seconds', '6'));
const withNames = Number(arg('with-names', '0'));
const dist = path.resolve(arg('dist', path.join(ROOT, 'dist')));
const out = path.resolve(arg('out', path.join(ROOT, 'bench', 'results', 'profiles')));
const loadgen = path.join(ROOT, 'bench', 'results', '.build', 'loadgen');

function freePort(type: 'tcp' | 'udp'): Promise<number> {
  if (type === 'udp') {
    const s = dgram.createSocket('udp4');
    return new Promise((resolve) => s.bind(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    }));
  }
  const s = net.createServer();
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => {
    const p = (s.address() as net.AddressInfo).port;
    s.close(() => resolve(p));
  }));
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tallyd-profile-'));
  const corpus = path.join(dir, 'corpus.bin');
  new Corpus(mode, 1000, corpus);
  const carbon = net.createServer((sock) => sock.resume());
  await new Promise<void>((r) => carbon.listen(0, '127.0.0.1', r));
  const udpPort = await freePort('udp');
  const zmq = mode.transport === 'udp' ? null : { port: await freePort('tcp'), type: mode.transport === 'zmq-push' ? ('push' as const) : ('pub' as const) };
  const prefix = `tallyd-profile:${process.pid}:`;
  const cfg = {
    mgmt_address: '127.0.0.1',
    mgmt_port: await freePort('tcp'),
    graphiteHost: '127.0.0.1',
    graphitePort: (carbon.address() as net.AddressInfo).port,
    flushInterval: 2000,
    batchInterval: 200,
    servers: [
      { server: 'udp', address: '127.0.0.1', port: udpPort },
      ...(zmq ? [{ server: 'zmq', bind: `tcp://127.0.0.1:${zmq.port}`, type: zmq.type === 'push' ? 'pull' : 'sub', mode: 'aggregate' }] : []),
    ],
    redis: { url: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379', keyPrefix: prefix },
    log: { level: 'info' },
  };
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
  const profDir = path.join(out, `${mode.name}-${Date.now()}`);
  const proc = spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${profDir}`, path.join(dist, 'main.js'), path.join(dir, 'config.json')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    proc.stderr.on('data', (d: Buffer) => {
      if (log.length < 100_000) log += d.toString();
      if (log.includes('listening for statsd on udp') && (!zmq || log.includes('listening for zeromq'))) resolve();
    });
    proc.on('exit', (code) => reject(new Error(`tallyd exited (${code}):\n${log}`)));
  });
  let scale: ReturnType<typeof spawn> | null = null;
  if (withNames) {
    const scaleCorpus = path.join(dir, 'scale.bin');
    writeScaleCorpus(withNames, scaleCorpus);
    const dps = scaleRate(withNames) / PER_DATAGRAM;
    scale = spawn(loadgen, [scaleCorpus, String(udpPort), String(dps), String(Math.round(dps * (seconds + 4)))], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 2000));
  }
  const report = zmq
    ? JSON.stringify(await (await startZmqSender(corpus, `tcp://127.0.0.1:${zmq.port}`, zmq.type, rate, rate * seconds, seconds * 3)).go())
    : execFileSync(loadgen, [corpus, String(udpPort), String(rate), String(rate * seconds)], { encoding: 'utf8' });
  scale?.kill();
  const stat = readFileSync(`/proc/${proc.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const cpu = (Number(stat[11]) + Number(stat[12])) / 100; // utime + stime, clock ticks (CLK_TCK 100)
  proc.kill('SIGINT');
  await new Promise((r) => proc.once('exit', r));
  carbon.close();
  execFileSync('sh', ['-c', `redis-cli --scan --pattern '${prefix}*' | xargs -r redis-cli del > /dev/null`]);
  rmSync(dir, { recursive: true, force: true });
  console.log(`${mode.name} at ${rate} ${zmq ? 'messages' : 'datagrams'}/s (${rate * mode.perDatagram} metrics/s) for ${seconds} s; loadgen ${report.trim()}`);
  if (withNames) console.log(`plus ${withNames} distinct names at ${scaleRate(withNames)} metrics/s, from 2 s before`);
  console.log(`tallyd CPU (utime + stime, all threads): ${cpu.toFixed(2)} s`);
  // The main thread's profile is the largest (the flush thread mostly waits).
  const files = readdirSync(profDir).map((f) => path.join(profDir, f)).sort((a, b) => statSync(b).size - statSync(a).size);
  execFileSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'profile', 'profile-top.ts'), files[0]!, '16'], { stdio: 'inherit' });
}

await main();
