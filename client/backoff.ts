// Reconnect delays: exponential growth with "full jitter" (a uniform draw in [0, ceiling)), so a
// server restart is not met by every client at the same instant. Pure apart from the injected
// random source; the supervisor decides when a connection has been stable enough to reset.

export interface BackoffOptions {
  /** Ceiling of the first delay. */
  readonly baseMs: number;
  /** No delay ever exceeds this. */
  readonly capMs: number;
  /** Uniform in [0, 1); injected so tests are deterministic. */
  readonly random?: () => number;
}

export class Backoff {
  readonly #baseMs: number;
  readonly #capMs: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(options: BackoffOptions) {
    if (!(options.baseMs > 0) || !(options.capMs >= options.baseMs)) {
      throw new RangeError('backoff needs 0 < baseMs <= capMs');
    }
    this.#baseMs = options.baseMs;
    this.#capMs = options.capMs;
    this.#random = options.random ?? Math.random;
  }

  /** How many delays have been handed out since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The ceiling the next delay is drawn under: min(cap, base * 2^attempt). */
  ceiling(): number {
    // 2^attempt overflows to Infinity long after it passed the cap; min() keeps it finite.
    return Math.min(this.#capMs, this.#baseMs * 2 ** this.#attempt);
  }

  /** The next delay in ms: uniform in [0, ceiling), rounded down. */
  next(): number {
    const ceiling = this.ceiling();
    this.#attempt++;
    const r = this.#random();
    const unit = r >= 0 && r < 1 ? r : 0;
    return Math.floor(unit * ceiling);
  }

  reset(): void {
    this.#attempt = 0;
  }
}
