/**
 * UdpDropsSampler on a fake /proc: only rows on a watched port whose inode is
 * one of "this process's" descriptors count; a shared socket counts from its
 * first sample; the 32-bit drops column wraps.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { createLogger } from '../../src/observability/logger.js';
import { parseProcNetUdp, UdpDropsSampler } from '../../src/observability/udp-drops.js';

const HEADER = '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n';

function row(sl: number, port: number, inode: number, drops: number): string {
  const p = port.toString(16).toUpperCase().padStart(4, '0');
  return `  ${sl}: 0100007F:${p} 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 ${inode} 2 0000000000000000 ${drops}\n`;
}

const root = mkdtempSync(path.join(tmpdir(), 'tallyd-proc-'));
mkdirSync(path.join(root, 'net'));
mkdirSync(path.join(root, 'self', 'fd'), { recursive: true });
after(() => rmSync(root, { recursive: true, force: true }));

function table(file: 'udp' | 'udp6', rows: string[]): void {
  writeFileSync(path.join(root, 'net', file), HEADER + rows.join(''));
}
function holdSocket(fd: number, inode: number): void {
  symlinkSync(`socket:[${inode}]`, path.join(root, 'self', 'fd', String(fd)));
}

const log = createLogger('silent');

describe('parseProcNetUdp', () => {
  it('reads port (hex), inode and drops; skips the header and short lines', () => {
    assert.deepEqual(parseProcNetUdp(HEADER + row(0, 8125, 4242, 7) + 'junk\n'), [{ port: 8125, inode: 4242, drops: 7 }]);
  });
});

describe('UdpDropsSampler', () => {
  it('counts its own sockets from 0 and ignores another socket on the same port', async () => {
    holdSocket(20, 111); // ours, ipv4
    holdSocket(21, 222); // ours, ipv6
    holdSocket(22, 999); // ours but on a port nobody watches
    table('udp', [row(0, 8125, 111, 5), row(1, 8125, 333, 1000), row(2, 9999, 999, 50)]); // 333: another process, SO_REUSEPORT
    table('udp6', [row(0, 8126, 222, 2)]);
    const stats = { udpKernelDrops: 0 };
    const s = new UdpDropsSampler(stats, log, 1000, root);
    s.watch({ port: 8125, shared: false });
    s.watch({ port: 8126, shared: false });
    await s.sample();
    assert.equal(stats.udpKernelDrops, 7);
    table('udp', [row(0, 8125, 111, 9), row(1, 8125, 333, 5000)]);
    table('udp6', [row(0, 8126, 222, 2)]);
    await s.sample();
    assert.equal(stats.udpKernelDrops, 11);
  });

  it('counts a shared socket from its first sample, and across the 32-bit wrap', async () => {
    holdSocket(30, 444);
    table('udp', [row(0, 8200, 444, 2 ** 32 - 10)]);
    table('udp6', []);
    const stats = { udpKernelDrops: 0 };
    const s = new UdpDropsSampler(stats, log, 1000, root);
    s.watch({ port: 8200, shared: true });
    await s.sample();
    assert.equal(stats.udpKernelDrops, 0, 'drops before this process watched it were counted by its predecessor');
    table('udp', [row(0, 8200, 444, 5)]);
    await s.sample();
    assert.equal(stats.udpKernelDrops, 15);
  });

  it('does nothing (and does not throw) without /proc/net/udp', async () => {
    const stats = { udpKernelDrops: 0 };
    const s = new UdpDropsSampler(stats, log, 1000, path.join(root, 'nope'));
    s.watch({ port: 8125, shared: false });
    await s.sample();
    await s.stop();
    assert.equal(stats.udpKernelDrops, 0);
  });
});
