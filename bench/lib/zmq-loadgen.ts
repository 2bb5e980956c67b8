/**
 * The ZeroMQ load generator: a separate Node process (the runner must not
 * share its event loop) that connects a PUSH or PUB socket to tallyd's bound
 * PULL or SUB socket and sends a corpus of pre-built messages (bench/lib/load.ts
 * writes them: each a zlib-deflated JSON array of items, as real publishers
 * send) at a paced rate, looping over the corpus.
 *
 *   node --import tsx bench/lib/zmq-loadgen.ts <corpus> <endpoint> <push|pub> <messages/s> <count> <give-up-s>
 *
 * Corpus file: messages one after another, each a 4-byte little-endian
 * length and the bytes.
 *
 * Protocol with the runner: once the socket is connected (push: the
 * connection is up; pub: the subscription has reached the publisher, which
 * an XPUB socket receives, so ZeroMQ's slow joiner is over before anything
 * is measured) it prints `{"ready":true}`; it starts on a line `go` on
 * stdin, paces message k at start + k / rate (checking every ms), and prints
 * one JSON report line like bench/lib/loadgen.c's, plus blocked_s: the time
 * spent waiting for a send that libzmq could not queue at once (PUSH
 * backpressure: tallyd's queue and ours full). PUB never blocks: past the
 * high-water mark libzmq drops, and Carbon shows it.
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Push, XPublisher } from 'zeromq';

/** Messages our socket queues (ZMQ_SNDHWM), StatusPublisher's default. */
const SEND_HWM = 1000;
/** ms close() lets queued messages leave. */
const LINGER_MS = 3000;

function readCorpus(file: string): Buffer[] {
  const buf = readFileSync(file);
  const out: Buffer[] = [];
  for (let at = 0; at + 4 <= buf.length; ) {
    const len = buf.readUInt32LE(at);
    out.push(buf.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  return out;
}

function waitGo(): Promise<void> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: process.stdin });
    rl.on('line', (l) => {
      if (l.trim() === 'go') {
        resolve();
        rl.close();
      }
    });
    rl.on('close', () => reject(new Error('stdin closed before go')));
  });
}

async function main(): Promise<void> {
  const [file, endpoint, type, rateText, countText, giveUpText] = process.argv.slice(2);
  const rate = Number(rateText);
  const count = Number(countText);
  const giveUp = Number(giveUpText ?? 60);
  if (!file || !endpoint || (type !== 'push' && type !== 'pub') || !(rate > 0) || !(count > 0)) {
    process.stderr.write('usage: zmq-loadgen <corpus> <endpoint> <push|pub> <messages/s> <count> <give-up-s>\n');
    process.exit(2);
  }
  const msgs = readCorpus(file);
  if (msgs.length === 0) throw new Error('empty corpus');
  const opts = { sendHighWaterMark: SEND_HWM, linger: LINGER_MS };
  const sock = type === 'push' ? new Push(opts) : new XPublisher(opts);
  if (sock instanceof Push) {
    const connected = new Promise<void>((r) => sock.events.on('handshake', () => r()));
    sock.connect(endpoint);
    await connected;
  } else {
    sock.connect(endpoint);
    // The first message an XPUB receives is the SUB's subscription: from here on nothing is dropped for joining late.
    await sock.receive();
  }
  const go = waitGo();
  process.stdout.write('{"ready":true}\n');
  await go;

  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + giveUp * 1000;
  let sent = 0;
  let pos = 0;
  let loops = 0;
  let blocked = 0;
  let maxBehind = 0;
  let errors = 0;
  while (sent < count) {
    const now = performance.now();
    if (now > deadline) break;
    const due = Math.min(count, Math.floor(((now - t0) / 1000) * rate) + 1);
    if (due <= sent) {
      await new Promise((r) => setTimeout(r, 1));
      continue;
    }
    maxBehind = Math.max(maxBehind, now - (t0 + (sent / rate) * 1000));
    // At most ~5 ms of sends between checks of the clock and the deadline.
    const until = Math.min(due, sent + Math.max(1, Math.ceil(rate / 200)));
    while (sent < until) {
      const msg = msgs[pos] as Buffer;
      const wouldBlock = !sock.writable;
      const b0 = wouldBlock ? performance.now() : 0;
      try {
        await sock.send(msg);
      } catch {
        errors++;
        continue;
      }
      if (wouldBlock) blocked += performance.now() - b0;
      sent++;
      if (++pos === msgs.length) {
        pos = 0;
        loops++;
      }
    }
  }
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const report = {
    sent,
    elapsed_s: elapsed,
    errors,
    loops,
    cpu_user_s: cpu.user / 1e6,
    cpu_sys_s: cpu.system / 1e6,
    max_behind_ms: Math.round(maxBehind * 1000) / 1000,
    blocked_s: Math.round(blocked) / 1000,
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
  sock.close(); // queued messages get LINGER_MS to leave before the process ends
}

main().catch((err: unknown) => {
  process.stderr.write(`zmq-loadgen: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
