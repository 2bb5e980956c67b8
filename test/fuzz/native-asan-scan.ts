/**
 * Fuzz section: the ZeroMQ scanner (zmqScan, zmq_scan.c). Kept in this one
 * file (and one call in native-asan.ts) so it goes with the scanner if that
 * is removed. It calls lib.zmqScan directly, in both forms: 10 arguments
 * (buf, start, end, seed, types, values, rates, nameOff, nameLen, nameHash)
 * and 18 (plus a real KeyInternTable's lookupTables() holding some of the
 * names), over JSON item arrays and objects with huge, tiny, odd numbers,
 * escapes, UTF-8, deep nesting, then bit flips, truncation at every byte and
 * other mutations, at windows [start, end) inside a larger Buffer and with
 * item arrays too small (-2). Every answer must be -1, -2 or 0..capacity,
 * with every name inside the window.
 */
import assert from 'node:assert/strict';
import type { TallydAddon } from '../../src/native/addon.js';
import { finishHash, hashBytes, INTERN_MAX_PROBE, KeyInternTable } from '../../src/parse/key-intern.js';
import { exact, type Gen, truncations } from './mutate.js';

const NUMBERS = ['0', '-0', '1', '-1', '1.5', '1e308', '1e309', '-1e999', '4.9e-324', '1e-400', '0.1e1', '00', '01', '1.', '.5', '-', '1e', '1e+', '+1',
  '9'.repeat(400), `0.${'1'.repeat(400)}`, '123456789012345678901234567890', 'NaN', 'Infinity', '0x10', '1_000', 'true', 'null', '"1"', '[]', '{}'];

function item(g: Gen, names: readonly string[]): string {
  const members: string[] = [];
  const order = ['name', 'value', 'time', 'type', 'rate', 'extra'].filter(() => g.int(8) > 0);
  for (const k of order) {
    if (k === 'name') members.push(`"name": ${g.int(10) === 0 ? `"esc\\"ape\\u00e9${g.int(9)}"` : g.int(10) === 0 ? '"ünï.cödé"' : `"${g.pick(names)}"`}`);
    else if (k === 'value') members.push(`"value": ${g.pick(NUMBERS)}`);
    else if (k === 'time') members.push(`"time": ${g.pick(['1796000000', '1796000000.5', '-1', '1e20', '"now"'])}`);
    else if (k === 'type') members.push(`"type": "${g.pick(['c', 'g', 'ms', 'h', 'd', 's', 'x', ''])}"`);
    else if (k === 'rate') members.push(`"rate": ${g.pick(['0.5', '1', '0', '-1', '2', '1e-320', '"0.1"'])}`);
    else members.push(`"${g.pick(['tags', 'host', 'n'])}": ${g.pick(['"a"', '1', 'true', 'null', '["x"]', '{"k": 1}'])}`);
  }
  if (g.int(20) === 0) members.push(members[0] ?? '"name": "dup"'); // a duplicated member
  return `{${members.join(g.pick([',', ', ', ' ,\n\t']))}}`;
}

function message(g: Gen, names: readonly string[]): Buffer {
  switch (g.int(8)) {
    case 0:
      return Buffer.from(item(g, names));
    case 1: {
      const depth = 1 + g.int(20_000);
      return Buffer.from(`${'['.repeat(depth)}${g.int(2) ? item(g, names) : '1'}${']'.repeat(depth)}`);
    }
    case 2:
      return Buffer.from(`[${'{"name": "n", "value": {"v": '.repeat(1 + g.int(5_000))}1${'}}'.repeat(g.int(5_000))}]`);
    default:
      return Buffer.from(` [ ${Array.from({ length: g.int(80) }, () => item(g, names)).join(', ')} ] `);
  }
}

/** One call at a window [off, off + msg.length) of a Buffer with room on either side; checks the answer's bounds. */
function scan(lib: TallydAddon, g: Gen, msg: Buffer, intern: KeyInternTable, what: string): number {
  const before = g.int(3) === 0 ? 0 : g.int(16);
  const afterLen = g.int(3) === 0 ? 0 : g.int(16);
  const buf = exact(before + msg.length + afterLen);
  msg.copy(buf, before);
  const start = before;
  const end = before + msg.length;
  const cap = g.pick([0, 1, 2, 8, 64, 256]);
  const types = new Uint8Array(cap);
  const values = new Float64Array(cap);
  const rates = new Float64Array(cap);
  const nameOff = new Int32Array(cap);
  const nameLen = new Int32Array(cap);
  const nameHash = new Int32Array(cap);
  const t = g.int(2) === 0 ? intern.lookupTables() : null;
  const entries = new Int32Array(cap);
  const n = t === null
    ? lib.zmqScan(buf, start, end, intern.seed >>> 0, types, values, rates, nameOff, nameLen, nameHash)
    : lib.zmqScan(buf, start, end, intern.seed >>> 0, types, values, rates, nameOff, nameLen, nameHash,
      entries, t.slots, t.slotHash, t.entryOff, t.entryNameLen, t.entryTagLen, t.arena, INTERN_MAX_PROBE);
  assert.ok(Number.isInteger(n) && n >= -2 && n <= cap, `${what}: zmqScan answered ${n} (capacity ${cap})`);
  for (let i = 0; i < n; i++) {
    assert.ok(nameOff[i]! >= start && nameLen[i]! >= 0 && nameOff[i]! + nameLen[i]! <= end, `${what}: item ${i}'s name is outside the window`);
    if (t !== null) assert.ok(entries[i]! >= -1 && entries[i]! < intern.size + 1, `${what}: item ${i}'s entry ${entries[i]}`);
  }
  return n;
}

export function fuzzScan(lib: TallydAddon, g: Gen, rounds: number): number {
  const names = Array.from({ length: 30 }, (_, i) => `app.svc${i}.${'x'.repeat(i * 3)}`);
  const intern = new KeyInternTable({ seed: 0x5eed });
  for (const name of names.slice(0, 20)) {
    const b = Buffer.from(name);
    const hash = finishHash(hashBytes(b, 0, b.length, intern.seed), hashBytes(b, 0, 0, intern.seed));
    intern.add(b, 0, b.length, b.length, b.length, hash, name);
  }
  let calls = 0;
  for (let r = 0; r < rounds; r++) {
    const msg = message(g, names);
    scan(lib, g, msg, intern, `message #${r}`);
    for (let m = 0; m < 20; m++) scan(lib, g, g.mutate(msg), intern, `message #${r}, mutation #${m}`);
    calls += 21;
    if (msg.length <= 400) {
      for (const t of truncations(msg)) scan(lib, g, t, intern, `message #${r} cut to ${t.length}`);
      calls += msg.length;
    }
    scan(lib, g, g.bytes(g.int(256)), intern, 'random bytes');
    calls++;
  }
  // Bad arguments answer with a TypeError, never a crash.
  const bad = lib as unknown as { zmqScan(...args: unknown[]): number };
  const a = [new Uint8Array(4), new Float64Array(4), new Float64Array(4), new Int32Array(4), new Int32Array(4), new Int32Array(4)];
  for (const args of [[], [Buffer.from('[]'), 0, 2, 1], [Buffer.from('[]'), 1, 0, 1, ...a], [Buffer.from('[]'), 0, 99, 1, ...a], [Buffer.from('[]'), 0, 2, 1, ...a.slice(1), a[0]],
    [Buffer.from('[]'), 0, 2, 1, ...a, new Int32Array(4), new Int32Array(3), new Int32Array(3), new Int32Array(1), new Int32Array(1), new Int32Array(1), Buffer.alloc(0), 4]]) {
    assert.throws(() => bad.zmqScan(...args), TypeError);
  }
  return calls;
}
