// The client's TUN packet I/O. netconfig.ts created the persistent device; this attaches to it.
// Reads run on the event loop that also runs QUIC: a native fd watcher (dataplane/quic
// packet-reader) wakes the loop when the kernel queues packets on the TUN and hands them over in
// batches, so a packet goes from the TUN to its QUIC datagram with no thread hop in between.
// Writes go straight from the same loop: a TUN write never blocks for long, and a rare EAGAIN is
// a dropped packet, as on any congested link.
import fs from 'node:fs';
import { PacketReader, type PacketReaderError } from '../dataplane/quic/packet-reader.js';
import { TunDevice } from '../dataplane/tun/device.js';
import type { OpenedDevice } from './run.js';

/** Packets handed over per wake-up at most; the rest wait for the next loop iteration. */
const BATCH = 64;

export class ClientTunDevice implements OpenedDevice {
  private reader: PacketReader | undefined;
  private stopped = false;
  writeDrops = 0;
  /** Set when reading stopped on an error that cannot be retried. */
  readError: PacketReaderError | undefined;

  private constructor(
    private readonly device: TunDevice,
    private readonly mtu: number,
  ) {}

  static async open(tun: string, mtu: number): Promise<ClientTunDevice> {
    return new ClientTunDevice(await TunDevice.open({ name: tun, mtu, up: true }), mtu);
  }

  start(sink: (packet: Uint8Array) => void): void {
    if (this.reader !== undefined || this.stopped) return;
    // A slot larger than the MTU: a read that fills it exactly was cut and is not an IP packet
    // the kernel could have sent.
    this.reader = new PacketReader(
      this.device.fd,
      { slotBytes: Math.max(2048, this.mtu + 1), slotCount: BATCH },
      (batch, count) => {
        for (let i = 0; i < count; i++) sink(batch.packet(i));
      },
      (e) => {
        this.readError = e;
      },
    );
    // The supervisor's own timers and sockets decide when the process may exit, not the TUN.
    this.reader.ref(false);
  }

  write(packet: Uint8Array): boolean {
    try {
      fs.writeSync(this.device.fd, packet);
      return true;
    } catch {
      this.writeDrops++;
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // Stop watching before the fd closes: epoll must not keep a descriptor number we gave up.
    this.reader?.close();
    // Detaching from a persistent TUN leaves the device in place; netconfig removes it.
    await this.device.close();
  }
}
