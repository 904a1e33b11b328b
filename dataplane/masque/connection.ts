// CONNECT-IP tunnels on one HTTP/3 connection: routes the H3Connection's events to client or
// proxy sessions and maps each session's outputs onto the connection's request-stream API.
// Still sans-I/O: the QUIC glue feeds the H3Connection and drains its actions; this only sits
// between h3/ and the tunnels.

import type { H3Connection, H3Event } from '../h3/connection.js';
import { H3_NO_ERROR } from './errors.js';
import { ClientSession, type ClientSessionOptions } from './client-session.js';
import type { HeaderList } from './request.js';
import { ServerSession, type ServerSessionOptions } from './server-session.js';
import type { Tunnel, TunnelOutput } from './tunnel.js';

/** Where decapsulated packets go: the stream they came from and the packet bytes (a view). */
export type PacketSink = (
  streamId: number,
  packet: Uint8Array,
  offset: number,
  length: number,
) => void;

function streamOutput(
  conn: H3Connection,
  stream: { id: number | undefined },
  role: 'client' | 'server',
  deliver: PacketSink,
): TunnelOutput {
  return {
    sendHeaders(headers: HeaderList): void {
      if (role === 'client') stream.id = conn.request(headers);
      else conn.respond(stream.id as number, headers);
    },
    sendData(bytes: Uint8Array, fin: boolean): void {
      if (stream.id === undefined) return;
      if (bytes.length > 0) conn.sendData(stream.id, bytes);
      if (fin) conn.endStream(stream.id);
    },
    resetStream(code: number): void {
      if (stream.id !== undefined) conn.resetStream(stream.id, code);
    },
    sendDatagram(payload: Uint8Array, offset: number, length: number): void {
      if (stream.id !== undefined)
        conn.sendDatagram(stream.id, payload.subarray(offset, offset + length));
    },
    deliverPacket(packet: Uint8Array, offset: number, length: number): void {
      deliver(stream.id as number, packet, offset, length);
    },
  };
}

abstract class TunnelConnection<T extends Tunnel> {
  protected readonly tunnels = new Map<number, T>();

  constructor(readonly conn: H3Connection) {}

  /** Tunnels by request stream ID. */
  get sessions(): ReadonlyMap<number, T> {
    return this.tunnels;
  }

  /**
   * A QUIC DATAGRAM frame's data. The H3Connection checks the quarter stream ID (closing the
   * connection on H3_DATAGRAM_ERROR / H3_ID_ERROR); the payload goes to the stream's tunnel.
   */
  receiveDatagram(data: Uint8Array): void {
    const target = this.conn.receiveDatagram(data);
    if (!target) return;
    const tunnel = this.tunnels.get(target.streamId);
    if (tunnel) tunnel.receiveDatagram(data, target.offset, data.length - target.offset);
  }

  /** Drains the H3Connection's events into the tunnels. */
  pump(): void {
    for (let ev = this.conn.pollEvent(); ev; ev = this.conn.pollEvent()) this.handle(ev);
  }

  protected handle(ev: H3Event): void {
    switch (ev.kind) {
      case 'data':
        this.tunnels.get(ev.streamId)?.onData(ev.data);
        return;
      case 'end':
        this.tunnels.get(ev.streamId)?.onFin();
        this.forgetIfClosed(ev.streamId);
        return;
      case 'reset':
      case 'stopSending':
      case 'aborted':
        // Whatever the code and whoever aborted, the tunnel is gone (§10.1 item 19).
        this.tunnels.get(ev.streamId)?.onReset(ev.code);
        this.tunnels.delete(ev.streamId);
        return;
      case 'closed':
        for (const t of this.tunnels.values()) t.onReset(ev.code);
        this.tunnels.clear();
        return;
      default:
        return;
    }
  }

  protected forgetIfClosed(streamId: number): void {
    if (this.tunnels.get(streamId)?.state === 'closed') this.tunnels.delete(streamId);
  }
}

export interface ProxyConnectionOptions {
  /** Session options for each new request, minus the outputs this class provides. */
  session(streamId: number): Omit<ServerSessionOptions, 'output'>;
  deliver: PacketSink;
}

/** The proxy side: every Extended CONNECT becomes a ServerSession. */
export class ProxyConnection extends TunnelConnection<ServerSession> {
  private readonly pending = new Set<Promise<void>>();

  constructor(
    conn: H3Connection,
    private readonly opts: ProxyConnectionOptions,
  ) {
    super(conn);
  }

  /** Resolves when every request seen so far has been authorised or refused (tests, shutdown). */
  async settled(): Promise<void> {
    await Promise.all([...this.pending]);
  }

  /**
   * Graceful shutdown (§1.5, §10.1 item 20): GOAWAY so no new tunnels arrive, FIN every tunnel;
   * the owner closes the connection with H3_NO_ERROR once they are finished.
   */
  shutdown(): void {
    this.conn.goaway();
    for (const t of this.tunnels.values()) t.close();
  }

  /** Closes the connection once no tunnel is left; returns whether it did. */
  closeIfIdle(): boolean {
    if (this.tunnels.size > 0) return false;
    this.conn.close(H3_NO_ERROR);
    return true;
  }

  protected override handle(ev: H3Event): void {
    if (ev.kind !== 'request') return super.handle(ev);
    const stream = { id: ev.streamId as number | undefined };
    const session = new ServerSession({
      ...this.opts.session(ev.streamId),
      output: streamOutput(this.conn, stream, 'server', this.opts.deliver),
    });
    this.tunnels.set(ev.streamId, session);
    const p = session.onRequestHeaders(ev.headers).then(() => {
      this.pending.delete(p);
      this.forgetIfClosed(ev.streamId);
    });
    this.pending.add(p);
  }
}

export interface ClientConnectionOptions {
  deliver: PacketSink;
  /** Clock for response timing (address-request grace). */
  now?: () => number;
}

/** The client side: opens tunnels once the server's SETTINGS allow it. */
export class ClientConnection extends TunnelConnection<ClientSession> {
  constructor(
    conn: H3Connection,
    private readonly opts: ClientConnectionOptions,
  ) {
    super(conn);
  }

  /**
   * Opens a tunnel. Throws the H3 layer's usage error before the server's SETTINGS, without
   * ENABLE_CONNECT_PROTOCOL, or after GOAWAY (§10.1 items 3 and 20): check `conn.canConnect()`.
   */
  open(opts: Omit<ClientSessionOptions, 'output' | 'streamId'>): ClientSession {
    const stream: { id: number | undefined } = { id: undefined };
    const session = new ClientSession({
      ...opts,
      output: streamOutput(this.conn, stream, 'client', this.opts.deliver),
    });
    session.start();
    session.streamId = stream.id;
    this.tunnels.set(stream.id as number, session);
    return session;
  }

  /** The earliest timer any tunnel wants (ms), or undefined. */
  nextTimeout(): number | undefined {
    let next: number | undefined;
    for (const t of this.tunnels.values()) {
      const due = t.nextTimeout();
      if (due !== undefined && (next === undefined || due < next)) next = due;
    }
    return next;
  }

  /** Runs the tunnels' due timers (the ADDRESS_REQUEST grace period). */
  onTimeout(now: number): void {
    for (const t of this.tunnels.values()) t.onTimeout(now);
  }

  protected override handle(ev: H3Event): void {
    switch (ev.kind) {
      case 'response': {
        const t = this.tunnels.get(ev.streamId);
        t?.onResponseHeaders(ev.headers, (this.opts.now ?? Date.now)());
        this.forgetIfClosed(ev.streamId);
        return;
      }
      case 'goaway':
        for (const [id, t] of this.tunnels) if (!t.onGoaway(ev.id)) this.tunnels.delete(id);
        return;
      default:
        super.handle(ev);
    }
  }
}
