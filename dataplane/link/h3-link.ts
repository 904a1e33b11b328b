// Binds one QUIC connection (the native addon) to one sans-I/O HTTP/3 connection. The H3 state
// machine never sees the addon and the addon never sees HTTP/3: this is the only place where
// stream bytes and datagrams cross between them, and where H3 actions become transport calls.
import type { Connection } from '../quic/endpoint.js';
import type { H3Connection, H3Event } from '../h3/connection.js';

export class LinkError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LinkError';
  }
}

export class H3Link {
  private pumping = false;
  private again = false;
  /** We ended the connection ourselves; the transport may not say it is closed yet. */
  private abandoned = false;
  /** Set by the owner: receives every application event of the H3 connection. */
  onEvent: (event: H3Event) => void = () => undefined;

  constructor(
    readonly quic: Connection,
    readonly h3: H3Connection,
  ) {}

  streamData(streamId: number, data: Uint8Array, fin: boolean): void {
    this.h3.streamData(streamId, data, fin);
    this.pump();
  }

  streamReset(streamId: number, code: number): void {
    this.h3.streamReset(streamId, code);
    this.pump();
  }

  stopSending(streamId: number, code: number): void {
    this.h3.stopSending(streamId, code);
    this.pump();
  }

  transportClosed(code: number, reason: string): void {
    this.h3.transportClosed(code, reason);
    this.pump();
  }

  /**
   * Carries out every queued H3 action, then delivers every queued event. Re-entrant calls (an
   * event handler that sends) are folded into the running pump.
   */
  pump(): void {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.again = false;
        this.flushActions();
        for (let e = this.h3.pollEvent(); e !== undefined; e = this.h3.pollEvent()) {
          this.onEvent(e);
          this.flushActions();
        }
      } while (this.again);
    } finally {
      this.pumping = false;
    }
  }

  private flushActions(): void {
    const q = this.quic;
    for (let a = this.h3.pollAction(); a !== undefined; a = this.h3.pollAction()) {
      if (q.closed || this.abandoned) continue;
      switch (a.kind) {
        case 'openStream': {
          const id = a.uni ? q.openUniStream() : q.openBidiStream();
          if (id === -1) {
            // The transport is closing (not yet reported closed) or out of stream credit: this
            // connection cannot carry what H3 planned. End it; nothing else is at fault.
            q.close(0x0101, 'cannot open stream');
            this.abandoned = true;
            continue;
          }
          if (id !== a.streamId) {
            // QUIC hands out stream IDs in order; H3 predicted them the same way. A mismatch
            // means the peer's stream limit was hit, which HTTP/3's three uni streams never do.
            q.close(0x0101, 'stream limit');
            throw new LinkError(`expected stream ${a.streamId}, transport opened ${id}`);
          }
          break;
        }
        case 'write':
          q.writeStream(a.streamId, a.data, a.fin);
          break;
        case 'resetStream':
          q.resetStream(a.streamId, a.code);
          break;
        case 'stopSending':
          q.stopSending(a.streamId, a.code);
          break;
        case 'datagram':
          q.sendDatagram(a.data);
          break;
        case 'close':
          q.close(a.code, a.reason);
          break;
      }
    }
  }
}
