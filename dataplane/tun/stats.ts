// Counters of the TUN threads, in shared memory so the supervisor can read them for /metrics.
// Float64 cells, each written by exactly one thread with a plain `+=`: exact up to 2^53 and, unlike
// BigInt64 Atomics, free of per-update allocation. A reader may see a value one update stale.

export const TUN_STATS = [
  // written by the reader thread
  'readPackets',
  'readBytes',
  'readErrors',
  /** destination not in the route table */
  'dropNoRoute',
  /** not IPv4/IPv6, or shorter than its fixed header */
  'dropMalformed',
  /** filled a whole slot, so possibly truncated: the MTU is not below the slot size */
  'dropOversize',
  /** the owning shard's ring was full */
  'dropRingFull',
  /** packets that went through the staging slot (destination shard differed from the guess) */
  'stagedCopies',
  /** idle waits in poll() */
  'readWaits',
  // written by the writer thread
  'writePackets',
  'writeBytes',
  'writeErrors',
  'writeWaits',
] as const;

export type TunStatName = (typeof TUN_STATS)[number];

/** Index of each counter in the Float64Array over the stats buffer. */
export const TunStat = Object.fromEntries(TUN_STATS.map((name, i) => [name, i])) as {
  readonly [K in TunStatName]: number;
};

export function createTunStats(): SharedArrayBuffer {
  return new SharedArrayBuffer(TUN_STATS.length * 8);
}

/** Snapshot of every counter by name (for metrics; allocates). */
export function readTunStats(buffer: SharedArrayBuffer): Record<TunStatName, number> {
  const cells = new Float64Array(buffer);
  const out = {} as Record<TunStatName, number>;
  TUN_STATS.forEach((name, i) => (out[name] = cells[i]));
  return out;
}
