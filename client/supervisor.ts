// The connection lifecycle: idle → connecting → up → reconnecting → connecting → … until stopped,
// or denied by the server. The TUN, its addresses and its routes outlive every outage, so
// applications see a pause rather than "network unreachable"; only stop() or a denial ends it.
// All I/O is injected (transport, network, packet device, clock), which keeps this testable
// without sockets or root.
import { Backoff } from './backoff.js';
import { formatPrefix, rangeToPrefixes, type IpPrefix, type IpRange } from './prefix.js';
import {
  TunnelDeniedError,
  TunnelRefusedError,
  type FecStats,
  type TunnelCloseReason,
  type TunnelEvents,
  type TunnelHandle,
  type TunnelStats,
  type TunnelTransport,
} from './transport.js';

export type ClientState = 'idle' | 'connecting' | 'up' | 'reconnecting' | 'stopped' | 'denied';

/** Where addresses and routes go: the TUN configuration (netconfig.ts) in production. */
export interface NetworkTarget {
  setAddresses(set: readonly IpPrefix[]): Promise<void>;
  setRoutes(set: readonly IpPrefix[]): Promise<void>;
}

/** The local end of the tunnel: the TUN device's packet I/O. */
export interface PacketDevice {
  /** Starts handing packets read from the device to `sink`. A packet is a view into a reused
   * buffer, valid only during the call: the sink copies it (into a datagram) or drops it. */
  start(sink: (packet: Uint8Array) => void): void;
  /** Writes one packet; false when it was dropped. */
  write(packet: Uint8Array): boolean;
}

export interface Clock {
  now(): number;
  setTimer(ms: number, fn: () => void): () => void;
}

export interface SupervisorLog {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface SupervisorOptions {
  readonly transport: TunnelTransport;
  readonly network: NetworkTarget;
  readonly device: PacketDevice;
  readonly backoff: Backoff;
  readonly log: SupervisorLog;
  readonly clock?: Clock;
  /** A tunnel up this long resets the backoff. */
  readonly stableAfterMs?: number;
  /** An attempt that has not produced a tunnel by then is aborted and counts as failed: a
   * handshake to a server that is down would otherwise wait for the QUIC idle timeout. */
  readonly connectTimeoutMs?: number;
  /** Used when the server assigns none (§10.1 item 21: servers that advertise nothing). */
  readonly staticAddresses?: readonly IpPrefix[];
  /** Used when the server advertises none. */
  readonly staticRoutes?: readonly IpPrefix[];
}

export type SupervisorOutcome =
  { readonly state: 'stopped' } | { readonly state: 'denied'; readonly reason: string };

export interface TrafficTotals {
  bytesSent: number;
  bytesReceived: number;
  packetsSent: number;
  packetsReceived: number;
}

export interface SupervisorSnapshot {
  readonly state: ClientState;
  /** When the current state was entered (clock ms). */
  readonly stateSince: number;
  readonly startedAt: number | undefined;
  /** When the current tunnel came up; undefined unless up. */
  readonly connectedAt: number | undefined;
  /** Outages: times an up tunnel was lost. */
  readonly reconnects: number;
  /** Connect attempts that failed. */
  readonly failedAttempts: number;
  readonly lastError: string | undefined;
  readonly deniedReason: string | undefined;
  readonly addresses: readonly string[];
  readonly routes: readonly string[];
  /** Totals over every tunnel of this run. */
  readonly traffic: TrafficTotals;
  /** Packets read from the TUN while no tunnel was up. */
  readonly droppedWhileDown: number;
  readonly rttMs: number | undefined;
  readonly lossRatio: number | undefined;
  readonly fec: FecStats | undefined;
  /** When the next connect attempt is due (clock ms), while reconnecting. */
  readonly nextAttemptAt: number | undefined;
}

const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const timer = setTimeout(fn, ms);
    return () => clearTimeout(timer);
  },
};

/** Server set if it has any entries, else the static one (issue 6: "for servers that advertise none"). */
export function effectiveSet<T>(fromServer: readonly T[], fromConfig: readonly T[]): readonly T[] {
  return fromServer.length > 0 ? fromServer : fromConfig;
}

/** Route ranges to de-duplicated kernel prefixes. Protocol-limited ranges route like any other:
 * the kernel cannot route by protocol, and the server enforces the limit anyway. */
export function routePrefixes(ranges: readonly IpRange[]): IpPrefix[] {
  const seen = new Map<string, IpPrefix>();
  for (const range of ranges) {
    for (const prefix of rangeToPrefixes(range)) seen.set(formatPrefix(prefix), prefix);
  }
  return [...seen.values()];
}

export class Supervisor {
  readonly #o: SupervisorOptions;
  readonly #clock: Clock;
  readonly #stableAfterMs: number;
  readonly #connectTimeoutMs: number;
  #state: ClientState = 'idle';
  #stateSince: number;
  #startedAt: number | undefined;
  #connectedAt: number | undefined;
  #reconnects = 0;
  #failedAttempts = 0;
  #lastError: string | undefined;
  #deniedReason: string | undefined;
  #handle: TunnelHandle | undefined;
  /** Identifies the current attempt; events from older attempts are ignored. */
  #generation = 0;
  #abort: AbortController | undefined;
  #cancelTimer: (() => void) | undefined;
  #cancelStable: (() => void) | undefined;
  #nextAttemptAt: number | undefined;
  #serverAddresses: readonly IpPrefix[] = [];
  #serverRoutes: readonly IpPrefix[] = [];
  #applied = { addresses: [] as readonly IpPrefix[], routes: [] as readonly IpPrefix[] };
  #netQueue: Promise<void> = Promise.resolve();
  #closedTotals: TrafficTotals = {
    bytesSent: 0,
    bytesReceived: 0,
    packetsSent: 0,
    packetsReceived: 0,
  };
  #lastStats: TunnelStats | undefined;
  #droppedWhileDown = 0;
  #resolveDone!: (outcome: SupervisorOutcome) => void;
  /** Settles when the client is stopped or denied. */
  readonly done: Promise<SupervisorOutcome>;

  constructor(options: SupervisorOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#stableAfterMs = options.stableAfterMs ?? 30_000;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.#stateSince = this.#clock.now();
    this.done = new Promise((resolve) => (this.#resolveDone = resolve));
  }

  get state(): ClientState {
    return this.#state;
  }

  /** Applies static configuration, starts the packet pump and the first connect attempt. */
  start(): void {
    if (this.#state !== 'idle') throw new Error(`supervisor already started (${this.#state})`);
    this.#startedAt = this.#clock.now();
    this.#o.device.start((packet) => this.#fromDevice(packet));
    // Static configuration applies before the first connect: it is all a server that advertises
    // nothing will ever give us.
    if (this.#o.staticAddresses?.length || this.#o.staticRoutes?.length) this.#reapply();
    this.#enter('connecting');
    void this.#attempt();
  }

  /** Ends the run: cancels any attempt or timer, closes the tunnel. Addresses stay applied; the
   * caller tears the TUN down after this resolves. */
  async stop(): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'denied') return;
    this.#finish({ state: 'stopped' });
    await this.#closeHandle();
    await this.#netQueue;
  }

  /** Waits until every queued address/route change has been applied (tests, shutdown). */
  settled(): Promise<void> {
    return this.#netQueue;
  }

  snapshot(): SupervisorSnapshot {
    const live = this.#handle?.stats();
    const stats = live ?? this.#lastStats;
    const traffic = { ...this.#closedTotals };
    if (live) {
      traffic.bytesSent += live.bytesSent;
      traffic.bytesReceived += live.bytesReceived;
      traffic.packetsSent += live.packetsSent;
      traffic.packetsReceived += live.packetsReceived;
    }
    return {
      state: this.#state,
      stateSince: this.#stateSince,
      startedAt: this.#startedAt,
      connectedAt: this.#state === 'up' ? this.#connectedAt : undefined,
      reconnects: this.#reconnects,
      failedAttempts: this.#failedAttempts,
      lastError: this.#lastError,
      deniedReason: this.#deniedReason,
      addresses: this.#applied.addresses.map(formatPrefix),
      routes: this.#applied.routes.map(formatPrefix),
      traffic,
      droppedWhileDown: this.#droppedWhileDown,
      rttMs: stats?.rttMs,
      lossRatio: stats?.lossRatio,
      fec: stats?.fec,
      nextAttemptAt: this.#state === 'reconnecting' ? this.#nextAttemptAt : undefined,
    };
  }

  #enter(state: ClientState): void {
    if (this.#state === state) return;
    this.#o.log.info({ from: this.#state, to: state }, `tunnel ${state}`);
    this.#state = state;
    this.#stateSince = this.#clock.now();
  }

  #isOver(): boolean {
    return this.#state === 'stopped' || this.#state === 'denied';
  }

  async #attempt(): Promise<void> {
    const generation = ++this.#generation;
    this.#nextAttemptAt = undefined;
    const abort = new AbortController();
    this.#abort = abort;
    let handle: TunnelHandle;
    let cancelTimeout: (() => void) | undefined;
    let connecting: Promise<TunnelHandle> | undefined;
    try {
      const timedOut = new Promise<never>((_, reject) => {
        cancelTimeout = this.#clock.setTimer(this.#connectTimeoutMs, () => {
          abort.abort();
          reject(new Error(`no tunnel within ${this.#connectTimeoutMs} ms`));
        });
      });
      connecting = this.#o.transport.connect(this.#eventsFor(generation), abort.signal);
      handle = await Promise.race([connecting, timedOut]);
    } catch (err) {
      // A tunnel that still arrives after a timeout or stop is closed at once.
      void connecting?.then(
        (late) => late.close().catch(() => undefined),
        () => undefined,
      );
      if (this.#isOver() || generation !== this.#generation) return;
      // Events of an attempt that failed must not reach us.
      this.#generation++;
      this.#failedAttempts++;
      this.#connectFailed(err);
      return;
    } finally {
      cancelTimeout?.();
    }
    if (this.#isOver() || generation !== this.#generation) {
      // Stopped or timed out while connecting: the transport finished anyway; close what it opened.
      await handle.close().catch(() => undefined);
      return;
    }
    this.#handle = handle;
    this.#connectedAt = this.#clock.now();
    this.#lastError = undefined;
    this.#enter('up');
    this.#cancelStable = this.#clock.setTimer(this.#stableAfterMs, () => {
      this.#cancelStable = undefined;
      this.#o.backoff.reset();
    });
  }

  #connectFailed(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.#lastError = message;
    if (err instanceof TunnelDeniedError) {
      this.#deny(message);
      return;
    }
    const hinted = err instanceof TunnelRefusedError ? err.retryAfterMs : undefined;
    const delay = Math.max(this.#o.backoff.next(), hinted ?? 0);
    this.#o.log.warn({ err: message, retryInMs: delay }, 'connect failed');
    this.#scheduleAttempt(delay);
  }

  #scheduleAttempt(delayMs: number): void {
    this.#enter('reconnecting');
    this.#nextAttemptAt = this.#clock.now() + delayMs;
    this.#cancelTimer = this.#clock.setTimer(delayMs, () => {
      this.#cancelTimer = undefined;
      if (this.#isOver()) return;
      void this.#attempt();
    });
  }

  #eventsFor(generation: number): TunnelEvents {
    const current = (): boolean => generation === this.#generation && !this.#isOver();
    return {
      addresses: (set) => {
        if (!current()) return;
        this.#serverAddresses = [...set];
        this.#reapply({ addresses: true });
      },
      routes: (set) => {
        if (!current()) return;
        try {
          this.#serverRoutes = routePrefixes(set);
        } catch (err) {
          // The transport validates ranges (§6.5); a bad one here is a transport bug, not fatal.
          this.#o.log.error({ err: String(err) }, 'unusable route advertisement ignored');
          return;
        }
        this.#reapply({ routes: true });
      },
      packet: (packet) => {
        if (current()) this.#o.device.write(packet);
      },
      closed: (reason) => {
        if (current()) void this.#tunnelClosed(reason);
      },
    };
  }

  async #tunnelClosed(reason: TunnelCloseReason): Promise<void> {
    const upFor = this.#connectedAt === undefined ? 0 : this.#clock.now() - this.#connectedAt;
    this.#retire();
    this.#lastError = reason.message;
    if (reason.kind === 'denied') {
      this.#deny(reason.message);
      return;
    }
    this.#reconnects++;
    this.#o.log.warn({ reason: reason.kind, err: reason.message, upForMs: upFor }, 'tunnel lost');
    // GOAWAY asks for a prompt reconnect, but a server that sends it right after every connect
    // must not be hammered: a short-lived tunnel falls back to the backoff.
    const delay =
      reason.kind === 'goaway' && upFor >= this.#stableAfterMs ? 0 : this.#o.backoff.next();
    this.#scheduleAttempt(delay);
  }

  /** Forgets the current handle (already closed by the peer), keeping its figures. */
  #retire(): void {
    this.#cancelStable?.();
    this.#cancelStable = undefined;
    const handle = this.#handle;
    this.#handle = undefined;
    this.#connectedAt = undefined;
    this.#generation++;
    if (handle) this.#absorb(handle.stats());
  }

  #absorb(stats: TunnelStats): void {
    this.#lastStats = stats;
    this.#closedTotals.bytesSent += stats.bytesSent;
    this.#closedTotals.bytesReceived += stats.bytesReceived;
    this.#closedTotals.packetsSent += stats.packetsSent;
    this.#closedTotals.packetsReceived += stats.packetsReceived;
  }

  async #closeHandle(): Promise<void> {
    const handle = this.#handle;
    this.#retire();
    if (handle) await handle.close().catch(() => undefined);
  }

  #deny(reason: string): void {
    this.#deniedReason = reason;
    this.#o.log.error({ reason }, 'tunnel denied; giving up');
    this.#finish({ state: 'denied', reason });
    void this.#closeHandle();
  }

  #finish(outcome: SupervisorOutcome): void {
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    this.#cancelStable?.();
    this.#cancelStable = undefined;
    this.#abort?.abort();
    this.#enter(outcome.state);
    this.#resolveDone(outcome);
  }

  #fromDevice(packet: Uint8Array): void {
    if (this.#handle) this.#handle.send(packet);
    else this.#droppedWhileDown++;
  }

  /** Queues the effective address and/or route set; changes apply in order, one at a time.
   * Sets from a previous tunnel stay until the new tunnel's capsules replace them, which is what
   * keeps routes in place across a reconnect. */
  #reapply(
    which: { addresses?: boolean; routes?: boolean } = { addresses: true, routes: true },
  ): void {
    const addresses = effectiveSet(this.#serverAddresses, this.#o.staticAddresses ?? []);
    const routes = effectiveSet(this.#serverRoutes, this.#o.staticRoutes ?? []);
    this.#netQueue = this.#netQueue.then(async () => {
      try {
        if (which.addresses) {
          await this.#o.network.setAddresses(addresses);
          this.#applied.addresses = addresses;
        }
        if (which.routes) {
          await this.#o.network.setRoutes(routes);
          this.#applied.routes = routes;
        }
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        this.#lastError = message;
        this.#o.log.error({ err: message }, 'applying addresses/routes failed');
      }
    });
  }
}
