// What a shard worker tells the supervisor once per report interval. Shards own their sessions and
// counters; the main thread only aggregates these snapshots into Prometheus metrics, so the data
// path never touches prom-client.

/** Cumulative figures of one live session (monotonic since the session started). */
export interface SessionFigures {
  sessionId: string;
  /** Identity from the client certificate, e.g. "alice/laptop". */
  client: string;
  addresses: string[];
  bytesIn: number;
  bytesOut: number;
  packetsIn: number;
  packetsOut: number;
  spoofedDropped: number;
  policyDropped: number;
  /** Smoothed RTT in seconds and loss ratio (lost / sent packets) from the QUIC connection. */
  rttSeconds: number;
  lossRatio: number;
  /** FEC (all 0 when the tunnel runs without it): packets rebuilt from repair, etc. */
  fecRecovered: number;
  fecRepairSent: number;
  fecOverheadBytes: number;
  /** Repair-to-data ratio the sender currently uses (0 = off). */
  fecRatio: number;
  fecUnrecoverableBlocks: number;
  startedAt: number;
}

/** A session that ended since the last report. */
export interface EndedSession {
  client: string;
  durationSeconds: number;
  reason: string;
  /**
   * The session's counters when it ended. What it did since the last snapshot is in no snapshot,
   * so without these a tunnel shorter than one report interval would never be counted.
   */
  final?: FinalFigures;
}

export type FinalFigures = Pick<
  SessionFigures,
  | 'sessionId'
  | 'bytesIn'
  | 'bytesOut'
  | 'packetsIn'
  | 'packetsOut'
  | 'spoofedDropped'
  | 'policyDropped'
>;

export interface ShardReport {
  type: 'report';
  shard: number;
  sessions: SessionFigures[];
  ended: EndedSession[];
  /** Counter deltas since the last report, by metric and label value. */
  connections: Record<string, number>;
  handshakeFailures: Record<string, number>;
  errors: Record<string, number>;
  quicConnections: number;
  ringDrops: number;
  /** Client-to-client packets switched inside the data plane since the last report, by path. */
  hairpin: { local: number; shard: number };
  /** Packets dropped because a hairpin ring to another shard was full. */
  hairpinDrops: number;
}

export function emptyReport(shard: number): ShardReport {
  return {
    type: 'report',
    shard,
    sessions: [],
    ended: [],
    connections: {},
    handshakeFailures: {},
    errors: {},
    quicConnections: 0,
    ringDrops: 0,
    hairpin: { local: 0, shard: 0 },
    hairpinDrops: 0,
  };
}

export function bump(table: Record<string, number>, key: string, by = 1): void {
  table[key] = (table[key] ?? 0) + by;
}
