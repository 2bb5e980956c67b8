/** Byte flips and cuts of packed parts (store/packed-parts.ts), for the tests that check a part reads whole or not at all. */
import assert from 'node:assert/strict';
import { PackedPartError, readParts, type PartVisitor } from '../../src/store/packed-parts.js';
import type { Rand } from './fuzz.js';

/**
 * `rounds` copies of `whole`, cut short one time in five and with 1-3 random bytes changed, each read: every read
 * either succeeds or throws PackedPartError, and every part it began it ended (a part is checked whole before it is
 * visited). Returns how many were refused.
 */
export function flipAndRead(whole: Buffer, rand: Rand, rounds: number): number {
  let refused = 0;
  for (let i = 0; i < rounds; i++) {
    const buf = Buffer.from(whole.subarray(0, rand.next() < 0.2 ? rand.int(whole.length) : whole.length));
    for (let f = 1 + rand.int(3); f > 0; f--) buf[rand.int(buf.length)] = rand.int(256);
    let begun = 0;
    let ended = 0;
    const counting: PartVisitor = { part: () => begun++, end: () => ended++, counter: () => {}, timer: () => {}, gauge: () => {}, set: () => {} };
    try {
      readParts(buf, counting);
    } catch (err) {
      assert.ok(err instanceof PackedPartError, `flip ${i}: ${String(err)}`);
      refused++;
    }
    assert.equal(ended, begun, `flip ${i}: a part begun and not ended`);
  }
  return refused;
}
