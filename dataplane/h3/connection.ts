// The HTTP/3 connection state machine (RFC 9114), for both roles, sans-I/O. The QUIC glue feeds
// stream bytes, resets, STOP_SENDINGs and datagrams in; transport actions come out of
// `pollAction()` and application events out of `pollEvent()`. Interop rules: PROTOCOL.md §1–3, §10.

import { datagramHeaderSize, readQuarterStreamId, writeDatagramHeader } from './datagram.js';
import { H3Error, H3ErrorCode, H3UsageError } from './error.js';
import {
  DEFAULT_FRAME_LIMITS,
  FrameReader,
  FrameType,
  decodeIdPayload,
  encodeFrame,
  encodeIdFrame,
  frameHeaderSize,
  greaseValue,
  writeFrameHeader,
  type FrameLimits,
  type FrameSink,
} from './frame.js';
import { headerValue, validateRequestHeaders, validateResponseHeaders } from './message.js';
import {
  QpackDecoderStreamReader,
  QpackEncoderStreamReader,
  decodeFieldSection,
  encodeFieldSection,
  fieldSectionSize,
  type HeaderList,
  type HuffmanMode,
} from './qpack.js';
import {
  decodeSettings,
  encodeSettingsFrame,
  localSettings,
  type PeerSettings,
} from './settings.js';
import { readVarint } from './varint.js';

export type Role = 'client' | 'server';

/** Unidirectional stream types (RFC 9114 §6.2, RFC 9204 §4.2). */
export const UniStreamType = {
  CONTROL: 0x00,
  PUSH: 0x01,
  QPACK_ENCODER: 0x02,
  QPACK_DECODER: 0x03,
} as const;

/** The largest client-bidi stream ID, for the first GOAWAY of a graceful shutdown (§1.5). */
export const GOAWAY_MAX_ID = 2n ** 62n - 4n;

export interface H3ConnectionOptions {
  role: Role;
  /** The QUIC DATAGRAM extension was negotiated (both sides sent max_datagram_frame_size). */
  quicDatagrams?: boolean;
  /** Server: advertise ENABLE_CONNECT_PROTOCOL=1 (default true). */
  enableConnectProtocol?: boolean;
  /** Client: refuse Extended CONNECT until the server enabled it (default true; false = Cloudflare). */
  requirePeerConnectProtocol?: boolean;
  /** Send and accept the draft-00 H3_DATAGRAM setting 0x276 (Cloudflare). */
  draftDatagramSetting?: boolean;
  /** Advertised SETTINGS_MAX_FIELD_SECTION_SIZE (not sent when undefined). */
  maxFieldSectionSize?: number;
  /** Largest HEADERS payload we buffer (default 65536); beyond it: stream error H3_EXCESSIVE_LOAD. */
  maxHeadersFrameSize?: number;
  /** Largest SETTINGS payload we buffer (default 16384); beyond it: H3_EXCESSIVE_LOAD. */
  maxControlFrameSize?: number;
  /** Open our (silent) QPACK encoder and decoder streams, as quiche does (default false). */
  openQpackStreams?: boolean;
  /** Check the peer's QPACK streams (PROTOCOL.md §3.6 strict mode) instead of draining them. */
  strictQpackStreams?: boolean;
  /** Send a GREASE setting and a GREASE frame on the control stream (default false). */
  grease?: boolean;
  /** Server: the QUIC bidi stream limit granted to the client; larger datagram QSIDs → H3_ID_ERROR. */
  maxPeerBidiStreams?: number;
  /** How our field sections use Huffman (default 'auto'). */
  huffman?: HuffmanMode;
}

export type H3Action =
  | { kind: 'openStream'; streamId: number; uni: boolean }
  | { kind: 'write'; streamId: number; data: Uint8Array; fin: boolean }
  | { kind: 'resetStream'; streamId: number; code: number }
  | { kind: 'stopSending'; streamId: number; code: number }
  | { kind: 'datagram'; data: Uint8Array }
  | { kind: 'close'; code: number; reason: string };

export type H3Event =
  | { kind: 'settings'; settings: PeerSettings }
  | { kind: 'request'; streamId: number; headers: HeaderList }
  | { kind: 'response'; streamId: number; status: number; headers: HeaderList }
  | { kind: 'data'; streamId: number; data: Uint8Array }
  | { kind: 'end'; streamId: number }
  | { kind: 'reset'; streamId: number; code: number }
  | { kind: 'stopSending'; streamId: number; code: number }
  | { kind: 'aborted'; streamId: number; code: number }
  | { kind: 'goaway'; id: number }
  | { kind: 'closed'; code: number; reason: string; local: boolean };

/** Where a received HTTP datagram goes. Reused between calls: copy the fields out. */
export interface DatagramTarget {
  streamId: number;
  /** The HTTP datagram payload starts here in the buffer passed to `receiveDatagram`. */
  offset: number;
}

class Queue<T> {
  private items: T[] = [];
  private head = 0;
  push(item: T): void {
    this.items.push(item);
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head++];
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    }
    return item;
  }
  get length(): number {
    return this.items.length - this.head;
  }
}

/**
 * Closed stream IDs of one kind (step 4), kept compact: everything below the watermark is closed,
 * and only IDs closed out of order sit in the set.
 */
class ClosedStreams {
  private watermark: number;
  private readonly above = new Set<number>();
  constructor(first: number) {
    this.watermark = first;
  }
  add(id: number): void {
    if (id < this.watermark) return;
    this.above.add(id);
    while (this.above.delete(this.watermark)) this.watermark += 4;
  }
  has(id: number): boolean {
    return id < this.watermark || this.above.has(id);
  }
}

type RequestPhase = 'head' | 'body';

/** What a request stream's frames are handed to; one instance per connection. */
interface RequestFrameHandler {
  frameStart(req: RequestStream, type: number): void;
  data(req: RequestStream, bytes: Uint8Array): void;
  frame(req: RequestStream, type: number, payload: Uint8Array): void;
}

class RequestStream implements FrameSink {
  phase: RequestPhase = 'head';
  /** Server: a final (non-1xx) response was sent. */
  responded = false;
  recvClosed = false;
  sendClosed = false;
  readonly reader: FrameReader;

  constructor(
    readonly id: number,
    /** Extended CONNECT: datagrams and capsules, no trailers (RFC 9297 §3.2, RFC 9114 §4.4). */
    public extended: boolean,
    limits: FrameLimits,
    private readonly handler: RequestFrameHandler,
  ) {
    this.reader = new FrameReader(limits);
  }

  frameStart(type: number): void {
    this.handler.frameStart(this, type);
  }
  data(bytes: Uint8Array): void {
    this.handler.data(this, bytes);
  }
  frame(type: number, payload: Uint8Array): void {
    this.handler.frame(this, type, payload);
  }
}

type PeerUniKind = 'unknownType' | 'control' | 'encoder' | 'decoder' | 'ignored';

interface PeerUniStream {
  id: number;
  kind: PeerUniKind;
  typeBytes: Uint8Array;
  typeLength: number;
  reader?: FrameReader;
  sink?: FrameSink;
  encoder?: QpackEncoderStreamReader;
  decoder?: QpackDecoderStreamReader;
}

const EMPTY = new Uint8Array(0);

export class H3Connection {
  readonly role: Role;
  private readonly opts: Required<
    Omit<H3ConnectionOptions, 'maxFieldSectionSize' | 'maxPeerBidiStreams'>
  > &
    Pick<H3ConnectionOptions, 'maxFieldSectionSize' | 'maxPeerBidiStreams'>;
  private readonly limits: FrameLimits;
  private readonly actions = new Queue<H3Action>();
  private readonly events = new Queue<H3Event>();

  private readonly requests = new Map<number, RequestStream>();
  private readonly peerUni = new Map<number, PeerUniStream>();
  private readonly closedRequests: ClosedStreams;
  private readonly closedPeerUni: ClosedStreams;
  private readonly ownCritical = new Set<number>();
  private nextUniId: number;
  private nextBidiId = 0;
  private controlStreamId: number;

  private peerControlSeen = false;
  private peerEncoderSeen = false;
  private peerDecoderSeen = false;
  private peerMaxPushId = -1;

  private settings: PeerSettings | undefined;
  private goawayIn: number | undefined;
  private goawayOut: number | undefined;
  private isClosed = false;
  private readonly target: DatagramTarget = { streamId: 0, offset: 0 };
  private readonly qsid = { qsid: 0, offset: 0 };

  constructor(options: H3ConnectionOptions) {
    this.role = options.role;
    this.opts = {
      role: options.role,
      quicDatagrams: options.quicDatagrams ?? true,
      enableConnectProtocol: options.enableConnectProtocol ?? true,
      requirePeerConnectProtocol: options.requirePeerConnectProtocol ?? true,
      draftDatagramSetting: options.draftDatagramSetting ?? false,
      maxFieldSectionSize: options.maxFieldSectionSize,
      maxHeadersFrameSize: options.maxHeadersFrameSize ?? DEFAULT_FRAME_LIMITS.maxHeadersPayload,
      maxControlFrameSize: options.maxControlFrameSize ?? DEFAULT_FRAME_LIMITS.maxControlPayload,
      openQpackStreams: options.openQpackStreams ?? false,
      strictQpackStreams: options.strictQpackStreams ?? false,
      grease: options.grease ?? false,
      maxPeerBidiStreams: options.maxPeerBidiStreams,
      huffman: options.huffman ?? 'auto',
    };
    this.limits = {
      maxHeadersPayload: this.opts.maxHeadersFrameSize,
      maxControlPayload: this.opts.maxControlFrameSize,
    };
    const client = this.role === 'client';
    this.nextUniId = client ? 2 : 3;
    this.closedRequests = new ClosedStreams(0);
    this.closedPeerUni = new ClosedStreams(client ? 3 : 2);
    this.controlStreamId = this.openOwnUni(UniStreamType.CONTROL);
    const settings = encodeSettingsFrame(
      localSettings({
        role: this.role,
        enableConnectProtocol: this.opts.enableConnectProtocol,
        maxFieldSectionSize: this.opts.maxFieldSectionSize,
        draftDatagram: this.opts.draftDatagramSetting,
        greaseN: this.opts.grease ? 1 + Math.floor(Math.random() * 1000) : undefined,
      }),
    );
    this.write(this.controlStreamId, settings, false);
    if (this.opts.grease) {
      const n = Math.floor(Math.random() * 1000);
      this.write(this.controlStreamId, encodeFrame(greaseValue(n), Uint8Array.of(n & 0xff)), false);
    }
    if (this.opts.openQpackStreams) {
      this.openOwnUni(UniStreamType.QPACK_ENCODER);
      this.openOwnUni(UniStreamType.QPACK_DECODER);
    }
  }

  // ---- state ---------------------------------------------------------------------------------

  /** The peer's SETTINGS, once received. */
  get peerSettings(): PeerSettings | undefined {
    return this.settings;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** The ID from the peer's last GOAWAY, if any. */
  get goawayReceived(): number | undefined {
    return this.goawayIn;
  }

  /** Whether HTTP datagrams may be sent: H3_DATAGRAM=1 was sent (always) and received. */
  canSendDatagrams(): boolean {
    const s = this.settings;
    if (!s || this.isClosed || !this.opts.quicDatagrams) return false;
    return s.h3Datagram || (this.opts.draftDatagramSetting && s.h3DatagramDraft00);
  }

  /** Client: whether an Extended CONNECT may be sent now. */
  canConnect(): boolean {
    if (this.role !== 'client' || this.isClosed || this.goawayIn !== undefined) return false;
    if (!this.opts.requirePeerConnectProtocol) return true;
    return this.settings?.enableConnectProtocol === true;
  }

  // ---- outputs -------------------------------------------------------------------------------

  pollAction(): H3Action | undefined {
    return this.actions.shift();
  }

  pollEvent(): H3Event | undefined {
    return this.events.shift();
  }

  // ---- inputs --------------------------------------------------------------------------------

  /** Bytes received on a stream; `fin` when the peer finished it. */
  streamData(streamId: number, bytes: Uint8Array, fin: boolean): void {
    if (this.isClosed) return;
    try {
      if ((streamId & 2) === 0) this.onBidiData(streamId, bytes, fin);
      else this.onUniData(streamId, bytes, fin);
    } catch (err) {
      this.onError(err, streamId);
    }
  }

  /** The peer reset a stream (RESET_STREAM). */
  streamReset(streamId: number, code: number): void {
    if (this.isClosed) return;
    const uni = this.peerUni.get(streamId);
    if (uni) {
      if (uni.kind === 'control' || uni.kind === 'encoder' || uni.kind === 'decoder') {
        this.fail(H3ErrorCode.CLOSED_CRITICAL_STREAM, `peer reset its ${uni.kind} stream`);
        return;
      }
      // A stream reset before (or after) its type byte is tolerated (RFC 9114 §6.2).
      this.peerUni.delete(streamId);
      this.closedPeerUni.add(streamId);
      return;
    }
    const req = this.requests.get(streamId);
    if (!req || req.recvClosed) return;
    req.recvClosed = true;
    req.reader.halt();
    if (!this.appKnows(req)) {
      // Cancelled before its request was complete: nobody above will ever close our side.
      this.closeRequest(req, H3ErrorCode.REQUEST_CANCELLED);
      return;
    }
    this.events.push({ kind: 'reset', streamId, code });
    this.maybeForget(req);
  }

  /** The peer asked us to stop sending on a stream (STOP_SENDING). */
  stopSending(streamId: number, code: number): void {
    if (this.isClosed) return;
    if (this.ownCritical.has(streamId)) {
      this.fail(H3ErrorCode.CLOSED_CRITICAL_STREAM, 'peer stopped one of our critical streams');
      return;
    }
    const req = this.requests.get(streamId);
    if (!req || req.sendClosed) return;
    if (!this.appKnows(req)) {
      // We could never answer this request: drop it whole.
      this.closeRequest(req, code);
      return;
    }
    req.sendClosed = true;
    this.actions.push({ kind: 'resetStream', streamId, code });
    this.events.push({ kind: 'stopSending', streamId, code });
    this.maybeForget(req);
  }

  /**
   * A QUIC DATAGRAM payload. Returns where the HTTP datagram payload is (a reused object) or null
   * when the datagram is dropped or closed the connection.
   */
  receiveDatagram(data: Uint8Array): DatagramTarget | null {
    if (this.isClosed) return null;
    try {
      readQuarterStreamId(data, this.qsid);
    } catch (err) {
      this.onError(err, -1);
      return null;
    }
    if (!this.canSendDatagrams()) return null; // the peer never enabled them: drop
    const qsid = this.qsid.qsid;
    const max = this.opts.maxPeerBidiStreams;
    if (this.role === 'server' && max !== undefined && qsid >= max) {
      this.fail(H3ErrorCode.ID_ERROR, `datagram for stream ${qsid * 4} beyond the stream limit`);
      return null;
    }
    const streamId = qsid * 4;
    const req = this.requests.get(streamId);
    if (!req || req.recvClosed || req.phase === 'head') return null;
    if (!req.extended) {
      this.abortStream(req, H3ErrorCode.DATAGRAM_ERROR);
      return null;
    }
    this.target.streamId = streamId;
    this.target.offset = this.qsid.offset;
    return this.target;
  }

  /** The QUIC connection closed underneath us. */
  transportClosed(code: number, reason = ''): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.events.push({ kind: 'closed', code, reason, local: false });
  }

  // ---- request-stream API --------------------------------------------------------------------

  /** Client: sends a request's HEADERS on a new stream (no FIN: a CONNECT stream stays open). */
  request(headers: ReadonlyArray<readonly [string, string]>): number {
    if (this.role !== 'client') throw new H3UsageError('only a client sends requests');
    if (this.isClosed) throw new H3UsageError('connection closed');
    if (this.goawayIn !== undefined) throw new H3UsageError('peer sent GOAWAY');
    const extended = headerValue(headers, ':protocol') !== undefined;
    if (extended && !this.canConnect()) {
      throw new H3UsageError(
        this.settings
          ? 'server did not enable Extended CONNECT'
          : "Extended CONNECT before the server's SETTINGS",
      );
    }
    const block = this.encodeHeaders(headers);
    const id = this.nextBidiId;
    this.nextBidiId += 4;
    this.requests.set(id, this.newRequest(id, extended));
    this.actions.push({ kind: 'openStream', streamId: id, uni: false });
    this.write(id, block, false);
    return id;
  }

  /** Server: sends response HEADERS (any number of 1xx, then one final). */
  respond(streamId: number, headers: ReadonlyArray<readonly [string, string]>): void {
    if (this.role !== 'server') throw new H3UsageError('only a server responds');
    const req = this.sendable(streamId);
    if (!req) return;
    if (req.responded) throw new H3UsageError('final response already sent');
    const status = Number(headerValue(headers, ':status'));
    if (!(status >= 100 && status <= 599))
      throw new H3UsageError('response without a valid :status');
    const block = this.encodeHeaders(headers);
    if (status >= 200) req.responded = true;
    this.write(streamId, block, false);
  }

  /** Sends `bytes` as one DATA frame. */
  sendData(streamId: number, bytes: Uint8Array): void {
    const req = this.sendable(streamId);
    if (!req) return;
    if (this.role === 'server' && !req.responded) {
      throw new H3UsageError('DATA before the response HEADERS');
    }
    const out = new Uint8Array(frameHeaderSize(FrameType.DATA, bytes.length) + bytes.length);
    out.set(bytes, writeFrameHeader(out, 0, FrameType.DATA, bytes.length));
    this.actions.push({ kind: 'write', streamId, data: out, fin: false });
  }

  /** Finishes our side of the stream (FIN). */
  endStream(streamId: number): void {
    const req = this.sendable(streamId);
    if (!req) return;
    req.sendClosed = true;
    this.actions.push({ kind: 'write', streamId, data: EMPTY, fin: true });
    this.maybeForget(req);
  }

  /** Abortive close of both directions: RESET_STREAM + STOP_SENDING with `code`. */
  resetStream(streamId: number, code: number): void {
    const req = this.requests.get(streamId);
    if (!req || this.isClosed) return;
    this.closeRequest(req, code);
  }

  /** Queues an HTTP datagram; returns false (dropped) when not allowed on this stream now. */
  sendDatagram(streamId: number, payload: Uint8Array): boolean {
    if (!this.canSendDatagrams()) return false;
    const req = this.requests.get(streamId);
    if (!req || req.sendClosed || !req.extended) return false;
    const out = new Uint8Array(datagramHeaderSize(streamId) + payload.length);
    out.set(payload, writeDatagramHeader(out, 0, streamId));
    this.actions.push({ kind: 'datagram', data: out });
    return true;
  }

  /**
   * Zero-copy send path: checks that a datagram may go out on `streamId` and writes its quarter
   * stream ID at `offset` of the caller's buffer (reserve `datagramHeaderSize(streamId)` bytes of
   * headroom). Returns where the payload must start, or -1 when the datagram must be dropped. The
   * caller hands the finished buffer to QUIC itself; no action is queued.
   */
  prepareDatagram(streamId: number, buf: Uint8Array, offset: number): number {
    if (!this.canSendDatagrams()) return -1;
    const req = this.requests.get(streamId);
    if (!req || req.sendClosed || !req.extended) return -1;
    return writeDatagramHeader(buf, offset, streamId);
  }

  /**
   * Sends GOAWAY. Server: `id` is the first request stream it will not process (default: the next
   * one the client would open); pass GOAWAY_MAX_ID first for a two-phase shutdown. Client: a push
   * ID (default 0; we never allow pushes). IDs may only decrease.
   */
  goaway(id?: number | bigint): void {
    if (this.isClosed) return;
    const wire = BigInt(id ?? (this.role === 'server' ? this.nextPeerRequestId() : 0));
    if (this.role === 'server' && wire % 4n !== 0n) {
      throw new H3UsageError('server GOAWAY needs a client-bidi stream ID');
    }
    const value = Number(wire); // rounding above 2^53 only affects IDs no stream can reach
    if (this.goawayOut !== undefined && value > this.goawayOut) {
      throw new H3UsageError('GOAWAY IDs must not increase');
    }
    this.goawayOut = value;
    this.write(this.controlStreamId, encodeIdFrame(FrameType.GOAWAY, wire), false);
  }

  /** Closes the connection (graceful when code is H3_NO_ERROR). */
  close(code: number = H3ErrorCode.NO_ERROR, reason = ''): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.actions.push({ kind: 'close', code, reason });
    this.events.push({ kind: 'closed', code, reason, local: true });
  }

  // ---- internals: bidirectional (request) streams ---------------------------------------------

  private onBidiData(id: number, bytes: Uint8Array, fin: boolean): void {
    let req = this.requests.get(id);
    if (!req) {
      if ((id & 1) === 1) {
        throw new H3Error(H3ErrorCode.STREAM_CREATION_ERROR, `server-initiated bidi stream ${id}`);
      }
      if (this.role === 'client' || this.closedRequests.has(id)) return; // finished: late bytes
      req = this.newRequest(id, false);
      this.requests.set(id, req);
      if (this.goawayOut !== undefined && id >= this.goawayOut) {
        this.closeRequest(req, H3ErrorCode.REQUEST_REJECTED);
        return;
      }
    }
    if (req.recvClosed) return;
    req.reader.push(bytes, req);
    if (fin && !req.recvClosed) {
      req.reader.end();
      if (req.phase === 'head') {
        throw new H3Error(
          this.role === 'server' ? H3ErrorCode.REQUEST_INCOMPLETE : H3ErrorCode.MESSAGE_ERROR,
          'stream finished before the message head',
          'stream',
        );
      }
      req.recvClosed = true;
      this.events.push({ kind: 'end', streamId: id });
      this.maybeForget(req);
    }
  }

  private readonly requestHandler: RequestFrameHandler = {
    frameStart: (req, type) => this.requestFrameStart(req, type),
    data: (req, bytes) => {
      if (!req.recvClosed) this.events.push({ kind: 'data', streamId: req.id, data: bytes });
    },
    frame: (req, type, payload) => this.requestFrame(req, type, payload),
  };

  private newRequest(id: number, extended: boolean): RequestStream {
    return new RequestStream(id, extended, this.limits, this.requestHandler);
  }

  private requestFrameStart(req: RequestStream, type: number): void {
    switch (type) {
      case FrameType.DATA:
        if (req.phase === 'head') {
          throw new H3Error(H3ErrorCode.FRAME_UNEXPECTED, 'DATA before HEADERS');
        }
        return;
      case FrameType.HEADERS:
        if (req.phase === 'body' && req.extended) {
          throw new H3Error(H3ErrorCode.FRAME_UNEXPECTED, 'HEADERS after an Extended CONNECT head');
        }
        return;
      case FrameType.PUSH_PROMISE:
        if (this.role === 'client') {
          throw new H3Error(H3ErrorCode.ID_ERROR, 'PUSH_PROMISE without MAX_PUSH_ID');
        }
        throw new H3Error(H3ErrorCode.FRAME_UNEXPECTED, 'PUSH_PROMISE from a client');
      case FrameType.SETTINGS:
      case FrameType.GOAWAY:
      case FrameType.CANCEL_PUSH:
      case FrameType.MAX_PUSH_ID:
        throw new H3Error(
          H3ErrorCode.FRAME_UNEXPECTED,
          `frame 0x${type.toString(16)} on a request stream`,
        );
    }
  }

  private requestFrame(req: RequestStream, _type: number, payload: Uint8Array): void {
    // Only HEADERS reaches here: every other buffered type was rejected in requestFrameStart.
    const headers = decodeFieldSection(payload);
    const limit = this.opts.maxFieldSectionSize;
    if (limit !== undefined && fieldSectionSize(headers) > limit) {
      throw new H3Error(
        H3ErrorCode.EXCESSIVE_LOAD,
        'field section over our advertised limit',
        'stream',
      );
    }
    if (req.phase === 'body') return; // trailers of a plain request: nothing here uses them
    if (this.role === 'server') {
      const head = validateRequestHeaders(headers, this.opts.enableConnectProtocol);
      req.extended = head.protocol !== undefined;
      req.phase = 'body';
      this.events.push({ kind: 'request', streamId: req.id, headers });
      return;
    }
    const status = validateResponseHeaders(headers);
    if (status < 200) return; // interim response
    req.phase = 'body';
    this.events.push({ kind: 'response', streamId: req.id, status, headers });
  }

  /** The stream to send on; undefined once the connection is closed (sends become no-ops). */
  private sendable(streamId: number): RequestStream | undefined {
    if (this.isClosed) return undefined;
    const req = this.requests.get(streamId);
    if (!req || req.sendClosed)
      throw new H3UsageError(`stream ${streamId} is not open for sending`);
    return req;
  }

  private abortStream(req: RequestStream, code: number): void {
    this.closeRequest(req, code);
    if (this.appKnows(req)) this.events.push({ kind: 'aborted', streamId: req.id, code });
  }

  /** A server's application learns of a request stream only once its HEADERS were valid. */
  private appKnows(req: RequestStream): boolean {
    return this.role === 'client' || req.phase === 'body';
  }

  private closeRequest(req: RequestStream, code: number): void {
    req.reader.halt();
    if (!req.sendClosed) this.actions.push({ kind: 'resetStream', streamId: req.id, code });
    if (!req.recvClosed) this.actions.push({ kind: 'stopSending', streamId: req.id, code });
    req.sendClosed = true;
    req.recvClosed = true;
    this.maybeForget(req);
  }

  private maybeForget(req: RequestStream): void {
    if (req.sendClosed && req.recvClosed) {
      this.requests.delete(req.id);
      this.closedRequests.add(req.id);
    }
  }

  private nextPeerRequestId(): number {
    let next = 0;
    for (const id of this.requests.keys()) next = Math.max(next, id + 4);
    // Streams already finished also count as processed.
    while (this.closedRequests.has(next)) next += 4;
    return next;
  }

  // ---- internals: unidirectional streams -----------------------------------------------------

  private onUniData(id: number, bytes: Uint8Array, fin: boolean): void {
    const peerParity = this.role === 'client' ? 1 : 0;
    if ((id & 1) !== peerParity) return; // our own send-only stream: nothing to read
    let s = this.peerUni.get(id);
    if (!s) {
      if (this.closedPeerUni.has(id)) return;
      s = { id, kind: 'unknownType', typeBytes: new Uint8Array(8), typeLength: 0 };
      this.peerUni.set(id, s);
    }
    let off = 0;
    while (s.kind === 'unknownType' && off < bytes.length) {
      s.typeBytes[s.typeLength++] = bytes[off++];
      const v = readVarint(s.typeBytes.subarray(0, s.typeLength), 0);
      if (v) this.assignUniType(s, v.value);
    }
    const rest = off === 0 ? bytes : bytes.subarray(off);
    switch (s.kind) {
      case 'control':
        s.reader!.push(rest, s.sink!);
        break;
      case 'encoder':
        s.encoder!.push(rest);
        break;
      case 'decoder':
        s.decoder!.push(rest);
        break;
      default:
        break;
    }
    if (!fin) return;
    if (s.kind === 'control' || s.kind === 'encoder' || s.kind === 'decoder') {
      throw new H3Error(H3ErrorCode.CLOSED_CRITICAL_STREAM, `peer closed its ${s.kind} stream`);
    }
    this.peerUni.delete(id);
    this.closedPeerUni.add(id);
  }

  private assignUniType(s: PeerUniStream, type: number): void {
    switch (type) {
      case UniStreamType.CONTROL:
        if (this.peerControlSeen) {
          throw new H3Error(H3ErrorCode.STREAM_CREATION_ERROR, 'second control stream');
        }
        this.peerControlSeen = true;
        s.kind = 'control';
        s.reader = new FrameReader(this.limits);
        s.sink = {
          frameStart: (t) => this.controlFrameStart(t),
          data: () => {},
          frame: (t, payload) => this.controlFrame(t, payload),
        };
        return;
      case UniStreamType.PUSH:
        if (this.role === 'server') {
          throw new H3Error(H3ErrorCode.STREAM_CREATION_ERROR, 'push stream from a client');
        }
        throw new H3Error(H3ErrorCode.ID_ERROR, 'push stream without MAX_PUSH_ID');
      case UniStreamType.QPACK_ENCODER:
        if (this.peerEncoderSeen) {
          throw new H3Error(H3ErrorCode.STREAM_CREATION_ERROR, 'second QPACK encoder stream');
        }
        this.peerEncoderSeen = true;
        s.kind = 'encoder';
        s.encoder = new QpackEncoderStreamReader(this.opts.strictQpackStreams);
        return;
      case UniStreamType.QPACK_DECODER:
        if (this.peerDecoderSeen) {
          throw new H3Error(H3ErrorCode.STREAM_CREATION_ERROR, 'second QPACK decoder stream');
        }
        this.peerDecoderSeen = true;
        s.kind = 'decoder';
        s.decoder = new QpackDecoderStreamReader(this.opts.strictQpackStreams);
        return;
      default:
        // Unknown and GREASE types: stop reading, never a connection error (RFC 9114 §6.2).
        s.kind = 'ignored';
        this.actions.push({
          kind: 'stopSending',
          streamId: s.id,
          code: H3ErrorCode.STREAM_CREATION_ERROR,
        });
    }
  }

  private controlFrameStart(type: number): void {
    if (!this.settings) {
      if (type !== FrameType.SETTINGS) {
        throw new H3Error(H3ErrorCode.MISSING_SETTINGS, 'first control frame is not SETTINGS');
      }
      return;
    }
    switch (type) {
      case FrameType.SETTINGS:
        throw new H3Error(H3ErrorCode.FRAME_UNEXPECTED, 'second SETTINGS');
      case FrameType.DATA:
      case FrameType.HEADERS:
      case FrameType.PUSH_PROMISE:
        throw new H3Error(H3ErrorCode.FRAME_UNEXPECTED, `frame 0x${type} on the control stream`);
      case FrameType.MAX_PUSH_ID:
        if (this.role === 'client') {
          throw new H3Error(H3ErrorCode.FRAME_UNEXPECTED, 'MAX_PUSH_ID from a server');
        }
    }
  }

  private controlFrame(type: number, payload: Uint8Array): void {
    switch (type) {
      case FrameType.SETTINGS: {
        const settings = decodeSettings(payload);
        if (settings.h3Datagram && !this.opts.quicDatagrams) {
          throw new H3Error(
            H3ErrorCode.SETTINGS_ERROR,
            'H3_DATAGRAM without QUIC datagram support',
          );
        }
        this.settings = settings;
        this.events.push({ kind: 'settings', settings });
        return;
      }
      case FrameType.GOAWAY: {
        const id = decodeIdPayload(payload);
        // Tested on the last wire byte: IDs above 2^53 arrive rounded to a multiple of 4.
        if (this.role === 'client' && (payload[payload.length - 1] & 3) !== 0) {
          throw new H3Error(H3ErrorCode.ID_ERROR, `GOAWAY ${id} is not a client-bidi stream ID`);
        }
        if (this.goawayIn !== undefined && id > this.goawayIn) {
          throw new H3Error(H3ErrorCode.ID_ERROR, `GOAWAY ID grew from ${this.goawayIn} to ${id}`);
        }
        this.goawayIn = id;
        this.events.push({ kind: 'goaway', id });
        if (this.role === 'client') {
          // Requests at or above the ID will never be processed (RFC 9114 §5.2): fail them now
          // so the layer above can retry elsewhere instead of waiting.
          for (const req of [...this.requests.values()]) {
            if (req.id >= id) this.abortStream(req, H3ErrorCode.REQUEST_REJECTED);
          }
        }
        return;
      }
      case FrameType.CANCEL_PUSH:
        decodeIdPayload(payload);
        // We never send MAX_PUSH_ID and never promise a push, so every push ID is out of range.
        throw new H3Error(H3ErrorCode.ID_ERROR, 'CANCEL_PUSH for a push that cannot exist');
      case FrameType.MAX_PUSH_ID: {
        const id = decodeIdPayload(payload);
        if (id < this.peerMaxPushId)
          throw new H3Error(H3ErrorCode.ID_ERROR, 'MAX_PUSH_ID decreased');
        this.peerMaxPushId = id;
        return;
      }
    }
  }

  // ---- internals: misc -----------------------------------------------------------------------

  private openOwnUni(type: number): number {
    const id = this.nextUniId;
    this.nextUniId += 4;
    this.ownCritical.add(id);
    this.actions.push({ kind: 'openStream', streamId: id, uni: true });
    this.write(id, Uint8Array.of(type), false);
    return id;
  }

  private write(streamId: number, data: Uint8Array, fin: boolean): void {
    this.actions.push({ kind: 'write', streamId, data, fin });
  }

  private encodeHeaders(headers: ReadonlyArray<readonly [string, string]>): Uint8Array {
    const limit = this.settings?.maxFieldSectionSize ?? Infinity;
    if (fieldSectionSize(headers) > limit) {
      throw new H3UsageError(`field section exceeds the peer's limit of ${limit}`);
    }
    return encodeFrame(
      FrameType.HEADERS,
      encodeFieldSection(headers, { huffman: this.opts.huffman }),
    );
  }

  private onError(err: unknown, streamId: number): void {
    if (!(err instanceof H3Error)) throw err;
    const req = this.requests.get(streamId);
    if (err.scope === 'stream' && req) {
      this.abortStream(req, err.code);
      return;
    }
    this.fail(err.code, err.message);
  }

  private fail(code: number, reason: string): void {
    this.close(code, reason);
  }
}
