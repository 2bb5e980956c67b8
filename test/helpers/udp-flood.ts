/**
 * Datagrams sent from a child process while this process's event loop is
 * blocked (spawnSync): they pile up in the kernel's queue for the socket, as
 * under a burst that arrives during a pause.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

export function floodWhileBlocked(port: number, count: number, line: string): void {
  const script = `
    const s = require('node:dgram').createSocket('udp4');
    const msg = Buffer.from(${JSON.stringify(line)});
    let sent = 0;
    const next = () => { if (sent++ === ${count}) return s.close(); s.send(msg, ${port}, '127.0.0.1', next); };
    next();`;
  const r = spawnSync(process.execPath, ['-e', script], { stdio: 'inherit', timeout: 30_000 });
  assert.equal(r.status, 0, 'the sender finished');
}
