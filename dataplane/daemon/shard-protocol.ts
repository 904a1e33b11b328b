// Messages between the supervisor (main thread) and a shard worker. Structured-clone plain data.
import type { FecConfig } from '../fec/config.js';
import type { DoorbellHandle } from '../ring/doorbell.js';
import type { RingHandle } from '../ring/spsc.js';
import type { RouteTableHandle } from '../ring/route-table.js';
import type { PolicyRuleInput } from './policy.js';
import type { ShardReport } from './report.js';

export interface ShardInit {
  role: 'shard';
  shard: number;
  shards: number;
  host: string;
  port: number;
  certPem: string;
  keyPem: string;
  caPem: string;
  serverName: string;
  idleTimeoutMs: number;
  keepAliveMs: number;
  cc: 'bbr' | 'cubic';
  mtu: number;
  /** FEC answers to clients' offers ([fec] of the data plane config). */
  fec: FecConfig;
  /** Extra request paths besides the RFC 9484 default template. */
  paths: string[];
  /** Rings this shard consumes: from the TUN reader first, then hairpin rings from other shards. */
  inbound: RingHandle[];
  /** The doorbell every inbound ring rings. */
  inboundBell: DoorbellHandle;
  toWriter: RingHandle;
  /** `hairpinOut[d]`: the ring to shard d for client-to-client packets (none for this shard). */
  hairpinOut: (RingHandle | undefined)[];
  routes: RouteTableHandle;
  reportIntervalMs: number;
  logLevel: string;
}

/** What the control plane decided for one tunnel, reduced to what a shard needs. */
export type AuthorizeReply =
  | {
      kind: 'allowed';
      sessionId: string;
      client: string;
      deviceId: number;
      certSerial: string;
      addresses: string[];
      routes: string[];
      rules: PolicyRuleInput[];
      defaultAllow: boolean;
    }
  | { kind: 'denied'; status: 401 | 403; message: string }
  | { kind: 'unavailable'; message: string };

export type ToShard =
  | { type: 'authorized'; id: number; reply: AuthorizeReply }
  | { type: 'kick'; sessionIds: string[]; reason: string }
  | { type: 'revoke'; serials: string[]; deviceId: number; sessionIds: string[] }
  | {
      type: 'policy';
      sessionId: string;
      rules: PolicyRuleInput[];
      defaultAllow: boolean;
      routes: string[];
    }
  /** SIGHUP reloaded these; they apply to new tunnels (and, for the level, every log line). */
  | { type: 'settings'; logLevel: string; fec: FecConfig; paths: string[] }
  /** A renewed server certificate for new handshakes; answered with a 'credentials' message. */
  | { type: 'credentials'; id: number; certPem: string; keyPem: string; caPem: string }
  | { type: 'drain' }
  | { type: 'stop' };

export type FromShard =
  | { type: 'ready'; shard: number }
  | { type: 'authorize'; id: number; certDer: Uint8Array; remote: string }
  | ShardReport
  | {
      type: 'credentials';
      id: number;
      shard: number;
      outcome: 'applied' | 'failed';
      error?: string;
    }
  | { type: 'stopped'; shard: number; sessions: number };
