// Two H3Connections wired back to back in memory, standing in for QUIC in tests of the layers
// above (masque sessions) and in benchmarks. Stream bytes, resets, STOP_SENDINGs, datagrams and
// closes are carried across; the application events stay in each connection's own queue.

import { H3Connection, type H3Action, type H3ConnectionOptions } from './connection.js';

export interface LoopbackDatagram {
  streamId: number;
  /** A copy of the HTTP datagram payload (after the quarter stream ID). */
  payload: Uint8Array;
}

export interface LoopbackOptions {
  client?: Omit<H3ConnectionOptions, 'role'>;
  server?: Omit<H3ConnectionOptions, 'role'>;
  /** Split every stream write into chunks of at most this many bytes (default: whole writes). */
  chunkSize?: number;
  /** Drop every n-th datagram (default: none), to exercise loss handling. */
  dropEveryNthDatagram?: number;
}

export class H3Loopback {
  readonly client: H3Connection;
  readonly server: H3Connection;
  /** Datagrams that reached each side, in arrival order; consumers may splice them out. */
  readonly datagramsAtClient: LoopbackDatagram[] = [];
  readonly datagramsAtServer: LoopbackDatagram[] = [];
  private datagramCount = 0;

  constructor(private readonly opts: LoopbackOptions = {}) {
    this.client = new H3Connection({ ...opts.client, role: 'client' });
    this.server = new H3Connection({ ...opts.server, role: 'server' });
  }

  /** Delivers queued actions in both directions until neither side has any left. */
  pump(maxRounds = 1000): void {
    for (let round = 0; round < maxRounds; round++) {
      const moved =
        this.deliver(this.client, this.server, this.datagramsAtServer) +
        this.deliver(this.server, this.client, this.datagramsAtClient);
      if (moved === 0) return;
    }
    throw new Error('loopback did not settle');
  }

  private deliver(from: H3Connection, to: H3Connection, datagrams: LoopbackDatagram[]): number {
    let moved = 0;
    for (let a: H3Action | undefined = from.pollAction(); a; a = from.pollAction()) {
      moved++;
      switch (a.kind) {
        case 'openStream':
          break;
        case 'write':
          this.write(to, a.streamId, a.data, a.fin);
          break;
        case 'resetStream':
          to.streamReset(a.streamId, a.code);
          break;
        case 'stopSending':
          to.stopSending(a.streamId, a.code);
          break;
        case 'datagram': {
          const n = this.opts.dropEveryNthDatagram;
          if (n && ++this.datagramCount % n === 0) break;
          const t = to.receiveDatagram(a.data);
          if (t) datagrams.push({ streamId: t.streamId, payload: a.data.slice(t.offset) });
          break;
        }
        case 'close':
          to.transportClosed(a.code, a.reason);
          break;
      }
    }
    return moved;
  }

  private write(to: H3Connection, streamId: number, data: Uint8Array, fin: boolean): void {
    const chunk = this.opts.chunkSize ?? Infinity;
    if (data.length === 0) {
      to.streamData(streamId, data, fin);
      return;
    }
    for (let i = 0; i < data.length; i += chunk) {
      const end = Math.min(data.length, i + chunk);
      // A copy, as a real transport would hand over: views into it stay valid for the consumer.
      to.streamData(streamId, data.slice(i, end), fin && end === data.length);
    }
  }
}
