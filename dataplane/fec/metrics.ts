// FEC counters for one direction pair of one tunnel. Plain numeric fields so the data path bumps
// them without indirection; the shard sums sessions with `addFecMetrics` and exports the totals
// (prom-client lives in the daemon, not here).

export interface FecMetrics {
  /** Data packets sent inside an FEC block. */
  packetsProtected: number;
  /** Data packets sent plainly on context 0 (FEC negotiated but currently off, or oversize). */
  packetsUnprotected: number;
  repairPacketsSent: number;
  /** FEC header bytes on data packets plus whole repair payloads. */
  overheadBytes: number;
  /** Repair ratio (repair / data symbols) the sender currently uses; 0 = off. */
  currentRatio: number;
  /** Receiver side. */
  dataPacketsReceived: number;
  repairPacketsReceived: number;
  packetsRecovered: number;
  /** Blocks that left the window with data still missing. */
  unrecoverableBlocks: number;
  duplicatesDropped: number;
  lateDropped: number;
  /** FEC payloads with a bad header, or blocks whose symbols contradict each other. */
  malformedDropped: number;
  /** Blocks whose buffers were released early to stay inside the memory bound. */
  blocksEvictedForMemory: number;
}

export function newFecMetrics(): FecMetrics {
  return {
    packetsProtected: 0,
    packetsUnprotected: 0,
    repairPacketsSent: 0,
    overheadBytes: 0,
    currentRatio: 0,
    dataPacketsReceived: 0,
    repairPacketsReceived: 0,
    packetsRecovered: 0,
    unrecoverableBlocks: 0,
    duplicatesDropped: 0,
    lateDropped: 0,
    malformedDropped: 0,
    blocksEvictedForMemory: 0,
  };
}

/**
 * Adds every counter of `from` into `into`. `currentRatio` is a gauge: the sum keeps the largest
 * ratio in use, which is what a global "is FEC spending bandwidth" view wants.
 */
export function addFecMetrics(into: FecMetrics, from: Readonly<FecMetrics>): FecMetrics {
  for (const key of Object.keys(into) as (keyof FecMetrics)[]) {
    if (key === 'currentRatio') into.currentRatio = Math.max(into.currentRatio, from.currentRatio);
    else into[key] += from[key];
  }
  return into;
}

/**
 * Exported names and help texts, so the daemon's /metrics and `masque-client status` describe the
 * same counters the same way (prefix with `masque_vpn_`; counters get `_total`).
 */
export const FEC_METRIC_HELP: Readonly<Record<keyof FecMetrics, string>> = {
  packetsProtected: 'data packets sent inside an FEC block',
  packetsUnprotected: 'data packets sent plainly on context 0 while FEC was negotiated',
  repairPacketsSent: 'FEC repair packets sent',
  overheadBytes: 'bytes spent on FEC (headers on data packets and whole repair packets)',
  currentRatio: 'repair to data ratio in use (0 = off)',
  dataPacketsReceived: 'data packets received on the FEC context',
  repairPacketsReceived: 'FEC repair packets received',
  packetsRecovered: 'lost data packets rebuilt from repair packets',
  unrecoverableBlocks: 'FEC blocks that kept missing data after the window passed',
  duplicatesDropped: 'FEC packets dropped as duplicates',
  lateDropped: 'FEC packets dropped as older than the reorder window',
  malformedDropped: 'FEC packets dropped as malformed or contradicting their block',
  blocksEvictedForMemory: 'FEC blocks given up early to stay within the memory bound',
};
