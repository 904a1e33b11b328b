// Input checks shared by the services. Each returns the canonical value or throws INVALID_ARGUMENT
// with a message that says what is wrong and what would be right.
import { InvalidCidrError, parseCidr } from '../pool/index.js';
import { invalidArgument } from './errors.js';

const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const DEVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/;
const GROUP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function checkName(kind: string, value: string, pattern: RegExp, rule: string): string {
  if (value === '') throw invalidArgument(`${kind} name is empty`);
  if (!pattern.test(value)) {
    throw invalidArgument(`invalid ${kind} name ${JSON.stringify(value)}: ${rule}`);
  }
  return value;
}

export function userName(value: string): string {
  return checkName(
    'user',
    value,
    USER_NAME,
    "use 1-64 letters, digits, '.', '_', '-' or '@', starting with a letter or digit",
  );
}

export function deviceName(value: string): string {
  return checkName(
    'device',
    value,
    DEVICE_NAME,
    "use 1-32 letters, digits, '.', '_' or '-', starting with a letter or digit",
  );
}

export function groupName(value: string): string {
  return checkName(
    'group',
    value,
    GROUP_NAME,
    "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
  );
}

/** A rule's group: a group name or '*' (every user). */
export function ruleGroup(value: string): string {
  return value === '*' ? value : groupName(value);
}

/** A destination prefix in canonical CIDR form; a bare address means the host (/32 or /128). */
export function prefix(value: string): string {
  let text = value.trim();
  if (text === '') throw invalidArgument('prefix is empty; give a CIDR such as 10.0.0.0/8');
  if (!text.includes('/')) text += text.includes(':') ? '/128' : '/32';
  try {
    return parseCidr(text).text;
  } catch (err) {
    if (err instanceof InvalidCidrError) {
      throw invalidArgument(`${err.message}; give a network such as 10.0.0.0/8 or fd00::/8`);
    }
    throw err;
  }
}

export function protocol(value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 255) {
    throw invalidArgument(`invalid IP protocol ${value}: use 0 (any) to 255, e.g. 6 TCP, 17 UDP`);
  }
  return value;
}

export function portRange(proto: number, from: number, to: number): [number, number] {
  if (from === 0 && to === 0) return [0, 0];
  if (to === 0) to = from;
  if (!Number.isInteger(from) || !Number.isInteger(to) || from < 1 || to > 65535 || from > to) {
    throw invalidArgument(`invalid port range ${from}-${to}: use 1-65535, low to high`);
  }
  if (proto !== 6 && proto !== 17 && proto !== 132) {
    throw invalidArgument('ports need a protocol with ports: 6 (TCP), 17 (UDP) or 132 (SCTP)');
  }
  return [from, to];
}
