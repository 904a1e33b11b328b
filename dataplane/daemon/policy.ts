// Per-packet access policy: the control plane's rules for one session, compiled once into a flat
// list the shard walks for every packet from the client. Semantics (as the control plane defines
// them): ascending priority, deny before allow at equal priority, first match decides, else the
// default action.
import { parsePrefix, prefixContains, type IpPrefix } from '../masque/address.js';
import type { PacketInfo } from '../masque/ip.js';

export interface PolicyRuleInput {
  action: 'allow' | 'deny';
  prefix: string;
  /** IP protocol number; 0 = any. */
  protocol: number;
  /** Inclusive destination port range; both 0 = any. Only TCP and UDP packets match a port rule. */
  portFrom: number;
  portTo: number;
  priority: number;
}

export class PolicyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PolicyError';
  }
}

interface CompiledRule {
  allow: boolean;
  prefix: IpPrefix;
  protocol: number;
  portFrom: number;
  portTo: number;
}

const TCP = 6;
const UDP = 17;

export type PacketPolicy = (buf: Uint8Array, info: PacketInfo) => boolean;

export function compilePolicy(
  rules: readonly PolicyRuleInput[],
  defaultAllow: boolean,
): PacketPolicy {
  const compiled: CompiledRule[] = [...rules]
    .sort(
      (a, b) =>
        a.priority - b.priority || (a.action === b.action ? 0 : a.action === 'deny' ? -1 : 1),
    )
    .map((r) => {
      const prefix = parsePrefix(r.prefix);
      if (prefix === undefined)
        throw new PolicyError(`policy rule has an invalid prefix '${r.prefix}'`);
      if (r.portFrom > r.portTo)
        throw new PolicyError(`policy rule port range ${r.portFrom}-${r.portTo} is empty`);
      return {
        allow: r.action === 'allow',
        prefix,
        protocol: r.protocol,
        portFrom: r.portFrom,
        portTo: r.portTo,
      };
    });
  return (buf, info) => {
    for (let i = 0; i < compiled.length; i++) {
      const r = compiled[i];
      if (r.prefix.version !== info.version) continue;
      if (!prefixContains(r.prefix, buf, info.dstOffset)) continue;
      if (r.protocol !== 0 && r.protocol !== info.protocol) continue;
      if (r.portTo !== 0) {
        if (info.protocol !== TCP && info.protocol !== UDP) continue;
        if (info.laterFragment || info.transportOffset + 4 > buf.length) continue;
        const port = (buf[info.transportOffset + 2] << 8) | buf[info.transportOffset + 3];
        if (port < r.portFrom || port > r.portTo) continue;
      }
      return r.allow;
    }
    return defaultAllow;
  };
}
