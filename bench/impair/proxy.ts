// The UDP impairment proxy: listens on one address, forwards each client's datagrams to the target
// from a socket of its own (so the target sees one 4-tuple per client, as without the proxy) and
// sends the target's answers back to that client. Each direction runs its own ImpairmentModel;
// the model decides, this module only keeps time and moves bytes.
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { type DirectionStats, type ImpairmentConfig, ImpairmentModel, LOST } from './model.js';

export interface ImpairProxyOptions {
  /** HOST:PORT to listen on ([v6]:port for IPv6; port 0 picks one). */
  listen: string;
  /** HOST:PORT to forward to. */
  target: string;
  /** Client → target impairments. */
  up?: ImpairmentConfig;
  /** Target → client impairments. */
  down?: ImpairmentConfig;
  seed?: number;
  /** Most clients tracked at once; the least recently active one is forgotten beyond it. */
  maxClients?: number;
}

export interface ImpairProxyStats {
  up: DirectionStats;
  down: DirectionStats;
  clients: number;
}

export interface ImpairProxy {
  readonly address: { address: string; port: number; family: string };
  stats(): ImpairProxyStats;
  close(): Promise<void>;
}

export class AddressError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AddressError';
  }
}

export function parseHostPort(text: string): { host: string; port: number; type: 'udp4' | 'udp6' } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(text);
  if (m === null) throw new AddressError(`'${text}' is not HOST:PORT (IPv6 as [::1]:PORT)`);
  const port = Number(m[3]);
  if (port > 65535) throw new AddressError(`port ${port} is out of range`);
  const host = m[1] ?? m[2];
  return { host, port, type: m[1] !== undefined ? 'udp6' : 'udp4' };
}

interface Pending {
  at: number;
  seq: number;
  data: Buffer;
  socket: dgram.Socket;
  port: number;
  address: string;
}

/** Min-heap on (at, seq): departures in time order, ties in arrival order. */
class DepartureQueue {
  private readonly heap: Pending[] = [];
  get size(): number {
    return this.heap.length;
  }
  peek(): Pending | undefined {
    return this.heap[0];
  }
  push(p: Pending): void {
    const h = this.heap;
    h.push(p);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(h[i], h[parent])) break;
      [h[i], h[parent]] = [h[parent], h[i]];
      i = parent;
    }
  }
  pop(): Pending | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last !== undefined) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l], h[m])) m = l;
        if (r < h.length && before(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
  clear(): void {
    this.heap.length = 0;
  }
}

function before(a: Pending, b: Pending): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

interface Client {
  address: string;
  port: number;
  upstream: dgram.Socket;
}

// A proxy that drops in its own socket buffers would distort every measurement through it; ask
// for large buffers (the kernel caps them at net.core.rmem_max / wmem_max).
const SOCKET_BUFFER = 4 * 1024 * 1024;

function bindSocket(type: 'udp4' | 'udp6', host?: string, port = 0): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket({
      type,
      recvBufferSize: SOCKET_BUFFER,
      sendBufferSize: SOCKET_BUFFER,
    });
    s.once('error', reject);
    s.bind(port, host, () => {
      s.off('error', reject);
      resolve(s);
    });
  });
}

export async function startImpairProxy(o: ImpairProxyOptions): Promise<ImpairProxy> {
  const listenAt = parseHostPort(o.listen);
  const target = parseHostPort(o.target);
  const seed = o.seed ?? 1;
  const up = new ImpairmentModel(o.up ?? {}, seed);
  const down = new ImpairmentModel(o.down ?? {}, (seed ^ 0x5bd1e995) >>> 0);
  const maxClients = o.maxClients ?? 64;
  const clients = new Map<string, Client>(); // insertion order = least recently active first
  const queue = new DepartureQueue();
  let seq = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;

  const listener = await bindSocket(listenAt.type, listenAt.host, listenAt.port);
  // Errors on a datagram socket (ICMP port unreachable surfacing as ECONNREFUSED, full buffers)
  // concern one packet; the proxy carries on, as the network would.
  listener.on('error', () => undefined);

  const send = (p: Pending): void => {
    if (closed) return;
    try {
      p.socket.send(p.data, p.port, p.address, () => undefined);
    } catch {
      // The client was forgotten (maxClients) while this packet waited: its socket is closed.
    }
  };

  const pump = (): void => {
    timer = undefined;
    const now = performance.now();
    // setTimeout fires late by up to a millisecond; release everything due within half of one.
    while (queue.size > 0 && (queue.peek() as Pending).at <= now + 0.5)
      send(queue.pop() as Pending);
    arm();
  };

  const arm = (): void => {
    const next = queue.peek();
    if (next === undefined || timer !== undefined || closed) return;
    timer = setTimeout(pump, Math.max(0, next.at - performance.now()));
  };

  const forward = (
    model: ImpairmentModel,
    data: Buffer,
    socket: dgram.Socket,
    port: number,
    address: string,
  ): void => {
    const now = performance.now();
    const at = model.admit(data.length, now);
    if (at === LOST) return;
    const p: Pending = { at, seq: seq++, data, socket, port, address };
    if (at <= now && queue.size === 0) {
      send(p);
      return;
    }
    queue.push(p);
    if (timer !== undefined && (queue.peek() as Pending) === p) {
      clearTimeout(timer);
      timer = undefined;
    }
    arm();
  };

  const clientFor = async (address: string, port: number): Promise<Client | undefined> => {
    const key = `${address}|${port}`;
    const known = clients.get(key);
    if (known !== undefined) {
      clients.delete(key);
      clients.set(key, known);
      return known;
    }
    const upstream = await bindSocket(target.type);
    if (closed) {
      upstream.close();
      return undefined;
    }
    upstream.on('error', () => undefined);
    const client: Client = { address, port, upstream };
    upstream.on('message', (data) => forward(down, data, listener, client.port, client.address));
    clients.set(key, client);
    if (clients.size > maxClients) {
      const [oldestKey, oldest] = clients.entries().next().value as [string, Client];
      clients.delete(oldestKey);
      oldest.upstream.close();
    }
    return client;
  };

  // Datagrams of a new client wait for its upstream socket in arrival order.
  let chain: Promise<void> = Promise.resolve();
  listener.on('message', (data, rinfo) => {
    const key = `${rinfo.address}|${rinfo.port}`;
    const known = clients.get(key);
    if (known !== undefined) {
      forward(up, data, known.upstream, target.port, target.host);
      return;
    }
    chain = chain.then(async () => {
      const c = await clientFor(rinfo.address, rinfo.port);
      if (c !== undefined) forward(up, data, c.upstream, target.port, target.host);
    });
  });

  const bound = listener.address();
  return {
    address: { address: bound.address, port: bound.port, family: bound.family },
    stats: () => ({ up: { ...up.stats }, down: { ...down.stats }, clients: clients.size }),
    close: async () => {
      if (closed) return;
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      queue.clear();
      await chain;
      const sockets = [listener, ...[...clients.values()].map((c) => c.upstream)];
      clients.clear();
      await Promise.all(
        sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
      );
    },
  };
}
