// What SIGHUP may change in a running data plane. Keys that only steer new work (the next tunnel,
// the next log line, the next shutdown, the metrics listener) are applied live; keys bound to the
// UDP socket, the TUN device, the shard count, the QUIC endpoint's transport settings or the
// control-plane link need a restart, and a reload keeps their running values and says so.
import { isDeepStrictEqual } from 'node:util';
import type { DataplaneConfig } from './config.js';

/** Applied live on SIGHUP. */
export const RELOADABLE_KEYS = ['log_level', 'fec', 'paths', 'drain_seconds', 'metrics'] as const;
export type ReloadableKey = (typeof RELOADABLE_KEYS)[number];

/** Read once at start; changing them needs a restart. */
export const RESTART_KEYS = [
  'listen',
  'workers',
  'control',
  'control_ca',
  'control_server_name',
  'join_token',
  'state_dir',
  'tun_name',
  'mtu',
  'nat',
  'quic',
] as const satisfies readonly (keyof DataplaneConfig)[];

// Every key of the schema is in exactly one list (checked by the unit test, too).
type Unlisted = Exclude<keyof DataplaneConfig, ReloadableKey | (typeof RESTART_KEYS)[number]>;
const _everyKeyListed: [Unlisted] extends [never] ? true : never = true;

export interface ReloadPlan {
  /** The configuration to run with: the current one with every reloadable change applied. */
  next: DataplaneConfig;
  /** Reloadable keys whose value changed. */
  changed: ReloadableKey[];
  /** Keys that changed but keep their running value until a restart. */
  needsRestart: string[];
}

export function planReload(current: DataplaneConfig, wanted: DataplaneConfig): ReloadPlan {
  const next: DataplaneConfig = { ...current };
  const changed: ReloadableKey[] = [];
  for (const key of RELOADABLE_KEYS) {
    if (isDeepStrictEqual(current[key], wanted[key])) continue;
    changed.push(key);
    (next as Record<ReloadableKey, unknown>)[key] = wanted[key];
  }
  const needsRestart = RESTART_KEYS.filter((k) => !isDeepStrictEqual(current[k], wanted[k]));
  return { next, changed, needsRestart };
}
