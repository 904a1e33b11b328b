// iperf3 `-J` output: the few figures the tunnel benchmark reports. Receiver-side numbers are used
// because a sender's rate counts what the socket accepted, not what crossed the tunnel.

export class IperfResultError extends Error {
  override name = 'IperfResultError';
}

export interface IperfSummary {
  /** Goodput measured by the receiver. */
  bitsPerSecond: number;
  /** Bytes the receiver got. */
  bytes: number;
  seconds: number;
  /** TCP only: sender retransmissions. */
  retransmits?: number;
  /** UDP only: datagrams lost, in percent of those sent. */
  lostPercent?: number;
}

type Json = Record<string, unknown>;

function obj(v: unknown): Json | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** Parses one iperf3 `-J` document; throws IperfResultError when it reports an error or lacks a result. */
export function parseIperf3(text: string): IperfSummary {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new IperfResultError(`not iperf3 JSON: ${text.slice(0, 200)}`);
  }
  const root = obj(doc);
  if (root === undefined) throw new IperfResultError('iperf3 JSON is not an object');
  if (typeof root.error === 'string') throw new IperfResultError(`iperf3: ${root.error}`);
  const end = obj(root.end);
  if (end === undefined) throw new IperfResultError('iperf3 JSON has no "end" section');
  // TCP: sum_received. UDP (iperf3 3.12): "sum" carries the receiver's view reported back to the
  // client (lost_percent), and newer versions add sum_received as well.
  const recv = obj(end.sum_received) ?? obj(end.sum);
  const bps = num(recv?.bits_per_second);
  const bytes = num(recv?.bytes);
  if (recv === undefined || bps === undefined || bytes === undefined) {
    throw new IperfResultError('iperf3 JSON has no receiver summary');
  }
  const seconds = num(recv.seconds) ?? 0;
  const out: IperfSummary = { bitsPerSecond: bps, bytes, seconds };
  const retr = num(obj(end.sum_sent)?.retransmits);
  if (retr !== undefined) out.retransmits = retr;
  const lost = num(recv.lost_percent) ?? num(obj(end.sum)?.lost_percent);
  if (lost !== undefined) out.lostPercent = lost;
  return out;
}
