/**
 * The keys of one entry of `servers`: a statsd UDP/TCP server (statsd's
 * servers/udp.js and servers/tcp.js keys, plus tallyd's) and a ZeroMQ socket.
 * Declared once here (see field.ts); validate-lists.ts reads the list.
 */
import { join } from './checker.js';
import { describe } from './describe.js';
import { bool, count, custom, defaultsOf, type Field, oneOf, port, type Resolved } from './field.js';

/** statsd's kinds of server; tallyd adds 'zmq' (ZmqServerFields). */
export type ServerKind = 'udp' | 'tcp';

/**
 * How a UDP server reads its socket: 'native' with the optional native
 * reader (recvmmsg, many datagrams per call into JavaScript; Linux, built by
 * npm install), 'dgram' with node:dgram, 'auto' native when it is there.
 */
export type UdpReaderKind = 'auto' | 'native' | 'dgram';
export const UDP_READERS: ReadonlyArray<UdpReaderKind> = ['auto', 'native', 'dgram'];

/** Largest datagram (UDP) or line (TCP) accepted, in bytes: the largest UDP payload. */
export const DEFAULT_MAX_PACKET_SIZE = 65536;

/**
 * UDP receive buffer asked of the kernel: 8 MiB holds ~10,000 small datagrams,
 * so a GC or flush pause of tens of ms drops nothing (the Linux default,
 * 208 KiB, holds ~256).
 */
export const DEFAULT_RECV_BUFFER_SIZE = 8 * 1024 * 1024;

/** Bind address when none is given: all interfaces, IPv6 ones for an address_ipv6 server. */
export function defaultAddress(ipv6: boolean): string {
  return ipv6 ? '::' : '0.0.0.0';
}

/** What a server entry takes from the top level of the file when it does not say (tallyd's; statsd has none). */
export interface ServerDefaults {
  readonly maxPacketSize: number;
  readonly recvBufferSize: number;
  readonly udpReader: UdpReaderKind;
}

export const SERVER_DEFAULTS: ServerDefaults = Object.freeze({
  maxPacketSize: DEFAULT_MAX_PACKET_SIZE,
  recvBufferSize: DEFAULT_RECV_BUFFER_SIZE,
  udpReader: 'auto',
});

/** The keys of a udp/tcp entry (besides `server`), with the defaults it inherits from the top level. */
export function serverFields(d: ServerDefaults) {
  return {
    address_ipv6: bool(false, { origin: 'statsd', doc: 'bind an IPv6 socket (then `address` defaults to `::`)' }),
    address: custom('0.0.0.0', { origin: 'statsd', doc: 'bind address; `0.0.0.0` is every IPv4 interface' },
      (c, o, k, p, done) => c.str(o, k, p, defaultAddress(done['address_ipv6'] === true), true)),
    port: port(8125, { origin: 'statsd', doc: 'port; 0 picks a free port' }),
    maxPacketSize: count(d.maxPacketSize, {
      doc: 'longest datagram or TCP line in bytes; longer ones are counted (`oversized_packets`) and dropped. A top-level `maxPacketSize` is every server\'s default',
    }),
    recvBufferSize: count(d.recvBufferSize, {
      doc: 'UDP receive buffer asked of the kernel, in bytes; Linux caps it at `net.core.rmem_max`, and tallyd logs a warning when that happens. A top-level `recvBufferSize` is every server\'s default',
    }),
    udpReader: oneOf(d.udpReader, UDP_READERS, {
      doc: 'how a UDP socket is read: `native` with tallyd\'s native reader (`recvmmsg`, up to 64 datagrams per call into JavaScript; '
        + 'under a steady stream it reads again 1 ms after a read that emptied the queue instead of waking for every datagram, when the '
        + 'kernel granted at least 512 KiB of receive buffer; Linux; the start fails without it), `dgram` with `node:dgram` (one call per '
        + 'datagram), `auto` native when `npm install` could build it, else dgram. The start-up log says which (`"reader":"native"`). '
        + 'A top-level `udpReader` is every server\'s default',
    }),
  };
}

export type ServerFields = ReturnType<typeof serverFields>;

/** A statsd server (udp or tcp). */
export type ServerConfig = { readonly server: ServerKind } & Resolved<ServerFields>;

/** ZeroMQ: largest message accepted, as received and once inflated (1 MiB; a status message is ~2 KiB). */
export const DEFAULT_ZMQ_MAX_MESSAGE_SIZE = 1024 * 1024;
/** ZeroMQ: ZMQ_RCVHWM in messages; at ~20 items a message, 10,000 hold ~200,000 samples of backlog. */
export const DEFAULT_ZMQ_HIGH_WATER_MARK = 10000;
/** ZeroMQ: where a zmq server binds when `bind` is not given (the port of the original pipeline). */
export const DEFAULT_ZMQ_BIND = 'tcp://0.0.0.0:5555';

/** `tcp://host:port` (host `*`, a name, an IPv4 or a bracketed IPv6 address; port 0..65535 or `*`) or `ipc://path`. */
const ZMQ_TCP = /^tcp:\/\/(\*|\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\*|\d{1,5})$/;
const ZMQ_IPC = /^ipc:\/\/\S+$/;

/** The port of a tcp:// endpoint ('*' reads as 0), or null for ipc://. */
export function zmqPort(bind: string): number | null {
  const m = ZMQ_TCP.exec(bind);
  if (m === null) return null;
  return m[2] === '*' ? 0 : Number(m[2]);
}

export type ZmqSocketType = 'sub' | 'pull';
export type ZmqMode = 'aggregate' | 'passthrough';

/** The keys of a `{ server: "zmq" }` entry (besides `server`): a ZeroMQ socket tallyd binds and publishers connect to. */
export const ZMQ_FIELDS = {
  bind: custom(DEFAULT_ZMQ_BIND, {
    doc: 'where the ZeroMQ socket binds: `tcp://host:port` (port `0` or `*`: any free port) or `ipc:///path`; publishers connect to it',
  }, (c, o, k, p) => {
    // '' (never a valid endpoint) when the value is bad, so it is not compared with the other servers'.
    if (o[k] === undefined) return DEFAULT_ZMQ_BIND;
    const bind = c.str(o, k, p, '', true);
    if (bind !== '' && !ZMQ_IPC.test(bind) && (zmqPort(bind) ?? 65536) > 65535) {
      c.problem(join(p, k), `must be "tcp://host:port" (port 0..65535 or *) or "ipc:///path", got ${describe(bind)}`);
      return '';
    }
    return bind;
  }),
  type: oneOf<ZmqSocketType>('sub', ['sub', 'pull'], {
    doc: '`sub` for PUB publishers (they drop messages at their high-water mark, never block), `pull` for PUSH publishers '
      + '(they block when tallyd falls behind: backpressure); see [sockets](zeromq.md#which-socket)',
  }),
  mode: oneOf<ZmqMode>('aggregate', ['aggregate', 'passthrough'], {
    doc: '`aggregate`: items join the statsd aggregation; `passthrough`: `<prefix><name> <value> <time>` goes straight to Carbon',
  }),
  prefix: custom('', { doc: 'prepended as it is to every name from this socket, e.g. `servers.`; no whitespace or `;`' }, (c, o, k, p) => {
    const prefix = c.str(o, k, p, '');
    if (!/[\s;]/.test(prefix)) return prefix;
    c.problem(join(p, k), `must not contain whitespace or ';' (it is prepended to metric names), got ${describe(prefix)}`);
    return '';
  }),
  maxMessageSize: count(DEFAULT_ZMQ_MAX_MESSAGE_SIZE, {
    doc: 'largest frame in bytes, as received (libzmq\'s `ZMQ_MAXMSGSIZE`: a longer frame closes the publisher\'s connection, counted in `zmq_disconnects`) and once inflated (counted in `zmq_oversized`, dropped)',
  }),
  highWaterMark: count(DEFAULT_ZMQ_HIGH_WATER_MARK, {
    doc: 'messages libzmq queues for tallyd (`ZMQ_RCVHWM`): beyond it SUB drops and PUSH publishers wait',
  }),
} satisfies Record<string, Field<unknown>>;

/** A ZeroMQ socket receiving status messages (src/ingest/zmq.ts). */
export type ZmqServerConfig = { readonly server: 'zmq' } & Resolved<typeof ZMQ_FIELDS>;

export type AnyServerConfig = ServerConfig | ZmqServerConfig;

export function isZmqServer(server: AnyServerConfig): server is ZmqServerConfig {
  return server.server === 'zmq';
}

/** The single server of a file without `servers`: statsd's UDP on 0.0.0.0:8125. */
export const DEFAULT_SERVER: ServerConfig = Object.freeze({ server: 'udp' as const, ...defaultsOf(serverFields(SERVER_DEFAULTS)) });

/** Every key a udp/tcp entry may hold. */
export const SERVER_KEYS: ReadonlyArray<string> = ['server', ...Object.keys(serverFields(SERVER_DEFAULTS))];
/** Every key a zmq entry may hold. */
export const ZMQ_SERVER_KEYS: ReadonlyArray<string> = ['server', ...Object.keys(ZMQ_FIELDS)];

export const UNIMPLEMENTED_SERVER: Readonly<Record<string, string>> = {
  socket: 'unix domain sockets are not implemented; ignored',
  socket_mod: 'unix domain sockets are not implemented; ignored',
};
