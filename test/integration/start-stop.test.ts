/**
 * Starting and stopping the way a user does: `npm start -- <config>` and a
 * SIGTERM to the npm process stop tallyd itself (no orphaned node child
 * keeping the ports); so does a SIGTERM to `npm exec <bin>` (how npx runs tallyd), where npm's shell stays
 * between npm and node and dies without passing the signal on (tallyd sees
 * its parent go). A SIGINT or SIGTERM to the whole process group of `npm start`
 * (a supervisor's or CI runner's cancel; a terminal's Ctrl-C is the same) reaches
 * tallyd twice, from the group and from npm passing it on, and is still one clean
 * stop. Real npm, real sockets, the shared Redis.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { freePort, freeUdpPort } from '../helpers/carbon.js';
import { cleanup, REDIS_URL, testPrefix } from '../helpers/redis.js';
import { ROOT, testConfig } from '../helpers/tallyd.js';

const STOP_TIMEOUT_MS = 5000;
/** The flush thread gets 3 s past stopTimeout to let go (README, stopTimeout). */
const STOP_GRACE_MS = 3000 + 2000;

const dir = mkdtempSync(path.join(tmpdir(), 'tallyd-start-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Ports {
  udp: number;
  tcp: number;
  mgmt: number;
}

/** carbonPort: where tallyd sends its periods (null: to no Carbon). */
function writeConfig(name: string, prefix: string, ports: Ports, carbonPort: number | null = null): string {
  const file = path.join(dir, name);
  writeFileSync(file, JSON.stringify(testConfig(prefix, carbonPort, {
    servers: [{ server: 'udp', address: '127.0.0.1', port: ports.udp }, { server: 'tcp', address: '127.0.0.1', port: ports.tcp }],
    mgmt_port: ports.mgmt,
    stopTimeout: STOP_TIMEOUT_MS,
    redis: { url: REDIS_URL, keyPrefix: prefix, embedded: 'never' },
    log: { level: 'info' },
  })));
  return file;
}

/** npm with args; detached: in a process group of its own (npm leads it), as a supervisor or a CI runner starts a job. */
function npm(args: string[], detached = false): { proc: ChildProcess; output: () => string } {
  const env = { ...process.env };
  delete env.REDIS_URL;
  delete env.TALLYD_REDIS_URL;
  const proc = spawn('npm', args, { cwd: ROOT, env, detached, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return { proc, output: () => out };
}

async function waitFor(what: string, cond: () => boolean, timeoutMs: number, output: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Binds all three ports, proving nothing holds them, and lets go. */
async function assertFree(ports: Ports): Promise<void> {
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(ports.udp, '127.0.0.1', () => resolve());
  });
  udp.close();
  for (const port of [ports.tcp, ports.mgmt]) {
    const srv = net.createServer();
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', () => resolve());
    });
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  }
}

/** Starts `npm <args> <config>`, waits until tallyd is up, SIGTERMs npm; tallyd must be gone and the ports free. */
async function startAndTerm(args: string[], name: string): Promise<string> {
  const prefix = testPrefix(name);
  const ports = { udp: await freeUdpPort(), tcp: await freePort(), mgmt: await freePort() };
  const file = writeConfig(`${name}.json`, prefix, ports);
  const child = npm([...args, file]);
  const npmExited = new Promise<void>((resolve) => child.proc.on('exit', () => resolve()));
  try {
    // The first start in a fresh checkout builds dist/ first.
    const pid = await waitUntilUp(child);
    assert.notEqual(pid, child.proc.pid);
    child.proc.kill('SIGTERM');
    await npmExited;
    await waitFor(`tallyd (pid ${pid}) to exit`, () => !running(pid), STOP_TIMEOUT_MS + STOP_GRACE_MS, child.output);
    await assertFree(ports);
    assert.match(child.output(), /"msg":"tallyd stopped"/);
    return child.output();
  } finally {
    child.proc.kill('SIGKILL');
    await cleanup(prefix);
  }
}

/** The pid tallyd logs in its "tallyd is up" line, once it is up. */
async function waitUntilUp(child: { proc: ChildProcess; output: () => string }): Promise<number> {
  await waitFor('tallyd is up', () => {
    if (child.proc.exitCode !== null) throw new Error(`npm exited (${child.proc.exitCode}) before tallyd was up:\n${child.output()}`);
    return child.output().includes('"msg":"tallyd is up"');
  }, 180_000, child.output);
  const up = child.output().split('\n').find((l) => l.includes('"msg":"tallyd is up"')) ?? '';
  return (JSON.parse(up) as { pid: number }).pid;
}

/**
 * Starts `npm <args> <config>` in a process group of its own, waits until tallyd is up, sends sig to the whole
 * group; npm must exit with npmExit (`npm start` exits with tallyd's code), tallyd after one stop that ran to its
 * end and no "second signal". slowStop: Carbon refuses connections, so the stop drains the outbox for stopTimeout.
 */
async function startAndSignalGroup(args: string[], sig: 'SIGINT' | 'SIGTERM', name: string, npmExit: number | string, slowStop = false): Promise<string> {
  const prefix = testPrefix(name);
  const ports = { udp: await freeUdpPort(), tcp: await freePort(), mgmt: await freePort() };
  const child = npm([...args, writeConfig(`${name}.json`, prefix, ports, slowStop ? await freePort() : null)], true);
  const npmExited = new Promise<number | string>((resolve) => child.proc.on('exit', (code, s) => resolve(code ?? s ?? -1)));
  const group = child.proc.pid!;
  try {
    const pid = await waitUntilUp(child);
    assert.notEqual(pid, group);
    if (slowStop) await waitFor('lines in the outbox', () => child.output().includes('delivery lost; its lines stay in the outbox'), 10_000, child.output);
    process.kill(-group, sig);
    assert.equal(await npmExited, npmExit, child.output());
    await waitFor(`tallyd (pid ${pid}) to exit`, () => !running(pid), STOP_TIMEOUT_MS + STOP_GRACE_MS, child.output);
    await assertFree(ports);
    const out = child.output();
    assert.doesNotMatch(out, /second signal/);
    assert.equal(out.split('\n').filter((l) => l.includes('"msg":"stopping"')).length, 1, out);
    assert.match(out, new RegExp(`"sig":"${sig}","msg":"stopping"`));
    assert.match(out, /"msg":"tallyd stopped"/);
    return out;
  } finally {
    try {
      process.kill(-group, 'SIGKILL');
    } catch {
      // the group is gone already
    }
    await cleanup(prefix);
  }
}

describe('start and stop', () => {
  test('npm start -- <config>: rebuilds when a source changed, not again; SIGTERM to npm stops tallyd and frees its ports', async () => {
    const now = new Date();
    utimesSync(path.join(ROOT, 'src', 'main.ts'), now, now);
    // 'dist/main.js is missing' on a checkout that was never built.
    assert.match(await startAndTerm(['start', '--'], 'npm-start'), /building dist\/ \((sources changed since the last build|dist\/main\.js is missing)\)/);
    // The launcher's build is npm run build's (scripts/build.mjs): the Lua scripts and the status page are there too.
    for (const file of ['dist/store/scripts/mergeBatch-11.lua', 'dist/http/page/index.html']) {
      assert.ok(existsSync(path.join(ROOT, file)), `${file} after the launcher's build`);
    }
    const again = await startAndTerm(['start', '--'], 'npm-start-2');
    assert.doesNotMatch(again, /building dist/);
  });

  test('npm exec of the bin (as npx tallyd runs it; a shell stays between npm and node): SIGTERM to npm still stops tallyd', async () => {
    // dist/ up to date first: the launcher builds it when stale, then prints the version.
    const build = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'start.mjs'), '--version'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(build.status, 0, build.stderr);
    // Not `npx tallyd` itself: in the repo, npx installs the checkout into its cache the first time, which runs the
    // install script (node-gyp rebuild of build/ in the checkout). npm exec runs the bin the same way: `sh -c "<bin> <args>"`
    // (the installed bin is a link to dist/main.js, whose #!/usr/bin/env node execs node).
    const out = await startAndTerm(['exec', '--', 'node', path.join(ROOT, 'dist', 'main.js')], 'npm-exec');
    assert.match(out, /the shell npm started tallyd with went away/);
  });

  test('SIGINT, then SIGTERM, to the process group of npm start (tallyd gets it from the group and from npm): one clean stop, exit 0', async () => {
    // Three rounds each: a group signal reaches tallyd twice unless the kernel merges npm's copy into the pending one.
    for (let round = 0; round < 3; round++) {
      await startAndSignalGroup(['start', '--'], 'SIGINT', `npm-group-int-${round}`, 0);
      await startAndSignalGroup(['start', '--'], 'SIGTERM', `npm-group-term-${round}`, 0);
    }
  });

  test('SIGTERM to the process group of npm exec during a stop longer than a parent poll: the shell going is no second signal', async () => {
    // npm exec's shell dies of the group's SIGTERM while tallyd drains its outbox to a Carbon that refuses; npm then
    // kills itself with the signal its child died of.
    const build = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'start.mjs'), '--version'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(build.status, 0, build.stderr);
    const out = await startAndSignalGroup(['exec', '--', 'node', path.join(ROOT, 'dist', 'main.js')], 'SIGTERM', 'npm-exec-group', 'SIGTERM', true);
    assert.match(out, /the shell npm started tallyd with went away/);
  });
});
