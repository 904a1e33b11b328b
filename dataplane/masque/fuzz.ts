// Fuzz targets for every parser of the CONNECT-IP layer. Each `fuzz*` function takes arbitrary
// bytes and either returns, throws one of this layer's typed protocol errors, or throws an Error
// saying which property it found broken; h3/fuzz.ts `runFuzz` drives them (masqueFuzzTargets).

import type { FuzzTarget } from '../h3/fuzz.js';
import { isUnspecified, parseIp } from './address.js';
import {
  CapsuleParser,
  decodeAddressAssign,
  decodeAddressRequest,
  decodeRouteAdvertisement,
  encodeCapsule,
  type Capsule,
} from './capsule.js';
import { internetChecksum } from './checksum.js';
import { ContextRegistry } from './datagram.js';
import { MasqueError } from './errors.js';
import { ICMP_ERROR_BUFFER_SIZE, IcmpError, writeIcmpError } from './icmp.js';
import { PacketInfo, checkPacket, decrementHopLimit, inspectPacket } from './ip.js';
import { classifyResponse, validateConnectIpRequest, type HeaderList } from './request.js';
import {
  fullRange,
  normaliseRoutes,
  rangeEquals,
  validateRoutes,
  rangeFromPrefix,
} from './route.js';
import { ClientSession } from './client-session.js';
import { DEFAULT_PATH_TEMPLATE, matchTemplate, parseTemplate } from './template.js';
import type { TunnelOutput } from './tunnel.js';

function broken(what: string): never {
  throw new Error(`property violated: ${what}`);
}

/** Chunk sizes derived from the input itself, so chunking is fuzzed along with content. */
function forEachChunk(input: Uint8Array, fn: (chunk: Uint8Array) => void): void {
  let off = 0;
  let step = 1 + ((input[0] ?? 0) % 13);
  while (off < input.length) {
    fn(input.subarray(off, off + step));
    off += step;
    step = 1 + ((input[off] ?? step) % 29);
  }
}

const sameCapsule = (a: Capsule, b: Capsule): boolean =>
  Buffer.from(encodeCapsule(a)).equals(Buffer.from(encodeCapsule(b)));

/** The streaming parser over arbitrary chunking; whole-input and chunked parses must agree. */
export function fuzzCapsuleStream(input: Uint8Array): void {
  const whole: Capsule[] = [];
  const chunked: Capsule[] = [];
  let wholeErr: unknown;
  try {
    new CapsuleParser({ maxControlCapsule: 4096, maxDatagramCapsule: 2048 }).push(input, (c) =>
      whole.push(c.kind === 'datagram' ? { kind: 'datagram', payload: c.payload.slice() } : c),
    );
  } catch (err) {
    wholeErr = err;
  }
  const p = new CapsuleParser({ maxControlCapsule: 4096, maxDatagramCapsule: 2048 });
  try {
    forEachChunk(input, (chunk) =>
      p.push(chunk, (c) =>
        chunked.push(c.kind === 'datagram' ? { kind: 'datagram', payload: c.payload.slice() } : c),
      ),
    );
  } catch (err) {
    if (!(err instanceof MasqueError)) throw err;
    if (!(wholeErr instanceof MasqueError))
      broken('chunked parse failed where the whole parse did not');
    throw err;
  }
  if (wholeErr) broken('whole parse failed where the chunked parse did not');
  if (whole.length !== chunked.length || whole.some((c, i) => !sameCapsule(c, chunked[i])))
    broken('chunking changed the parsed capsules');
  p.finish();
}

function reencodes(c: Capsule): void {
  const again: Capsule[] = [];
  new CapsuleParser().push(encodeCapsule(c), (x) => again.push(x));
  if (again.length !== 1 || !sameCapsule(again[0], c)) broken(`${c.kind} does not round-trip`);
}

export function fuzzAddressAssign(input: Uint8Array): void {
  reencodes({ kind: 'address-assign', addresses: decodeAddressAssign(input) });
}

export function fuzzAddressRequest(input: Uint8Array): void {
  reencodes({ kind: 'address-request', addresses: decodeAddressRequest(input) });
}

export function fuzzRouteAdvertisement(input: Uint8Array): void {
  const ranges = decodeRouteAdvertisement(input);
  reencodes({ kind: 'route-advertisement', ranges });
  // A valid set is already canonical except for merging across protocols, which validity forbids.
  const norm = normaliseRoutes(ranges);
  if (validateRoutes(norm) !== undefined) broken('normalised set is invalid');
  if (norm.length !== ranges.length || norm.some((r, i) => !rangeEquals(r, ranges[i])))
    broken('a valid advertisement changed under normalisation');
}

const noop = (): void => {};
const fuzzRegistry = new ContextRegistry('proxy', noop);
fuzzRegistry.register(2, noop);

/** HTTP Datagram Payload (after the QSID): context ID dispatch never throws. */
export function fuzzDatagram(input: Uint8Array): void {
  const before = { ...fuzzRegistry.stats };
  fuzzRegistry.dispatch(input, 0, input.length);
  const s = fuzzRegistry.stats;
  const counted = s.ip + s.extension + s.unknownContext + s.unparseable;
  const was = before.ip + before.extension + before.unknownContext + before.unparseable;
  if (counted !== was + 1) broken('a datagram was neither delivered nor counted');
}

const NAMES = [
  ':method',
  ':scheme',
  ':authority',
  ':path',
  ':protocol',
  ':status',
  'host',
  'capsule-protocol',
  'te',
  'content-length',
  'transfer-encoding',
  'connect-ip-version',
];
const VALUES = [
  'CONNECT',
  'https',
  'proxy.example.org',
  DEFAULT_PATH_TEMPLATE.replace(/\{[a-z]+\}/g, '*'),
  'connect-ip',
  '200',
  '?1',
  'trailers',
  '/vpn',
  '/.well-known/masque/ip///',
  '0',
];

/** Header lists built from the bytes: dictionary names/values mixed with raw latin1 strings. */
export function headersFromBytes(input: Uint8Array): HeaderList {
  const out: HeaderList = [];
  let i = 0;
  const take = (dict: string[]): string => {
    const b = input[i++] ?? 0;
    if (b < 0xc0) return dict[b % dict.length];
    const n = b & 0x1f;
    const s = Buffer.from(input.subarray(i, i + n)).toString('latin1');
    i += n;
    return s;
  };
  while (i < input.length && out.length < 32) out.push([take(NAMES), take(VALUES)]);
  return out;
}

const proxyConfig = {
  authorities: ['proxy.example.org'],
  templates: [parseTemplate('/vpn')],
  extendedConnectEnabled: true,
};
const defaultTemplate = parseTemplate(DEFAULT_PATH_TEMPLATE);
const clientTemplate = parseTemplate('https://proxy.example.org' + DEFAULT_PATH_TEMPLATE);

/** Request validation, response classification and template matching never throw. */
export function fuzzRequest(input: Uint8Array): void {
  const headers = headersFromBytes(input);
  const v = validateConnectIpRequest(headers, proxyConfig);
  if (!v.ok && v.response[0][1] !== String(v.status)) broken('response status differs from result');
  classifyResponse(headers);
  matchTemplate(defaultTemplate, Buffer.from(input).toString('latin1'));
}

const info = new PacketInfo();
const icmp = new Uint8Array(ICMP_ERROR_BUFFER_SIZE);
const rules = {
  sources: [
    rangeFromPrefix({ version: 4, address: parseIp('10.0.0.0') as Uint8Array, prefixLength: 8 }),
  ],
  destinations: [fullRange(4), fullRange(6)],
};

/** IP checks, hop-limit decrement and ICMP construction; built ICMP must checksum to zero. */
export function fuzzIpPacket(input: Uint8Array): void {
  const pkt = input.slice();
  if (!inspectPacket(pkt, 0, pkt.length, info)) return;
  if (info.headerLength > pkt.length) broken('header longer than the packet');
  checkPacket(pkt, info, rules);
  const kind = (pkt[pkt.length - 1] & 3) as IcmpError;
  const n = writeIcmpError(icmp, 0, pkt, 0, pkt.length, info, kind, 1280);
  if (n > 0 && info.version === 4) {
    if (internetChecksum(icmp, 0, 20) !== 0 || internetChecksum(icmp, 20, n - 20) !== 0)
      broken('ICMPv4 checksum');
  }
  if (n > 0 && info.version === 6 && (n > 1280 || isUnspecified(icmp.subarray(24, 40))))
    broken('ICMPv6 size or destination');
  if (info.version === 4) {
    const ttl = pkt[8];
    const headerOk = internetChecksum(pkt, 0, info.headerLength) === 0;
    if (decrementHopLimit(pkt, 0, info)) {
      if (pkt[8] !== ttl - 1) broken('TTL not decremented');
      if (headerOk && internetChecksum(pkt, 0, info.headerLength) !== 0)
        broken('checksum broken by decrement');
    }
  } else decrementHopLimit(pkt, 0, info);
}

const sink: TunnelOutput = {
  sendHeaders: noop,
  sendData: noop,
  resetStream: noop,
  sendDatagram: noop,
  deliverPacket: noop,
};

/**
 * An open client session fed a script: bytes alternate between stream data (capsules from the
 * proxy) and datagrams. Packet contents must never reset the stream; capsule errors are handled
 * inside the session (it resets the stream, never throws).
 */
export function fuzzSession(input: Uint8Array): void {
  let resets = 0;
  const s = new ClientSession({
    output: { ...sink, resetStream: () => resets++ },
    template: clientTemplate,
    now: () => 0,
  });
  s.start();
  s.onResponseHeaders([[':status', '200']], 0);
  let off = 0;
  while (off < input.length) {
    const ctl = input[off++];
    const len = Math.min(ctl & 0x3f, input.length - off);
    const part = input.subarray(off, off + len);
    off += len;
    if (ctl & 0x80) {
      const before = resets;
      s.receiveDatagram(part, 0, part.length);
      if (resets !== before) broken('a datagram reset the stream');
    } else s.onData(part);
    if (ctl & 0x40 && s.state === 'open') {
      s.onTimeout(1e9);
      s.sendPacket(part.slice(), 0, part.length);
    }
  }
  if (s.state !== 'closed') s.onFin();
  if (s.state !== 'closed') broken('FIN did not close the tunnel');
}

function target(name: string, run: (input: Uint8Array) => void, seeds: string[]): FuzzTarget {
  return {
    name,
    seeds: seeds.map((h) => Uint8Array.from(Buffer.from(h.replace(/\s+/g, ''), 'hex'))),
    run,
    isExpected: (err) => err instanceof MasqueError,
  };
}

const v4Packet =
  '45000020000040004011 0000 0a010102 c0000201 00000000000000000000000000000000'.replace(
    /\s+/g,
    '',
  );
const v6Packet =
  '6000000000100040' +
  '20010db8000000000000000000000001' +
  '20010db8000000000000000000000002' +
  '2c000001000000000000000000000000';

/** Every fuzz target of this folder, for h3/fuzz.ts `runFuzz` and `masque-bench fuzz`. */
export function masqueFuzzTargets(): FuzzTarget[] {
  return [
    target('masque.capsule-stream', fuzzCapsuleStream, [
      '01 07 00 04 0a 01 01 02 20 03 0a 04 00 00 00 00 ff ff ff ff 00',
      '02 07 01 04 00 00 00 00 20 00 03 00 45 00',
      '9a ce 79 ec 04 01 02 03 04 03 00',
    ]),
    target('masque.address-assign', fuzzAddressAssign, [
      '00 04 0a 01 01 02 20',
      '00 06 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 80',
    ]),
    target('masque.address-request', fuzzAddressRequest, [
      '01 04 00 00 00 00 20',
      '02 06' + '00'.repeat(16) + '80',
    ]),
    target('masque.route-advertisement', fuzzRouteAdvertisement, [
      '04 00 00 00 00 ff ff ff ff 00 06' + '00'.repeat(16) + 'ff'.repeat(16) + '00',
      '04 0a000000 0a0000ff 06 04 0a000000 0a0000ff 11',
    ]),
    target('masque.datagram', fuzzDatagram, ['00 45 00', '02 aa', '40 00 60']),
    target('masque.request', fuzzRequest, [
      '00 00 01 01 02 02 03 03 04 04 07 06',
      '00 00 01 01 02 02 03 08 04 04',
    ]),
    target('masque.ip-packet', fuzzIpPacket, [v4Packet, v6Packet]),
    target('masque.session', fuzzSession, [
      '09 01 07 00 04 0a 01 01 02 20 95 00' + v4Packet,
      '02 02 00',
    ]),
  ];
}
