// One tunnel's FEC: the sender, the receiver, the adaptive controller and their shared metrics,
// built from the negotiated agreement and the [fec] configuration. This is the object a shard
// worker or the client holds per CONNECT-IP session once the proxy has answered with FEC.
//
// Wiring, per tunnel:
//   outgoing IP packet     → send(packet, now, sink): sink.sendPlain → context 0,
//                                                     sink.sendFec   → context `context`
//   datagram on context 0  → the TUN directly (plain IP; FEC never sees it)
//   datagram on `context`  → receive(payload, now, deliver): deliver → the TUN
//   timers                 → nextDeadline() / onTimer(now, sink)
//   every ~200 ms          → observe({ datagramsSent, datagramsLost }) with QUIC's counters
import { AdaptiveRedundancy, type FecPlan } from './adaptive.js';
import type { FecConfig } from './config.js';
import { type FecMetrics, newFecMetrics } from './metrics.js';
import type { FecAgreement } from './negotiation.js';
import { type FecDeliver, FecReceiver } from './receiver.js';
import { type FecSendSink, FecSender } from './sender.js';

export interface FecTunnelOptions {
  agreement: FecAgreement;
  config: FecConfig;
  /** Largest IP packet on the tunnel (its MTU). FEC adds at most 8 bytes to a datagram. */
  maxPacketSize: number;
  /** QUIC's datagram counters when the tunnel starts (they are per connection). */
  quicBaseline?: { datagramsSent: number; datagramsLost: number };
}

export class FecTunnel {
  readonly context: number;
  readonly metrics: FecMetrics = newFecMetrics();
  readonly sender: FecSender;
  readonly receiver: FecReceiver;
  readonly adaptive: AdaptiveRedundancy | undefined;

  constructor(o: FecTunnelOptions) {
    const { agreement: a, config: c } = o;
    this.context = a.context;
    this.sender = new FecSender(
      {
        scheme: a.scheme,
        maxK: a.k,
        maxM: a.m,
        maxPacketSize: o.maxPacketSize,
        flushDelayMs: c.flush_ms,
        maxFlushDelayMs: c.max_flush_ms,
        interleave: c.interleave,
      },
      this.metrics,
    );
    this.receiver = new FecReceiver(
      {
        scheme: a.scheme,
        maxK: a.k,
        maxM: a.m,
        maxPacketSize: o.maxPacketSize,
        windowBlocks: c.window_blocks,
        maxBufferedBytes: c.max_buffer_kib * 1024,
        holdMs: c.hold_ms,
      },
      this.metrics,
    );
    if (c.adaptive) {
      this.adaptive = new AdaptiveRedundancy({
        scheme: a.scheme,
        maxK: a.k,
        maxM: a.m,
        minRatio: c.min_redundancy_percent / 100,
        maxRatio: c.max_redundancy_percent / 100,
        targetLoss: c.target_loss_percent / 100,
        baseline: o.quicBaseline ?? { datagramsSent: 0, datagramsLost: 0 },
      });
      // No loss seen yet: no redundancy until some shows up.
      this.sender.setPlan(a.k, 0);
    }
  }

  send(packet: Uint8Array, now: number, sink: FecSendSink): void {
    this.sender.send(packet, now, sink);
  }

  receive(payload: Uint8Array, now: number, deliver: FecDeliver): void {
    this.receiver.receive(payload, now, deliver);
  }

  nextDeadline(): number | undefined {
    const s = this.sender.nextDeadline();
    const r = this.receiver.nextDeadline();
    if (s === undefined) return r;
    if (r === undefined) return s;
    return Math.min(s, r);
  }

  onTimer(now: number, sink: FecSendSink): void {
    this.sender.onTimer(now, sink);
    this.receiver.onTimer(now);
  }

  flush(sink: FecSendSink): void {
    this.sender.flush(sink);
  }

  /**
   * Feeds QUIC's cumulative datagram counters (the receiver's results are added here) and applies
   * the resulting plan to the sender's next block. Without adaptive mode the plan stays fixed.
   */
  observe(quic: { datagramsSent: number; datagramsLost: number }): FecPlan {
    const p = this.sender.plan;
    if (this.adaptive === undefined) {
      return { k: p.k, m: p.m, ratio: p.m / p.k, lossEstimate: 0 };
    }
    const plan = this.adaptive.tick({
      datagramsSent: quic.datagramsSent,
      datagramsLost: quic.datagramsLost,
      dataPacketsReceived: this.metrics.dataPacketsReceived,
      packetsRecovered: this.metrics.packetsRecovered,
      unrecoverableBlocks: this.metrics.unrecoverableBlocks,
    });
    this.sender.setPlan(plan.k, plan.m);
    return plan;
  }
}
