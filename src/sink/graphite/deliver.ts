/**
 * One delivery to Carbon over a connection of its own: connect, write the
 * payload, half-close (our FIN), then wait for Carbon to close its side. It
 * resolves only when Carbon provably read everything (peer-read-all.ts:
 * our socket is in TIME_WAIT when Carbon's FIN arrives, i.e. Carbon read to
 * our EOF and closed cleanly; carbon-cache, carbon-relay and node's net
 * server all close on EOF). Anything else rejects with a SinkError or the
 * socket's error: a refused connect, a reset, a close before our EOF was
 * read, or no progress for timeoutMs (a Carbon that accepts and never
 * reads: our writes stop being taken, or its FIN never comes).
 */
import net from 'node:net';
import type { Clock } from '../../clock.js';
import { SinkError } from '../errors.js';
import { peerReadAll, type Endpoints, type ReadProof } from './peer-read-all.js';

export interface CarbonTarget {
  readonly host: string;
  readonly port: number;
}

/** Bytes handed to the kernel per write: progress is seen (and the stall timer reset) per slice. */
const SLICE_BYTES = 64 * 1024;

export interface Delivery {
  readonly done: Promise<void>;
  /** Gives up now (stop()): the delivery rejects with ESTOPPED. */
  abort(): void;
}

export function deliver(
  target: CarbonTarget,
  payload: readonly Buffer[],
  timeoutMs: number,
  clock: Clock,
  proof: (ends: Endpoints) => ReadProof = peerReadAll,
): Delivery {
  let abort: () => void = () => {};
  const done = new Promise<void>((resolve, reject) => {
    const sock = net.createConnection({ host: target.host, port: target.port, allowHalfOpen: true });
    sock.setNoDelay(true);
    let settled = false;
    let connected = false;
    let ended = false;
    let ends: Endpoints | null = null;
    let lastProgress = clock.now();
    let timer: NodeJS.Timeout | null = null;

    const settle = (err: Error | null): void => {
      if (settled) return;
      settled = true;
      if (timer) clock.clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve();
    };
    const progress = (): void => {
      lastProgress = clock.now();
    };
    const watch = (): void => {
      const idle = clock.now() - lastProgress;
      if (idle >= timeoutMs) {
        const what = !connected ? 'connecting' : ended ? 'waiting for carbon to read to the end and close' : 'writing';
        settle(new SinkError('ETIMEOUT', `no progress for ${idle} ms while ${what} (carbonWriteTimeout ${timeoutMs} ms)`));
      } else {
        timer = clock.setTimeout(watch, timeoutMs - idle);
      }
    };
    timer = clock.setTimeout(watch, timeoutMs);
    abort = () => settle(new SinkError('ESTOPPED', 'delivery abandoned: tallyd is stopping'));

    sock.on('error', (err) => settle(err));
    sock.on('close', () => settle(new SinkError('ECLOSED', 'connection closed before carbon read to the end')));
    sock.resume(); // carbon never talks back
    sock.on('end', () => {
      if (!ended || ends === null) {
        settle(new SinkError('EUNREAD', 'carbon closed the connection before everything was written'));
        return;
      }
      const p = proof(ends);
      if (p === 'unproven') settle(new SinkError('EUNREAD', 'carbon closed the connection without reading to the end (its FIN came before it had our FIN)'));
      else settle(null);
    });
    sock.once('connect', () => {
      connected = true;
      ends = { localAddress: sock.localAddress ?? '', localPort: sock.localPort ?? 0, remoteAddress: sock.remoteAddress ?? '', remotePort: sock.remotePort ?? 0 };
      progress();
      void writeAll();
    });

    const writeAll = async (): Promise<void> => {
      for (const buf of payload) {
        for (let at = 0; at < buf.length && !settled; at += SLICE_BYTES) {
          const slice = buf.subarray(at, at + SLICE_BYTES);
          const ok = await new Promise<boolean>((r) => sock.write(slice, (err) => r(!err)));
          if (!ok) return; // the 'error' handler settles
          progress();
        }
      }
      if (settled) return;
      sock.end(() => progress());
      ended = true;
    };
  });
  return { done, abort: () => abort() };
}
