// Messages between the benchmark (host), the generator process (client namespace) and its worker
// threads. Plain JSON-safe objects: they cross postMessage and a stdout pipe.
import type { Scenario } from './args.js';
import type { HistogramWire } from './histogram.js';

/** One provisioned device: its bundle text and the IPv4 address the pool gave it. */
export interface DeviceJob {
  toml: string;
  ipv4: string;
}

/** What the generator process reads from its job file. */
export interface GeneratorJob {
  devices: DeviceJob[];
  /** The server's tunnel address: target of every ICMP echo, home of the UDP echo responder. */
  echoTarget: string;
  udpPort: number;
  scenario: Scenario;
  rate: number;
  maxPending: number;
  hold: number;
  pps: number;
  icmpPps: number;
  threads: number;
  /** Index of this generator's first device in the whole run (identifiers stay distinct). */
  firstIndex: number;
}

/** What one worker thread is told to do with its share of devices. */
export interface ThreadJob {
  devices: DeviceJob[];
  echoTarget: string;
  udpPort: number;
  scenario: Scenario;
  /** This thread's share of the setup rate and of the setups in flight. */
  rate: number;
  maxPending: number;
  pps: number;
  icmpPps: number;
  /** Offset of this thread's first device in the whole run (ICMP identifiers stay distinct). */
  firstIndex: number;
}

/** Cumulative counters, sent every second and at the end. */
export interface Counters {
  attempted: number;
  opened: number;
  /** Tunnels whose first echo came back (setup complete). */
  ready: number;
  open: number;
  closedByClient: number;
  /** Tunnels reopened by churn after a close. */
  reopened: number;
  echoesSent: number;
  echoesReceived: number;
  udpSent: number;
  udpReceived: number;
  /** UDP echoes that came back with a sequence number already seen (duplicates). */
  udpDuplicates: number;
  errors: Record<string, number>;
}

export interface ThreadResult extends Counters {
  /** connect() start → 2xx (QUIC + TLS + HTTP/3 + CONNECT-IP), µs. */
  connect: HistogramWire;
  /** connect() start → first echo reply, µs. */
  setup: HistogramWire;
  rtt: HistogramWire;
  udpRtt: HistogramWire;
  /**
   * Setup latency over time: [start (epoch ms), setup latency (ms)] of every completed setup,
   * flattened, for the chart.
   */
  setupTimeline: number[];
  /** performance.timeOrigin-based ms of the first setup start and last setup completion in the ramp. */
  rampFirstStartMs: number;
  rampLastReadyMs: number;
  rampReady: number;
}

export type ToThread = { kind: 'hold' } | { kind: 'stop' };

export type FromThread =
  | { kind: 'progress'; counters: Counters }
  | { kind: 'ramped'; counters: Counters }
  | { kind: 'result'; result: ThreadResult };

/** Lines the generator process writes on stdout, one JSON object each. */
export type GeneratorLine =
  | { kind: 'progress'; counters: Counters }
  | { kind: 'phase'; phase: 'ramp' | 'ramped' | 'hold' | 'drain' }
  | { kind: 'result'; result: ThreadResult }
  | { kind: 'fatal'; message: string };

export function emptyCounters(): Counters {
  return {
    attempted: 0,
    opened: 0,
    ready: 0,
    open: 0,
    closedByClient: 0,
    reopened: 0,
    echoesSent: 0,
    echoesReceived: 0,
    udpSent: 0,
    udpReceived: 0,
    udpDuplicates: 0,
    errors: {},
  };
}

export function addCounters(into: Counters, c: Counters): Counters {
  into.attempted += c.attempted;
  into.opened += c.opened;
  into.ready += c.ready;
  into.open += c.open;
  into.closedByClient += c.closedByClient;
  into.echoesSent += c.echoesSent;
  into.echoesReceived += c.echoesReceived;
  into.reopened += c.reopened;
  into.udpSent += c.udpSent;
  into.udpReceived += c.udpReceived;
  into.udpDuplicates += c.udpDuplicates;
  for (const [k, v] of Object.entries(c.errors)) into.errors[k] = (into.errors[k] ?? 0) + v;
  return into;
}

/**
 * Groups an error message by reason: numbers, addresses and hex codes vary between tunnels and
 * would make one reason per tunnel.
 */
export function errorReason(message: string): string {
  return message
    .replace(/\d+\.\d+\.\d+\.\d+(:\d+)?/g, 'ADDR')
    .replace(/(?<![0-9a-fx])\d+(\.\d+)?(?![0-9a-fx])/gi, 'N')
    .slice(0, 120);
}
