import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import type { SampleSink } from '../../src/parse/sample-sink.js';
import { parseDecimal } from '../../src/parse/number.js';
import { sanitizeKey } from '../../src/parse/sanitize.js';
import * as L from '../../src/parse/statsd-line.js';

type Call = [kind: 'c' | 'g' | 't' | 's', name: string, value: number | string, extra?: number | boolean];

function recorder(): SampleSink & { calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    counter: (name, value, rate) => void calls.push(['c', name, value, rate]),
    gauge: (name, value, delta) => void calls.push(['g', name, value, delta]),
    timer: (name, value, rate) => void calls.push(['t', name, value, rate]),
    set: (name, member) => void calls.push(['s', name, member]),
  };
}

function parse(line: string, opts: L.ParseOptions = { keyNameSanitize: true }): { status: number; calls: Call[] } {
  const sink = recorder();
  // Surround the line with bytes the parser must not read.
  const buf = Buffer.from(`-+:|${line}-+:|`, 'utf8');
  const status = new L.StatsdLineParser(opts).parseLine(buf, 4, buf.length - 4, sink);
  return { status, calls: sink.calls };
}

const good: [string, Call[]][] = [
  ['a:1|c', [['c', 'a', 1, 1]]],
  ['a:-2.5|c|@0.1', [['c', 'a', -2.5, 0.1]]],
  ['a:1|c|@1e-1', [['c', 'a', 1, 0.1]]],
  ['a:1|c|@.5', [['c', 'a', 1, 0.5]]],
  ['a:1|c|@1', [['c', 'a', 1, 1]]],
  ['a:+3|c', [['c', 'a', 3, 1]]],
  ['a:5.|c', [['c', 'a', 5, 1]]],
  ['a:.5|c', [['c', 'a', 0.5, 1]]],
  ['a:1e3|c', [['c', 'a', 1000, 1]]],
  ['a:007|c', [['c', 'a', 7, 1]]],
  ['a:0.1|c', [['c', 'a', 0.1, 1]]],
  ['a:123456789012345678901234567890|c', [['c', 'a', Number('123456789012345678901234567890'), 1]]],
  ['g:5|g', [['g', 'g', 5, false]]],
  ['g:+5|g', [['g', 'g', 5, true]]],
  ['g:-5.5|g', [['g', 'g', -5.5, true]]],
  ['g:5|g|@0.5', [['g', 'g', 5, false]]],
  ['t:12|ms', [['t', 't', 12, 1]]],
  ['t:12.5|ms|@0.25', [['t', 't', 12.5, 0.25]]],
  ['t:0|ms', [['t', 't', 0, 1]]],
  ['t:-0|ms', [['t', 't', -0, 1]]],
  ['t:1E-2|ms', [['t', 't', 0.01, 1]]],
  ['h:-3|h', [['t', 'h', -3, 1]]],
  ['d:4|d|@0.5', [['t', 'd', 4, 0.5]]],
  ['u:foo|s', [['s', 'u', 'foo']]],
  ['u:|s', [['s', 'u', '0']]],
  ['u:héllo wörld|s', [['s', 'u', 'héllo wörld']]],
  ['u:-1|s|@0.5', [['s', 'u', '-1']]],
  ['a:1|c:2|c|@0.5', [['c', 'a', 1, 1], ['c', 'a', 2, 0.5]]],
  ['a:1|c|@0.5:2|c', [['c', 'a', 1, 0.5], ['c', 'a', 2, 1]]],
  ['m:1|c:2|ms:+3|g:x|s', [['c', 'm', 1, 1], ['t', 'm', 2, 1], ['g', 'm', 3, true], ['s', 'm', 'x']]],
  ['a:1|c|#k:v,flag', [['c', 'a;k=v;flag', 1, 1]]],
  ['a:1|c|#', [['c', 'a', 1, 1]]],
  ['a:1|c|#t:v|@0.5', [['c', 'a;t=v', 1, 0.5]]],
  ['a:1|c|@0.5|#t:v', [['c', 'a;t=v', 1, 0.5]]],
  ['a:1|c|#k;x:y:z', [['c', 'a;k_x=yz', 1, 1]]],
  ['a:1|c|#k:v w,a/b', [['c', 'a;k=v_w;a-b', 1, 1]]],
  ['a:1|c:2|g|#t:v', [['c', 'a;t=v', 1, 1], ['g', 'a;t=v', 2, false]]],
  ['u:x|s|#t:v', [['s', 'u;t=v', 'x']]],
  ['a:1|c|T1700000000', [['c', 'a', 1, 1]]],
  ['a:1|c|c:abc123', [['c', 'a', 1, 1]]],
  ['a:1|c|e:it-false,cn-nginx', [['c', 'a', 1, 1]]],
  ['a:1|c|card:low', [['c', 'a', 1, 1]]],
  ['a:1|ms|#t:v|T1|c:id:x|e:x|card:high|@0.5', [['t', 'a;t=v', 1, 0.5]]],
  ['a:1|c|T1:2|g', [['c', 'a', 1, 1], ['g', 'a', 2, false]]],
  ['a:1|c\r', [['c', 'a', 1, 1]]],
  ['a:1|c  \t', [['c', 'a', 1, 1]]],
  ['a:1|c|#t:v \r', [['c', 'a;t=v', 1, 1]]],
  ['my key \t here:1|c', [['c', 'my_key_here', 1, 1]]],
  ['a/b/c:1|c', [['c', 'a-b-c', 1, 1]]],
  ['a!@b$%(x)"\':1|c', [['c', 'abx', 1, 1]]],
  ['a\tb:1|c', [['c', 'a_b', 1, 1]]],
  ['aé€:1|c', [['c', 'a', 1, 1]]],
  ['a \x01 b:1|c', [['c', 'a__b', 1, 1]]],
  ['  lead:1|c', [['c', '_lead', 1, 1]]],
  ['x.y-z_w=v;q:1|c', [['c', 'x.y-z_w=v;q', 1, 1]]],
  ['constructor:1|c', [['c', 'constructor', 1, 1]]],
  ['__proto__:1|g', [['g', '__proto__', 1, false]]],
  ['hasOwnProperty:1|s', [['s', 'hasOwnProperty', '1']]],
];

test('well-formed lines emit exactly these samples', () => {
  for (const [line, calls] of good) {
    const r = parse(line);
    assert.equal(r.status, L.LINE_OK, `${JSON.stringify(line)}: ${L.statusText(r.status)}`);
    assert.deepEqual(r.calls, calls, JSON.stringify(line));
  }
});

test('keyNameSanitize false keeps the key as UTF-8, with statsd tag rewriting', () => {
  const opts = { keyNameSanitize: false };
  assert.deepEqual(parse('a b/c!:1|c', opts).calls, [['c', 'a b/c!', 1, 1]]);
  assert.deepEqual(parse('é€:1|g', opts).calls, [['g', 'é€', 1, false]]);
  assert.deepEqual(parse('a:1|c|#k;x:y:z,f', opts).calls, [['c', 'a;k_x=y:z;f', 1, 1]]);
});

test('maxNameLength bounds the whole key, tags included', () => {
  const opts = { keyNameSanitize: true, maxNameLength: 8 };
  assert.equal(parse('abcdefgh:1|c', opts).status, L.LINE_OK);
  assert.equal(parse('abcdefghi:1|c', opts).status, L.LINE_NAME_TOO_LONG);
  assert.equal(parse('abc:1|c|#k:vv', opts).status, L.LINE_OK);
  assert.equal(parse('abc:1|c|#k:vvv', opts).status, L.LINE_NAME_TOO_LONG);
  assert.equal(parse('a%%%%%%%%%%%:1|c', opts).status, L.LINE_OK); // measured after sanitizing
  assert.equal(parse(`${'n'.repeat(1025)}:1|c`).status, L.LINE_NAME_TOO_LONG);
  assert.equal(parse(`${'n'.repeat(1024)}:1|c`).status, L.LINE_OK);
});

const bad: [string, number][] = [
  ['a', L.LINE_NO_VALUE],
  ['a:1', L.LINE_NO_TYPE],
  [':1|c', L.LINE_EMPTY_NAME],
  ['%%%:1|c', L.LINE_EMPTY_NAME],
  ['%:1|c|#t:v', L.LINE_EMPTY_NAME],
  ['a:|c', L.LINE_NO_VALUE],
  ['a:1|', L.LINE_BAD_TYPE],
  ['a:1|x', L.LINE_BAD_TYPE],
  ['a:1|cc', L.LINE_BAD_TYPE],
  ['a:1|ms2', L.LINE_BAD_TYPE],
  ['a:1|C', L.LINE_BAD_TYPE],
  ['a:1| c', L.LINE_BAD_TYPE],
  ['a:1|#t', L.LINE_BAD_TYPE],
  ['a:abc|c', L.LINE_BAD_VALUE],
  ['a:0x10|c', L.LINE_BAD_VALUE],
  ['a:Infinity|c', L.LINE_BAD_VALUE],
  ['a:NaN|g', L.LINE_BAD_VALUE],
  ['a:1e|c', L.LINE_BAD_VALUE],
  ['a:.|c', L.LINE_BAD_VALUE],
  ['a:-|g', L.LINE_BAD_VALUE],
  ['a:1e999|c', L.LINE_BAD_VALUE],
  ['a:1.2.3|c', L.LINE_BAD_VALUE],
  ['a:1_000|c', L.LINE_BAD_VALUE],
  ['a:-1|ms', L.LINE_NEGATIVE_TIMER],
  ['a:1|c|@0', L.LINE_BAD_RATE],
  ['a:1|c|@-1', L.LINE_BAD_RATE],
  ['a:1|c|@2', L.LINE_BAD_RATE],
  ['a:1|c|@', L.LINE_BAD_RATE],
  ['a:1|c|@abc', L.LINE_BAD_RATE],
  ['a:1|c|@0.5|@0.5', L.LINE_BAD_RATE],
  ['a:1|g|@0', L.LINE_BAD_RATE],
  ['a:1|c|#a|#b', L.LINE_BAD_TAGS],
  ['a:1|c|#|#b', L.LINE_BAD_TAGS],
  ['a:1|c|#a,,b', L.LINE_BAD_TAGS],
  ['a:1|c|#a,', L.LINE_BAD_TAGS],
  ['a:1|c|#,a', L.LINE_BAD_TAGS],
  ['a:1|c|x', L.LINE_BAD_FIELD],
  ['a:1|c|', L.LINE_BAD_FIELD],
  ['a:1|c|T', L.LINE_BAD_FIELD],
  ['a:1|c|T12a', L.LINE_BAD_FIELD],
  ['a:1|c|card', L.LINE_BAD_FIELD],
  ['a:1|c|#t:v:2|c', L.LINE_BAD_FIELD],
  ['u:a:b|s', L.LINE_BAD_VALUE],
  ['u:a:b:c|s', L.LINE_BAD_VALUE],
  ['a: |c', L.LINE_BAD_VALUE],
  ['a:\t|g', L.LINE_BAD_VALUE],
  ['a:\u00a0|ms', L.LINE_BAD_VALUE],
  ['a:1 2|c', L.LINE_BAD_VALUE],
  ['a: 0x10 |c', L.LINE_BAD_VALUE],
  ['a:1|c|@1e-320', L.LINE_BAD_RATE],
  ['a:1|c|@5e-324', L.LINE_BAD_RATE],
  ['a:1|c|#,,', L.LINE_BAD_TAGS],
  ['a:1|c|#t:v:2|c', L.LINE_BAD_FIELD],
  [`a${':1|c'.repeat(65)}`, L.LINE_TOO_MANY_VALUES],
  [' \t\r', L.LINE_EMPTY],
];

/** Multi-value lines with bad values: statsd keeps the good ones and counts each bad one. */
const partial: [line: string, calls: Call[], bad: number, first: number][] = [
  ['a:1|c:2', [['c', 'a', 1, 1]], 1, L.LINE_NO_TYPE],
  ['a:1|c:', [['c', 'a', 1, 1]], 1, L.LINE_NO_TYPE],
  ['a:1|c::2|c', [['c', 'a', 1, 1], ['c', 'a', 2, 1]], 1, L.LINE_NO_TYPE],
  ['a:1:2|c', [['c', 'a', 2, 1]], 1, L.LINE_NO_TYPE],
  ['x:1|c:x|c', [['c', 'x', 1, 1]], 1, L.LINE_BAD_VALUE],
  ['x:x|c:1|c:y|g:2|ms', [['c', 'x', 1, 1], ['t', 'x', 2, 1]], 2, L.LINE_BAD_VALUE],
  ['a:1|c:-1|ms', [['c', 'a', 1, 1]], 1, L.LINE_NEGATIVE_TIMER],
  ['a:1|c:2|g|@0', [['c', 'a', 1, 1]], 1, L.LINE_BAD_RATE],
  ['a:1|c|@7:2|c|x:3|c', [['c', 'a', 3, 1]], 2, L.LINE_BAD_RATE],
  ['a:1|c:x|c|#t:v', [['c', 'a;t=v', 1, 1]], 1, L.LINE_BAD_VALUE],
];

test('a multi-value line keeps its good values and counts each bad one', () => {
  for (const [line, calls, nBad, first] of partial) {
    const sink = recorder();
    const parser = new L.StatsdLineParser({ keyNameSanitize: true });
    const reported: number[] = [];
    parser.onBadLine = (status) => void reported.push(status);
    const buf = Buffer.from(line);
    parser.parsePacket(buf, 0, buf.length, sink);
    assert.deepEqual(sink.calls, calls, line);
    assert.equal(parser.badLines, nBad, line);
    assert.deepEqual(reported, [first], line);
    assert.equal(parser.goodLines, 1, line);
  }
  // A bad line as a whole counts each of its bad values, at least one.
  const parser = new L.StatsdLineParser({ keyNameSanitize: true });
  const buf = Buffer.from('a:x|c:y|c:z|c\nu:a:b|s\na:x|c:1|c|#a,,b');
  parser.parsePacket(buf, 0, buf.length, recorder());
  assert.equal(parser.badLines, 3 + 1 + 1);
});

test('numbers with surrounding whitespace are statsd Number(): a sign after a space is no delta', () => {
  const cases: [string, Call[]][] = [
    ['c:2 |c', [['c', 'c', 2, 1]]],
    ['t: 3 |ms', [['t', 't', 3, 1]]],
    ['g: -2|g', [['g', 'g', -2, false]]],
    ['g:-2 |g', [['g', 'g', -2, true]]],
    ['g:\t+2\u000b|g', [['g', 'g', 2, false]]],
    ['c:\u00a0\u3000 5\ufeff|c|@0.5', [['c', 'c', 5, 0.5]]],
    ['c:\u2028 1e3\u2029 \u202f\u205f\u1680\u2000\u200a|c', [['c', 'c', 1000, 1]]],
    ['c:1\r|c', [['c', 'c', 1, 1]]],
    ['c: 1|c: 2 |c', [['c', 'c', 1, 1], ['c', 'c', 2, 1]]],
  ];
  for (const [line, calls] of cases) {
    const r = parse(line);
    assert.equal(L.statusText(r.status), 'ok', JSON.stringify(line));
    assert.deepEqual(r.calls, calls, JSON.stringify(line));
  }
  // Not whitespace to Number(): U+0085, U+180E, U+200B.
  for (const ws of ['\u0085', '\u180e', '\u200b']) assert.equal(parse(`c:${ws}1|c`).status, L.LINE_BAD_VALUE, ws);
});

test('Unicode whitespace runs in names become _ as JavaScript \\s does', () => {
  const names = ['a\u00a0b', 'a\u3000\u3000b', 'a \ufeff\tb', 'a\u00a0é\u2009b', '\u1680x\u2028y\u2029', 'a\u202f/\u205fb', 'a\u0085b\u180ec\u200bd', 'a\u00a0b'];
  for (const raw of names) {
    const r = parse(`${raw}:1|c|#t\u00a0k:v\u3000w`);
    assert.deepEqual(r.calls, [['c', sanitizeKey(`${raw};t\u00a0k=v\u3000w`), 1, 1]], JSON.stringify(raw));
  }
  assert.deepEqual(parse('a\u00a0b:1|c').calls, [['c', 'a_b', 1, 1]]);
  assert.deepEqual(parse('a\u00a0b:1|c', { keyNameSanitize: false }).calls, [['c', 'a\u00a0b', 1, 1]]);
  // Cut sequences are not whitespace: dropped like other bytes >= 0x80.
  const sink = recorder();
  const buf = Buffer.from([0x61, 0xe2, 0x80, 0x62, 0xc2, 0x3a, 0x31, 0x7c, 0x63]);
  new L.StatsdLineParser({ keyNameSanitize: true }).parseLine(buf, 0, buf.length, sink);
  assert.deepEqual(sink.calls, [['c', sanitizeKey(buf.toString('utf8', 0, 5)), 1, 1]]);
});

test('malformed lines return their status and emit nothing', () => {
  assert.ok(bad.length >= 30);
  for (const [line, status] of bad) {
    const r = parse(line);
    assert.equal(L.statusText(r.status), L.statusText(status), JSON.stringify(line));
    assert.deepEqual(r.calls, [], JSON.stringify(line));
  }
  assert.equal(parse(`a${':1|c'.repeat(64)}`).calls.length, 64);
});

test('parsePacket: bad lines are counted and reported, good ones still land', () => {
  const parser = new L.StatsdLineParser({ keyNameSanitize: true });
  const reported: [number, string][] = [];
  parser.onBadLine = (status, buf, s, e) => void reported.push([status, buf.toString('utf8', s, e)]);
  const sink = recorder();
  const packet = Buffer.from('a:1|c\nbad\n\nb:2|g\r\nc:x|c\nd:1|c:x|c\n\nu:v|s');
  parser.parsePacket(packet, 0, packet.length, sink);
  assert.deepEqual(sink.calls, [['c', 'a', 1, 1], ['g', 'b', 2, false], ['c', 'd', 1, 1], ['s', 'u', 'v']]);
  assert.equal(parser.metricsReceived, 6);
  assert.equal(parser.badLines, 3);
  assert.deepEqual(reported, [
    [L.LINE_NO_VALUE, 'bad'],
    [L.LINE_BAD_VALUE, 'c:x|c'],
    [L.LINE_BAD_VALUE, 'd:1|c:x|c'],
  ]);
  // Every bad-table line fed as one packet: each counted once, nothing emitted.
  const all = new L.StatsdLineParser({ keyNameSanitize: true });
  const none = recorder();
  const buf = Buffer.from(bad.map(([l]) => l).join('\n'));
  all.parsePacket(buf, 0, buf.length, none);
  assert.equal(all.badLines, bad.length + 1); // u:a:b:c|s: two bad values
  assert.deepEqual(none.calls, []);
});

test('statusText names every status', () => {
  const codes = Object.entries(L).filter(([k]) => k.startsWith('LINE_')).map(([, v]) => v as number);
  assert.equal(new Set(codes.map(L.statusText)).size, codes.length);
  assert.match(L.statusText(999), /unknown/);
});

test('sanitizeKey equals statsd sanitizeKeyName', () => {
  const statsd = (k: string) => k.replace(/\s+/g, '_').replace(/\//g, '-').replace(/[^a-zA-Z_\-0-9.;=]/g, '');
  for (const k of ['a b', 'a  \t/b', 'x!y@z', 'ok.name-1_2=3;4', 'é\u00a0x', '']) assert.equal(sanitizeKey(k), statsd(k));
});

test('parseDecimal equals Number() on accepted text, rejects the rest', () => {
  const grammar = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
  const alphabet = '0123456789000.+-eE';
  let seed = 12345;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
  const samples = ['1.7976931348623157e308', '2.2250738585072014e-308', '5e-324', '0.1', '9007199254740993', '1e22', '1e23'];
  for (let i = 0; i < 20000; i++) {
    let s = '';
    for (let j = rnd(25) + 1; j > 0; j--) s += alphabet[rnd(alphabet.length)];
    samples.push(s);
  }
  for (const s of samples) {
    const v = parseDecimal(Buffer.from(s, 'latin1'), 0, s.length);
    const want = grammar.test(s) && Number.isFinite(Number(s)) ? Number(s) : NaN;
    assert.ok(Object.is(v, want), `${s}: ${v} vs ${want}`);
  }
});

// statsd 0.9's handlePacket key/field logic for one line, on its own helpers.
const helpers = createRequire(import.meta.url)('statsd/lib/helpers.js') as { is_valid_packet(f: string[]): boolean };
function statsdParse(line: string): Call[] {
  const out: Call[] = [];
  let bits = line.split('|#');
  const tags = bits.length > 1 && bits[1]!.length > 0 ? bits[1]!.split(',') : [];
  bits = bits[0]!.split(':');
  let key = bits.shift()!;
  if (tags.length > 0) key += ';' + tags.map((t) => t.replace(';', '_').replace(':', '=')).join(';');
  key = key.replace(/\s+/g, '_').replace(/\//g, '-').replace(/[^a-zA-Z_\-0-9.;=]/g, '');
  if (bits.length === 0) bits.push('1');
  for (const bit of bits) {
    const fields = bit.split('|');
    if (!helpers.is_valid_packet(fields)) throw new Error(`statsd rejects ${line}`);
    const rate = fields[2] ? Number(fields[2].match(/^@([\d.]+)/)![1]) : 1;
    const type = fields[1]!.trim();
    if (type === 'ms') out.push(['t', key, Number(fields[0] || 0), rate]);
    else if (type === 'g') out.push(['g', key, Number(fields[0] || 0), /^[-+]/.test(fields[0]!)]);
    else if (type === 's') out.push(['s', key, fields[0] || '0']);
    else out.push(['c', key, Number(fields[0] || 1), rate]);
  }
  return out;
}

test('parity with statsd 0.9 on well-formed lines', () => {
  const lines = [
    'a:1|c', 'a.b.c:2.5|c|@0.1', 'a:-4|c|@0.5', 'g:3|g', 'g:+3|g', 'g:-3|g', 'g:3|g|@0.5',
    't:320|ms', 't:0.5|ms|@0.25', 'u:member|s', 'u:|s', 'u:1.5|s',
    'a:1|c:2|c:3|ms', 'm:1|c|@0.5:2|ms|@0.1:3|g', 'a:1|c|#k:v,flag', 'a:1|c|@0.5|#k:v', 'a:1|c:2|g|#t;x:y:z',
    'my key/with stuff!:1|c', 'spaces  \t in:1|ms', 'odd#chars$%^&*():1|g', 'a:1|c\r', 'a:1|ms\r',
    'a:1e3|c', 'a:.5|c', 'a:5.|ms', 'a:1|c|@.5', 'constructor:1|c', '__proto__:1|s',
  ];
  for (const line of lines) {
    const r = parse(line);
    assert.equal(r.status, L.LINE_OK, line);
    assert.deepEqual(r.calls, statsdParse(line), line);
  }
});

test('DogStatsD events and service checks are counted as events_ignored, not bad lines', () => {
  const parser = new L.StatsdLineParser({ keyNameSanitize: true });
  const sink = recorder();
  const lines = [
    '_e{5,4}:title|text',
    '_e{21,36}:An exception occurred|Cannot parse CSV file from 10.0.0.17|t:warning|#err_type:bad_file',
    '_sc|Redis connection|2|#env:dev|m:Redis connection timed out after 10s',
    '_sc|ok|0',
    'a:1|c',
  ];
  const buf = Buffer.from(lines.join('\n'));
  parser.parsePacket(buf, 0, buf.length, sink);
  assert.equal(parser.eventsIgnored, 4);
  assert.equal(parser.badLines, 0);
  assert.equal(parser.metricsReceived, 5);
  assert.deepEqual(sink.calls, [['c', 'a', 1, 1]]);
  // Look-alikes stay metric lines (bad ones here).
  for (const l of ['_e{5}:title|text', '_e{,4}:t|x', '_e{5,4}title', '_sc', '_s:1|c']) {
    const p = new L.StatsdLineParser({ keyNameSanitize: true });
    const b = Buffer.from(l);
    p.parsePacket(b, 0, b.length, recorder());
    assert.equal(p.eventsIgnored, 0, l);
  }
});
