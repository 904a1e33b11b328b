// Packets from a file descriptor, read on this thread's own event loop (native uv_poll watcher,
// src/packet_reader.cc). For a TUN device this replaces "reader thread + ring + cross-thread
// wake-up" with one epoll wake-up of the loop that also runs QUIC; for an eventfd it is a
// doorbell that another thread rings with write(2).
import { loadAddon, QuicError } from './addon.js';

/** One wake-up's packets: slot(i)[0..length(i)) for i < count, valid during the callback only. */
export interface PacketBatch {
  slot(i: number): Uint8Array;
  length(i: number): number;
  /** The packet itself: a view (not a copy) into the reader's buffer. */
  packet(i: number): Uint8Array;
}

export interface PacketReaderOptions {
  /** Bytes per slot: larger than the largest packet (a read that fills a slot may be cut). */
  slotBytes?: number;
  /** Packets read per callback at most (default 64). */
  slotCount?: number;
}

export interface PacketReaderCounters {
  packets: number;
  bytes: number;
  wakeups: number;
  batches: number;
  errors: number;
  lastErrno: number;
  watching: boolean;
}

interface NativeReader {
  readonly slots: Uint8Array;
  readonly lengths: Uint32Array;
  close(): void;
  ref(on: boolean): void;
  counters(): PacketReaderCounters;
}

type NativeReaderClass = new (
  fd: number,
  slotBytes: number,
  slotCount: number,
  callback: (count: number, errno: number) => void,
) => NativeReader;

/**
 * Reading stopped for good: the descriptor failed (EBADF, or the poll itself failed), or reached
 * end of file (`errno` 0; a pipe whose writer closed, never a TUN).
 */
export class PacketReaderError extends QuicError {
  constructor(readonly errno: number) {
    super(
      errno === 0 ? 'packet reader stopped: end of file' : `packet reader stopped: errno ${errno}`,
      'ERR_PACKET_READER',
    );
    this.name = 'PacketReaderError';
  }
}

export class PacketReader implements PacketBatch {
  private readonly native: NativeReader;
  private readonly views: Uint8Array[];
  private readonly lengths: Uint32Array;
  private closed = false;

  /**
   * Starts watching `fd` (made non-blocking; never closed by the reader). `onPackets` gets this
   * reader as the batch and the number of packets in it; `onError` is called once if reading
   * stops on an error it cannot retry.
   */
  constructor(
    fd: number,
    options: PacketReaderOptions,
    onPackets: (batch: PacketBatch, count: number) => void,
    onError: (error: PacketReaderError) => void = () => {},
  ) {
    const slotBytes = options.slotBytes ?? 2048;
    const slotCount = options.slotCount ?? 64;
    const Native = loadAddon().NativePacketReader as NativeReaderClass;
    this.native = new Native(fd, slotBytes, slotCount, (count, errno) => {
      if (count >= 0) onPackets(this, count);
      else {
        this.closed = true;
        onError(new PacketReaderError(errno));
      }
    });
    this.lengths = this.native.lengths;
    // One view per slot, made once: a batch allocates nothing but the packet subarrays.
    this.views = [];
    for (let i = 0; i < slotCount; i++)
      this.views.push(this.native.slots.subarray(i * slotBytes, (i + 1) * slotBytes));
  }

  slot(i: number): Uint8Array {
    return this.views[i]!;
  }

  length(i: number): number {
    return this.lengths[i]!;
  }

  packet(i: number): Uint8Array {
    return this.views[i]!.subarray(0, this.lengths[i]);
  }

  /** Whether the watch keeps the event loop alive (it does by default, like a socket). */
  ref(on: boolean): void {
    this.native.ref(on);
  }

  counters(): PacketReaderCounters {
    return this.native.counters();
  }

  /** Stops watching; the descriptor stays open. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.close();
  }
}
