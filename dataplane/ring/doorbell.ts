// A doorbell: how one sleeping thread learns that some other thread gave it work.
//
// One sleeper, any number of ringers. The sleeper announces itself with a SLEEPING flag before it
// re-checks for work and waits on a sequence word; a ringer that finds the flag set claims it (so
// a burst of commits costs one futex wake, not one per packet) and bumps the sequence. Every access
// is sequentially consistent, so of "sleeper sets flag, then checks work" and "ringer publishes
// work, then checks flag" at least one side sees the other: no lost wake-ups.
//
// Several rings may share one doorbell; that is how the TUN writer sleeps on all shard rings at
// once (Atomics.wait can only watch a single word).

/** Structured-cloneable description of a doorbell, to hand to another thread. */
export interface DoorbellHandle {
  buffer: SharedArrayBuffer;
  /** Index of the doorbell's first Int32 word inside `buffer`. */
  index: number;
}

const SLEEPING = 0;
const SEQUENCE = 1;
const PENDING = 2;
/** Int32 words one doorbell occupies (a whole cache line, so ringers do not false-share). */
export const DOORBELL_WORDS = 16;

type WaitAsync = (
  typedArray: Int32Array,
  index: number,
  value: number,
  timeout?: number,
) => { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<string> };

// Atomics.waitAsync is in V8 since Node 16 but only in the ES2024 lib typings.
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

export class Doorbell {
  readonly handle: DoorbellHandle;
  private readonly words: Int32Array;
  private readonly sleeping: number;
  private readonly sequence: number;
  private readonly pending: number;

  constructor(handle: DoorbellHandle) {
    this.handle = handle;
    this.words = new Int32Array(handle.buffer);
    this.sleeping = handle.index + SLEEPING;
    this.sequence = handle.index + SEQUENCE;
    this.pending = handle.index + PENDING;
    if (handle.index < 0 || handle.index + DOORBELL_WORDS > this.words.length)
      throw new RangeError(`doorbell index ${handle.index} outside its buffer`);
  }

  /** A doorbell in a buffer of its own. */
  static create(): Doorbell {
    return new Doorbell({
      buffer: new SharedArrayBuffer(DOORBELL_WORDS * 4),
      index: 0,
    });
  }

  /** Wake the sleeper if it is (or is about to be) asleep. Cheap when it is awake: one load. */
  ring(): void {
    if (Atomics.load(this.words, this.sleeping) === 0) return;
    if (Atomics.compareExchange(this.words, this.sleeping, 1, 0) !== 1) return;
    Atomics.add(this.words, this.sequence, 1);
    Atomics.notify(this.words, this.sequence, 1);
  }

  /**
   * Wake the sleeper unconditionally (a stop request, say). If it is not asleep yet, its next
   * sleep returns at once: the wake is remembered until one sleep consumes it.
   */
  wake(): void {
    Atomics.store(this.words, this.pending, 1);
    Atomics.add(this.words, this.sequence, 1);
    Atomics.notify(this.words, this.sequence);
  }

  /**
   * Sleeper, step 1: announce the intent to sleep. Returns the sequence value to pass to
   * `sleep`/`sleepAsync`. The caller must re-check for work after this and call `cancel` if any.
   */
  prepare(): number {
    Atomics.store(this.words, this.sleeping, 1);
    return Atomics.load(this.words, this.sequence);
  }

  /** Sleeper: work turned up after `prepare`; stay awake. */
  cancel(): void {
    Atomics.store(this.words, this.sleeping, 0);
  }

  /** Sleeper, step 2 (worker threads): block until rung or `timeoutMs` passes. */
  sleep(sequence: number, timeoutMs: number): void {
    // `wake` stores PENDING before bumping the sequence, and `prepare` read the sequence before
    // this exchange: a wake that this exchange misses has changed the sequence we wait on.
    if (Atomics.exchange(this.words, this.pending, 0) === 0)
      Atomics.wait(this.words, this.sequence, sequence, timeoutMs);
    Atomics.store(this.words, this.sleeping, 0);
  }

  /** Sleeper, step 2 (event loop): resolve when rung or after `timeoutMs`. */
  async sleepAsync(sequence: number, timeoutMs: number): Promise<void> {
    if (Atomics.exchange(this.words, this.pending, 0) === 0) {
      const r = waitAsync(this.words, this.sequence, sequence, timeoutMs);
      if (r.async) {
        // A pending waitAsync does not keep Node's event loop alive; this timer does.
        const keepAlive = setTimeout(() => {}, timeoutMs);
        try {
          await r.value;
        } finally {
          clearTimeout(keepAlive);
        }
      }
    }
    Atomics.store(this.words, this.sleeping, 0);
  }
}
