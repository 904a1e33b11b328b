// HTTP Datagrams (RFC 9297 §2) as CONNECT-IP uses them (RFC 9484 §5–6): the context ID at the start
// of the HTTP Datagram Payload, and a registry of context IDs so that an extension (FEC) can own
// one without disturbing context 0. The quarter stream ID in front belongs to h3/datagram.ts.

import { varintSize, writeVarint } from '../h3/varint.js';
import { copyBytes } from './bytes.js';

/** Context 0 carries a complete IP packet (RFC 9484 §6). */
export const CONTEXT_ID_IP = 0;

/**
 * Reads a varint at `buf[offset..end)` without allocating (this runs once per packet). Returns the
 * encoded length, or 0 if the bytes end first; the value is left in `out[0]`.
 */
export function readContextId(buf: Uint8Array, offset: number, end: number, out: number[]): number {
  if (offset >= end) return 0;
  const first = buf[offset];
  const length = 1 << (first >> 6);
  if (offset + length > end) return 0;
  let value = first & 0x3f;
  for (let i = 1; i < length; i++) value = value * 256 + buf[offset + i];
  out[0] = value;
  return length;
}

/**
 * Writes `contextId` then `len` bytes of `packet` at `out[offset..]`; returns the end offset. The
 * caller provides a buffer large enough (`contextIdSize(id) + len`), so nothing is allocated.
 */
export function writeDatagramPayload(
  out: Uint8Array,
  offset: number,
  contextId: number,
  packet: Uint8Array,
  packetOffset: number,
  len: number,
): number {
  const off = writeVarint(out, offset, contextId);
  copyBytes(packet, packetOffset, out, off, len);
  return off + len;
}

export function contextIdSize(contextId: number): number {
  return varintSize(contextId);
}

export type Role = 'client' | 'proxy';

/** Receives the part of an HTTP Datagram Payload after the context ID. */
export type ContextHandler = (buf: Uint8Array, offset: number, length: number) => void;

export class ContextIdError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ContextIdError';
  }
}

export interface DatagramStats {
  /** Datagrams handed to the IP (context 0) handler. */
  ip: number;
  /** Datagrams handed to extension handlers. */
  extension: number;
  /** Dropped: context ID not registered. */
  unknownContext: number;
  /** Dropped: no parseable context ID (not covered by the RFCs; PROTOCOL.md §5). */
  unparseable: number;
}

/**
 * Context IDs of one request stream. RFC 9484 §5: even IDs are allocated by the client, odd IDs by
 * the proxy, and an ID is never reused within the stream. `allocate()` hands out our own IDs;
 * `register()` binds an ID (ours, or one the peer announced through an extension) to a handler.
 * Datagrams with unregistered IDs are dropped and counted, never an error (RFC 9484 §6).
 */
export class ContextRegistry {
  readonly stats: DatagramStats = { ip: 0, extension: 0, unknownContext: 0, unparseable: 0 };
  private readonly handlers = new Map<number, ContextHandler>();
  private readonly retired = new Set<number>();
  private nextOwn: number;
  private readonly scratch = [0];

  constructor(
    readonly role: Role,
    private ipHandler: ContextHandler,
  ) {
    // Context 0 is IP and fixed; our first own ID is 2 (client) or 1 (proxy).
    this.nextOwn = role === 'client' ? 2 : 1;
  }

  /** Reserves the next unused ID of our parity. */
  allocate(): number {
    const id = this.nextOwn;
    this.nextOwn += 2;
    return id;
  }

  /** Whether `id` belongs to `role` by parity. */
  static allocatedBy(id: number): Role {
    return id % 2 === 0 ? 'client' : 'proxy';
  }

  /**
   * Binds `id` to `handler`. Refuses context 0 (IP is built in), an ID already bound, and an ID
   * that was unregistered before (IDs are never reused). Own IDs must come from `allocate()`.
   */
  register(id: number, handler: ContextHandler): void {
    if (!Number.isSafeInteger(id) || id <= 0)
      throw new ContextIdError(`context ID ${id} cannot be registered`);
    if (this.handlers.has(id)) throw new ContextIdError(`context ID ${id} is already registered`);
    if (this.retired.has(id)) throw new ContextIdError(`context ID ${id} was used before`);
    if (ContextRegistry.allocatedBy(id) === this.role && id >= this.nextOwn)
      throw new ContextIdError(`context ID ${id} was not allocated by this ${this.role}`);
    this.handlers.set(id, handler);
  }

  /** Ends the use of an ID; datagrams for it are dropped from now on and it is never reused. */
  unregister(id: number): void {
    if (this.handlers.delete(id)) this.retired.add(id);
  }

  isRegistered(id: number): boolean {
    return id === CONTEXT_ID_IP || this.handlers.has(id);
  }

  /** Replaces the context-0 handler (the session owns the IP path). */
  setIpHandler(handler: ContextHandler): void {
    this.ipHandler = handler;
  }

  /**
   * Dispatches one HTTP Datagram Payload (`buf[offset, offset+length)`, after the quarter stream
   * ID) by context ID. Never throws on content: drops are counted in `stats`.
   */
  dispatch(buf: Uint8Array, offset: number, length: number): void {
    const end = offset + length;
    const idLength = readContextId(buf, offset, end, this.scratch);
    if (idLength === 0) {
      this.stats.unparseable++;
      return;
    }
    const id = this.scratch[0];
    const start = offset + idLength;
    if (id === CONTEXT_ID_IP) {
      this.stats.ip++;
      this.ipHandler(buf, start, end - start);
      return;
    }
    const handler = this.handlers.get(id);
    if (!handler) {
      this.stats.unknownContext++;
      return;
    }
    this.stats.extension++;
    handler(buf, start, end - start);
  }
}
