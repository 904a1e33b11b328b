// Server certificate renewal. The control plane issues the data plane's QUIC server certificate
// with a renew-at time (two thirds of its lifetime); at that time this schedule fetches a fresh
// one and hands it over, to be used for new handshakes while live tunnels carry on. A failed
// fetch or hand-over is retried with capped backoff (5 s doubling to 5 min), also past expiry.

/** What the schedule needs of a fetched configuration (a subset of `DataPlaneConfig`). */
export interface IssuedServerCertificate {
  serverCertPem: string;
  serverKeyPem: string;
  caPem: string;
  /** 0: the control plane did not say; no renewal is scheduled. */
  renewAtMs: number;
  certNotAfterMs: number;
}

export interface RenewalClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface RenewalLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface RenewalOptions<T extends IssuedServerCertificate> {
  /** Fetches a new configuration (with a new certificate) from the control plane. */
  fetch(): Promise<T>;
  /** Puts a fetched certificate in use; a rejection counts as a failed renewal and is retried. */
  apply(fresh: T): Promise<void>;
  log: RenewalLog;
  clock?: RenewalClock;
  /** First retry delay after a failure (default 5 s), doubling up to `maxRetryMs` (5 min). */
  minRetryMs?: number;
  maxRetryMs?: number;
  /**
   * Never fetch again sooner than this after a fetch (default 5 s), whatever renew-at says: a
   * control plane answering with a renew-at in the past must not make us spin.
   */
  minIntervalMs?: number;
}

/** setTimeout takes at most 2^31 - 1 ms; longer waits are done in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const systemClock: RenewalClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    // A pending renewal must not keep a stopping process alive.
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export class CertificateRenewal<T extends IssuedServerCertificate> {
  private readonly opts: RenewalOptions<T>;
  private readonly clock: RenewalClock;
  private timer: unknown;
  private stopped = false;
  private retryMs: number;
  private lastFetchAt = -Infinity;
  /** The certificate the schedule currently runs for (the last one applied, or the first). */
  private current: IssuedServerCertificate | undefined;
  /** Renewals applied, failed attempts (fetch or apply), for tests and metrics. */
  renewals = 0;
  failures = 0;

  constructor(opts: RenewalOptions<T>) {
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    this.retryMs = opts.minRetryMs ?? 5_000;
  }

  /** Starts the schedule for the certificate in use now. */
  start(initial: IssuedServerCertificate): void {
    this.current = initial;
    this.scheduleAt(initial.renewAtMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** When the next attempt is due (epoch ms), or undefined when none is scheduled. */
  nextAttemptAt: number | undefined;

  private scheduleAt(at: number): void {
    if (this.stopped) return;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (at <= 0) {
      this.nextAttemptAt = undefined;
      return;
    }
    const due = Math.max(at, this.lastFetchAt + (this.opts.minIntervalMs ?? 5_000));
    this.nextAttemptAt = due;
    const wait = Math.max(0, due - this.clock.now());
    this.timer = this.clock.setTimeout(
      () => {
        this.timer = undefined;
        // A long wait runs in steps; only the last one renews.
        if (this.clock.now() < due) this.scheduleAt(due);
        else void this.renew();
      },
      Math.min(wait, MAX_TIMER_MS),
    );
  }

  private async renew(): Promise<void> {
    if (this.stopped) return;
    this.lastFetchAt = this.clock.now();
    let fresh: T;
    try {
      fresh = await this.opts.fetch();
      if (this.stopped) return;
      await this.opts.apply(fresh);
    } catch (err) {
      if (this.stopped) return;
      this.failures++;
      const notAfter = this.current?.certNotAfterMs ?? 0;
      const now = this.clock.now();
      const retryAt = now + this.retryMs;
      this.retryMs = Math.min(this.retryMs * 2, this.opts.maxRetryMs ?? 300_000);
      const expired = notAfter > 0 && now >= notAfter;
      (expired ? this.opts.log.error : this.opts.log.warn).call(
        this.opts.log,
        {
          err: (err as Error).message ?? String(err),
          retryInSeconds: Math.round((retryAt - now) / 1000),
          certNotAfter: notAfter > 0 ? new Date(notAfter).toISOString() : undefined,
        },
        expired
          ? 'server certificate renewal failed and the certificate has expired: new handshakes fail until it succeeds'
          : 'server certificate renewal failed; retrying',
      );
      // Retries continue past expiry too: the first success puts a valid certificate back.
      this.scheduleAt(retryAt);
      return;
    }
    this.renewals++;
    this.retryMs = this.opts.minRetryMs ?? 5_000;
    this.current = fresh;
    this.scheduleAt(fresh.renewAtMs);
  }
}
