import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff } from './backoff.js';
import { formatPrefix, parsePrefix, type IpPrefix } from './prefix.js';
import { Supervisor, type Clock, type NetworkTarget, type PacketDevice } from './supervisor.js';
import {
  TunnelDeniedError,
  TunnelRefusedError,
  type TunnelEvents,
  type TunnelHandle,
  type TunnelStats,
  type TunnelTransport,
} from './transport.js';

class FakeClock implements Clock {
  time = 1_000_000;
  timers: { at: number; fn: () => void; live: boolean }[] = [];
  now(): number {
    return this.time;
  }
  setTimer(ms: number, fn: () => void): () => void {
    const t = { at: this.time + ms, fn, live: true };
    this.timers.push(t);
    return () => (t.live = false);
  }
  /** Delays of the live timers, from now. */
  pending(): number[] {
    return this.timers.filter((t) => t.live).map((t) => t.at - this.time);
  }
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.live && t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.time = due.at;
      due.live = false;
      due.fn();
      await flush();
    }
    this.time = end;
    await flush();
  }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

class FakeHandle implements TunnelHandle {
  sent: Uint8Array[] = [];
  closed = false;
  counters: TunnelStats = {
    bytesSent: 0,
    bytesReceived: 0,
    packetsSent: 0,
    packetsReceived: 0,
    rttMs: 12,
    lossRatio: 0.01,
    fec: undefined,
  };
  send(packet: Uint8Array): boolean {
    this.sent.push(packet);
    this.counters = {
      ...this.counters,
      packetsSent: this.counters.packetsSent + 1,
      bytesSent: this.counters.bytesSent + packet.length,
    };
    return true;
  }
  stats(): TunnelStats {
    return this.counters;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

interface Attempt {
  events: TunnelEvents;
  signal: AbortSignal;
  succeed(): FakeHandle;
  fail(err: Error): void;
}

class FakeTransport implements TunnelTransport {
  attempts: Attempt[] = [];
  connect(events: TunnelEvents, signal: AbortSignal): Promise<TunnelHandle> {
    return new Promise((resolve, reject) => {
      this.attempts.push({
        events,
        signal,
        succeed: () => {
          const h = new FakeHandle();
          resolve(h);
          return h;
        },
        fail: reject,
      });
    });
  }
  get last(): Attempt {
    return this.attempts[this.attempts.length - 1];
  }
}

class FakeNetwork implements NetworkTarget {
  addressCalls: string[][] = [];
  routeCalls: string[][] = [];
  async setAddresses(set: readonly IpPrefix[]): Promise<void> {
    this.addressCalls.push(set.map(formatPrefix));
  }
  async setRoutes(set: readonly IpPrefix[]): Promise<void> {
    this.routeCalls.push(set.map(formatPrefix));
  }
}

class FakeDevice implements PacketDevice {
  sink: ((p: Uint8Array) => void) | undefined;
  written: Uint8Array[] = [];
  start(sink: (p: Uint8Array) => void): void {
    this.sink = sink;
  }
  write(p: Uint8Array): boolean {
    this.written.push(p);
    return true;
  }
}

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

function setup(options: { static?: boolean; random?: () => number } = {}) {
  const clock = new FakeClock();
  const transport = new FakeTransport();
  const network = new FakeNetwork();
  const device = new FakeDevice();
  const sup = new Supervisor({
    transport,
    network,
    device,
    clock,
    log: quiet,
    backoff: new Backoff({ baseMs: 1000, capMs: 8000, random: options.random ?? (() => 0.999) }),
    stableAfterMs: 10_000,
    staticAddresses: options.static ? [parsePrefix('100.64.0.9/32')] : [],
    staticRoutes: options.static ? [parsePrefix('100.64.0.0/10')] : [],
  });
  return { clock, transport, network, device, sup };
}

const v4 = (a: string): IpPrefix => parsePrefix(a);
const fullV4 = { version: 4 as const, start: '0.0.0.0', end: '255.255.255.255', protocol: 0 };

describe('Supervisor', () => {
  it('comes up, follows address and route sets, and moves packets both ways', async () => {
    const { transport, network, device, sup } = setup();
    sup.start();
    assert.equal(sup.state, 'connecting');
    const a = transport.last;
    a.events.addresses([v4('10.77.0.2/32')]);
    const h = a.succeed();
    await flush();
    assert.equal(sup.state, 'up');
    a.events.routes([
      fullV4,
      { version: 4, start: '10.77.0.0', end: '10.77.255.255', protocol: 6 },
    ]);
    await sup.settled();
    assert.deepEqual(network.addressCalls.at(-1), ['10.77.0.2/32']);
    assert.deepEqual(network.routeCalls.at(-1), ['0.0.0.0/0', '10.77.0.0/16']);

    device.sink!(new Uint8Array([0x45, 1, 2]));
    assert.equal(h.sent.length, 1);
    a.events.packet(new Uint8Array([0x45, 9]));
    assert.equal(device.written.length, 1);

    a.events.addresses([v4('10.77.0.3/32')]);
    await sup.settled();
    assert.deepEqual(network.addressCalls.at(-1), ['10.77.0.3/32']);
    const snap = sup.snapshot();
    assert.deepEqual(snap.addresses, ['10.77.0.3/32']);
    assert.equal(snap.traffic.packetsSent, 1);
    assert.equal(snap.rttMs, 12);
  });

  it('keeps addresses and routes through an outage and reconnects with backoff', async () => {
    const { clock, transport, network, device, sup } = setup();
    sup.start();
    transport.last.events.addresses([v4('10.77.0.2/32')]);
    transport.last.events.routes([fullV4]);
    const h1 = transport.last.succeed();
    await flush();
    device.sink!(new Uint8Array(100));
    transport.last.events.closed({ kind: 'lost', message: 'idle timeout' });
    await flush();
    assert.equal(sup.state, 'reconnecting');
    assert.equal(sup.snapshot().reconnects, 1);
    // Nothing was withdrawn: no empty set was ever applied.
    assert.ok(network.addressCalls.every((c) => c.length > 0));
    assert.ok(network.routeCalls.every((c) => c.length > 0));
    assert.deepEqual(sup.snapshot().addresses, ['10.77.0.2/32']);
    // Packets during the outage are dropped and counted, not sent to the dead handle.
    device.sink!(new Uint8Array(10));
    assert.equal(h1.sent.length, 1);
    assert.equal(sup.snapshot().droppedWhileDown, 1);
    // First retry after at most base (1 s); with random≈1 exactly 999 ms.
    assert.deepEqual(clock.pending(), [999]);
    await clock.advance(999);
    assert.equal(transport.attempts.length, 2);
    transport.last.events.addresses([v4('10.77.0.2/32')]);
    transport.last.succeed();
    await flush();
    assert.equal(sup.state, 'up');
    // Totals span both tunnels.
    assert.equal(sup.snapshot().traffic.packetsSent, 1);
  });

  it('grows the delay on repeated failures and resets it after a stable tunnel', async () => {
    const { clock, transport, sup } = setup();
    sup.start();
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      transport.last.fail(new Error('ECONNREFUSED'));
      await flush();
      delays.push(clock.pending()[0]);
      await clock.advance(clock.pending()[0]);
    }
    assert.deepEqual(delays, [999, 1998, 3996, 7992, 7992]);
    assert.equal(sup.snapshot().failedAttempts, 5);
    assert.equal(sup.snapshot().lastError, 'ECONNREFUSED');
    transport.last.succeed();
    await flush();
    await clock.advance(10_000);
    transport.last.events.closed({ kind: 'lost', message: 'x' });
    await flush();
    assert.deepEqual(clock.pending(), [999], 'backoff was reset by the stable period');
  });

  it('does not reset the backoff for a tunnel that dies quickly', async () => {
    const { clock, transport, sup } = setup();
    sup.start();
    transport.last.fail(new Error('x'));
    await flush();
    await clock.advance(999);
    transport.last.succeed();
    await flush();
    await clock.advance(500);
    transport.last.events.closed({ kind: 'lost', message: 'x' });
    await flush();
    assert.deepEqual(clock.pending(), [1998]);
    assert.equal(sup.state, 'reconnecting');
  });

  it('gives up on a definitive denial, with its reason', async () => {
    const { clock, transport, sup } = setup();
    sup.start();
    transport.last.fail(new TunnelDeniedError('server denied the tunnel: 403 (revoked)', 403));
    const outcome = await sup.done;
    assert.deepEqual(outcome, {
      state: 'denied',
      reason: 'server denied the tunnel: 403 (revoked)',
    });
    assert.equal(sup.state, 'denied');
    await clock.advance(60_000);
    assert.equal(transport.attempts.length, 1, 'no retry after a denial');
  });

  it('treats a denial while up as final too', async () => {
    const { transport, sup } = setup();
    sup.start();
    const h = transport.last.succeed();
    await flush();
    transport.last.events.closed({ kind: 'denied', message: 'device revoked' });
    assert.deepEqual(await sup.done, { state: 'denied', reason: 'device revoked' });
    assert.equal(h.closed, false, 'the peer closed it; the handle is only retired');
  });

  it('honours a retry hint from a refusal', async () => {
    const { clock, transport, sup } = setup();
    sup.start();
    transport.last.fail(new TunnelRefusedError('503', 503, 'no address', 5000));
    await flush();
    assert.equal(sup.state, 'reconnecting');
    assert.deepEqual(clock.pending(), [5000]);
  });

  it('reconnects at once on GOAWAY from a long-lived tunnel, with backoff from a short one', async () => {
    const { clock, transport, sup } = setup();
    sup.start();
    transport.last.succeed();
    await flush();
    await clock.advance(20_000);
    transport.last.events.closed({ kind: 'goaway', message: 'server shutting down' });
    await flush();
    assert.deepEqual(clock.pending(), [0]);
    await clock.advance(0);
    assert.equal(transport.attempts.length, 2);
    transport.last.succeed();
    await flush();
    transport.last.events.closed({ kind: 'goaway', message: 'again' });
    await flush();
    assert.ok(clock.pending()[0] > 0);
  });

  it('ignores events from a tunnel it has moved on from', async () => {
    const { clock, transport, network, sup } = setup();
    sup.start();
    const first = transport.last;
    first.succeed();
    await flush();
    first.events.closed({ kind: 'lost', message: 'x' });
    await flush();
    await clock.advance(1000);
    transport.last.succeed();
    await flush();
    const calls = network.addressCalls.length;
    first.events.addresses([v4('10.9.9.9/32')]);
    first.events.closed({ kind: 'lost', message: 'late' });
    await sup.settled();
    assert.equal(network.addressCalls.length, calls);
    assert.equal(sup.state, 'up');
  });

  it('stop() aborts a pending attempt and closes a handle that arrives late', async () => {
    const { transport, sup } = setup();
    sup.start();
    const a = transport.last;
    await sup.stop();
    assert.equal(a.signal.aborted, true);
    assert.deepEqual(await sup.done, { state: 'stopped' });
    const late = a.succeed();
    await flush();
    assert.equal(late.closed, true);
    assert.equal(sup.state, 'stopped');
  });

  it('stop() closes a live tunnel', async () => {
    const { transport, sup } = setup();
    sup.start();
    const h = transport.last.succeed();
    await flush();
    await sup.stop();
    assert.equal(h.closed, true);
    assert.equal(sup.state, 'stopped');
  });

  it('times out an attempt that hangs, retries, and closes the tunnel if it turns up late', async () => {
    const { clock, transport, sup } = setup();
    sup.start();
    const slow = transport.last;
    await clock.advance(10_000);
    assert.equal(slow.signal.aborted, true);
    assert.equal(sup.state, 'reconnecting');
    assert.match(sup.snapshot().lastError ?? '', /no tunnel within 10000 ms/);
    const late = slow.succeed();
    await flush();
    assert.equal(late.closed, true);
    slow.events.addresses([v4('10.9.9.9/32')]);
    await sup.settled();
    assert.deepEqual(sup.snapshot().addresses, [], 'events of the abandoned attempt ignored');
    await clock.advance(1000);
    assert.equal(transport.attempts.length, 2);
    transport.last.succeed();
    await flush();
    assert.equal(sup.state, 'up');
  });

  it('uses static addresses and routes only while the server gives none', async () => {
    const { transport, network, sup } = setup({ static: true });
    sup.start();
    await sup.settled();
    assert.deepEqual(network.addressCalls.at(-1), ['100.64.0.9/32']);
    assert.deepEqual(network.routeCalls.at(-1), ['100.64.0.0/10']);
    transport.last.events.addresses([v4('10.77.0.2/32')]);
    await sup.settled();
    assert.deepEqual(network.addressCalls.at(-1), ['10.77.0.2/32']);
    assert.deepEqual(network.routeCalls.at(-1), ['100.64.0.0/10']);
  });

  it('reports a failing network change and carries on', async () => {
    const { transport, network, sup } = setup();
    network.setRoutes = async () => {
      throw new Error('ip route replace 0.0.0.0/1 failed: RTNETLINK answers: Network is down');
    };
    sup.start();
    transport.last.succeed();
    transport.last.events.routes([fullV4]);
    await sup.settled();
    assert.match(sup.snapshot().lastError ?? '', /Network is down/);
    assert.equal(sup.state, 'up');
  });
});
