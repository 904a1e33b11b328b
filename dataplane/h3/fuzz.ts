// Fuzz targets for every parser in this folder, and a small runner shared with masque/.
// A target may throw only its typed protocol errors; anything else, an input that takes longer
// than the per-input budget, or heap growth past the bound is reported as a failure.

import { H3Connection, type Role } from './connection.js';
import { encodeDatagram, readQuarterStreamId } from './datagram.js';
import { H3Error, H3UsageError } from './error.js';
import { FrameReader, FrameType, decodeIdPayload, encodeFrame, encodeIdFrame } from './frame.js';
import { huffmanDecode, huffmanEncode, huffmanEncodedLength } from './huffman.js';
import { validateRequestHeaders, validateResponseHeaders } from './message.js';
import {
  QpackDecoderStreamReader,
  QpackEncoderStreamReader,
  decodeFieldSection,
  encodeFieldSection,
} from './qpack.js';
import {
  decodeSettings,
  encodeSettingsFrame,
  encodeSettingsPayload,
  localSettings,
} from './settings.js';

export interface FuzzTarget {
  name: string;
  /** Valid (or interesting) inputs that mutation starts from. */
  seeds: Uint8Array[];
  run(input: Uint8Array): void;
  /** Which exceptions are the target's typed protocol errors (default: H3Error). */
  isExpected?(err: unknown): boolean;
}

export interface FuzzOptions {
  /** Total wall-clock budget shared by all targets. */
  seconds?: number;
  /** Inputs per target (used when `seconds` is absent; default 10000). */
  iterations?: number;
  seed?: number;
  maxInputLength?: number;
  /** An input running longer than this is reported as a hang (default 500 ms). */
  maxMsPerInput?: number;
  /** Heap growth over the run's start that counts as unbounded memory (default 256 MiB). */
  maxHeapGrowthBytes?: number;
  /** Stop a target after this many failures (default 5). */
  maxFailures?: number;
}

export interface FuzzFailure {
  input: string;
  reason: string;
}

export interface FuzzReport {
  target: string;
  inputs: number;
  seconds: number;
  inputsPerSecond: number;
  expectedErrors: number;
  slowestMs: number;
  failures: FuzzFailure[];
}

/** xorshift32: reproducible from the seed, fast, good enough for mutation choices. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state;
  }
  below(n: number): number {
    return n <= 0 ? 0 : this.next() % n;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.next() & 0xff;
    return out;
  }
}

const INTERESTING = [0x00, 0x01, 0x3f, 0x40, 0x7f, 0x80, 0xbf, 0xc0, 0xfe, 0xff];

function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** One to four random edits of `seed` (bit flips, interesting bytes, insert, delete, splice…). */
export function mutate(
  seed: Uint8Array,
  rng: Rng,
  others: Uint8Array[],
  maxLength: number,
): Uint8Array {
  let buf: Uint8Array = seed.slice();
  const edits = 1 + rng.below(4);
  for (let e = 0; e < edits; e++) {
    const pos = rng.below(buf.length + 1);
    switch (rng.below(8)) {
      case 0:
        if (buf.length) buf[rng.below(buf.length)] ^= 1 << rng.below(8);
        break;
      case 1:
        if (buf.length) buf[rng.below(buf.length)] = INTERESTING[rng.below(INTERESTING.length)];
        break;
      case 2:
        buf = concat([buf.subarray(0, pos), rng.bytes(1 + rng.below(8)), buf.subarray(pos)]);
        break;
      case 3:
        buf = concat([
          buf.subarray(0, pos),
          buf.subarray(Math.min(buf.length, pos + 1 + rng.below(8))),
        ]);
        break;
      case 4:
        buf = buf.subarray(0, pos);
        break;
      case 5: {
        const other = others[rng.below(others.length)] ?? new Uint8Array(0);
        const at = rng.below(other.length + 1);
        buf = concat([buf.subarray(0, pos), other.subarray(at)]);
        break;
      }
      case 6: {
        const len = rng.below(16);
        const from = rng.below(buf.length + 1);
        buf = concat([buf.subarray(0, pos), buf.subarray(from, from + len), buf.subarray(pos)]);
        break;
      }
      default:
        if (buf.length) buf[rng.below(buf.length)] = rng.next() & 0xff;
    }
  }
  return buf.length > maxLength ? buf.subarray(0, maxLength) : buf;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Runs every target for its share of the budget; returns one report per target. */
export function runFuzz(targets: FuzzTarget[], opts: FuzzOptions = {}): FuzzReport[] {
  const rng = new Rng(opts.seed ?? Date.now());
  const maxLength = opts.maxInputLength ?? 512;
  const maxMs = opts.maxMsPerInput ?? 500;
  const maxGrowth = opts.maxHeapGrowthBytes ?? 256 * 1024 * 1024;
  const maxFailures = opts.maxFailures ?? 5;
  const perTargetMs =
    opts.seconds !== undefined ? (opts.seconds * 1000) / targets.length : Infinity;
  const iterations = opts.seconds !== undefined ? Infinity : (opts.iterations ?? 10000);
  const reports: FuzzReport[] = [];
  for (const target of targets) {
    const expected = target.isExpected ?? ((e: unknown) => e instanceof H3Error);
    const heapStart = process.memoryUsage().heapUsed;
    const started = performance.now();
    const report: FuzzReport = {
      target: target.name,
      inputs: 0,
      seconds: 0,
      inputsPerSecond: 0,
      expectedErrors: 0,
      slowestMs: 0,
      failures: [],
    };
    const seeds = target.seeds.length ? target.seeds : [new Uint8Array(0)];
    for (let i = 0; i < iterations; i++) {
      if ((i & 63) === 0 && performance.now() - started >= perTargetMs) break;
      let input: Uint8Array;
      const r = rng.below(10);
      if (i < seeds.length) input = seeds[i];
      else if (r < 2) input = rng.bytes(rng.below(maxLength + 1));
      else input = mutate(seeds[rng.below(seeds.length)], rng, seeds, maxLength);
      const t0 = performance.now();
      try {
        target.run(input);
      } catch (err) {
        if (expected(err)) report.expectedErrors++;
        else
          report.failures.push({
            input: hex(input),
            reason: err instanceof Error ? (err.stack ?? err.message) : String(err),
          });
      }
      const ms = performance.now() - t0;
      report.inputs++;
      if (ms > report.slowestMs) report.slowestMs = ms;
      if (ms > maxMs)
        report.failures.push({ input: hex(input), reason: `took ${ms.toFixed(0)} ms` });
      if ((i & 1023) === 1023 && process.memoryUsage().heapUsed - heapStart > maxGrowth) {
        report.failures.push({ input: hex(input), reason: 'heap grew past the bound' });
        break;
      }
      if (report.failures.length >= maxFailures) break;
    }
    report.seconds = (performance.now() - started) / 1000;
    report.inputsPerSecond = report.inputs / Math.max(report.seconds, 1e-9);
    reports.push(report);
  }
  return reports;
}

// ---- this folder's targets ---------------------------------------------------------------------

const latin = (s: string) => Uint8Array.from(Buffer.from(s, 'latin1'));

const REQUEST: Array<[string, string]> = [
  [':method', 'CONNECT'],
  [':protocol', 'connect-ip'],
  [':scheme', 'https'],
  [':authority', 'proxy.example.org'],
  [':path', '/.well-known/masque/ip/*/*/'],
  ['capsule-protocol', '?1'],
];
const RESPONSE: Array<[string, string]> = [
  [':status', '200'],
  ['capsule-protocol', '?1'],
];

function fail(message: string): never {
  throw new Error(`property violated: ${message}`);
}

/** Splits `input` at points derived from its own bytes so chunking is fuzzed too. */
function chunks(input: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let off = 0;
  let step = 1 + ((input[0] ?? 0) % 7);
  while (off < input.length) {
    out.push(input.subarray(off, off + step));
    off += step;
    step = 1 + ((input[off - 1] ?? 0) % 13);
  }
  return out;
}

const frameTarget: FuzzTarget = {
  name: 'h3.frame-reader',
  seeds: [
    encodeSettingsFrame(localSettings({ role: 'server' })),
    encodeFrame(FrameType.HEADERS, encodeFieldSection(REQUEST)),
    concat([encodeFrame(FrameType.DATA, latin('hello')), encodeIdFrame(FrameType.GOAWAY, 8)]),
    concat([encodeFrame(0x21, latin('grease')), encodeFrame(FrameType.DATA, new Uint8Array(0))]),
  ],
  run(input) {
    const reader = new FrameReader({ maxHeadersPayload: 4096, maxControlPayload: 1024 });
    const sink = {
      frameStart() {},
      data() {},
      frame(type: number, payload: Uint8Array) {
        if (type === FrameType.SETTINGS) decodeSettings(payload);
        else if (type === FrameType.HEADERS) decodeFieldSection(payload);
        else if (type !== FrameType.PUSH_PROMISE) decodeIdPayload(payload);
      },
    };
    for (const c of chunks(input)) reader.push(c, sink);
    reader.end();
  },
};

const settingsTarget: FuzzTarget = {
  name: 'h3.settings',
  seeds: [
    encodeSettingsPayload(localSettings({ role: 'server' })),
    encodeSettingsPayload(localSettings({ role: 'client', draftDatagram: true, greaseN: 7 })),
  ],
  run(input) {
    const s = decodeSettings(input);
    // Values above 2^53 decode rounded and cannot be re-encoded; only unknown ids carry them.
    if (!s.entries.every(([id, v]) => Number.isSafeInteger(id) && Number.isSafeInteger(v))) return;
    const again = decodeSettings(encodeSettingsPayload(s.entries));
    if (again.entries.length !== s.entries.length) fail('settings re-encode changed entries');
  },
};

function sameFields(a: Array<[string, string]>, b: Array<[string, string]>): boolean {
  return a.length === b.length && a.every(([n, v], i) => n === b[i][0] && v === b[i][1]);
}

const qpackTarget: FuzzTarget = {
  name: 'h3.qpack-decoder',
  seeds: [
    encodeFieldSection(REQUEST, { huffman: 'never' }),
    encodeFieldSection(REQUEST, { huffman: 'always' }),
    encodeFieldSection(RESPONSE),
    encodeFieldSection([['x-long', 'y'.repeat(200)]]),
  ],
  run(input) {
    const fields = decodeFieldSection(input);
    for (const mode of ['never', 'always', 'auto'] as const) {
      const again = decodeFieldSection(encodeFieldSection(fields, { huffman: mode }));
      if (!sameFields(fields, again)) fail(`QPACK round trip (${mode})`);
    }
    try {
      validateRequestHeaders(fields, true);
    } catch (err) {
      if (!(err instanceof H3Error)) throw err;
    }
    validateResponseHeaders(fields);
  },
};

const huffmanTarget: FuzzTarget = {
  name: 'h3.huffman',
  seeds: [latin('www.example.com'), latin('/.well-known/masque/ip/*/*/')].map((s) => {
    const out = new Uint8Array(huffmanEncodedLength(s));
    huffmanEncode(s, out, 0);
    return out;
  }),
  run(input) {
    const decoded = huffmanDecode(input);
    // Padding is forced (< 8 one-bits), so a valid input has exactly one encoding: itself.
    const out = new Uint8Array(huffmanEncodedLength(decoded));
    huffmanEncode(decoded, out, 0);
    if (hex(out) !== hex(input)) fail('Huffman decode/encode is not the identity');
  },
};

const qpackStreamsTarget: FuzzTarget = {
  name: 'h3.qpack-streams',
  seeds: [Uint8Array.of(0x20), Uint8Array.of(0x41, 0x7f, 0x05), Uint8Array.of(0x3f, 0x80, 0x00)],
  run(input) {
    const enc = new QpackEncoderStreamReader(true);
    const dec = new QpackDecoderStreamReader(true);
    let encErr: unknown;
    for (const c of chunks(input)) {
      try {
        enc.push(c);
      } catch (err) {
        encErr = err;
        break;
      }
    }
    for (const c of chunks(input)) dec.push(c);
    if (encErr) throw encErr;
  },
};

const datagramTarget: FuzzTarget = {
  name: 'h3.datagram',
  seeds: [encodeDatagram(0, Uint8Array.of(0, 0x45)), encodeDatagram(4 * 1000, Uint8Array.of(1))],
  run(input) {
    const out = { qsid: 0, offset: 0 };
    readQuarterStreamId(input, out);
    if (out.offset > input.length) fail('datagram offset past the end');
  },
};

/**
 * Drives a whole connection from a script: each step is `op, stream selector, length, bytes`.
 * Invariant: the connection never throws but its documented usage errors.
 */
function runConnectionScript(role: Role, input: Uint8Array): void {
  const conn = new H3Connection({ role, strictQpackStreams: (input[0] ?? 0) % 2 === 1 });
  const peerUni = role === 'server' ? [2, 6, 10, 14] : [3, 7, 11, 15];
  const bidi = [0, 4, 8, 1];
  let off = 1;
  const drain = () => {
    while (conn.pollAction());
    while (conn.pollEvent());
  };
  while (off + 3 <= input.length) {
    const op = input[off] % 10;
    const sel = input[off + 1];
    const len = input[off + 2];
    const data = input.subarray(off + 3, off + 3 + len);
    off += 3 + len;
    const stream = sel & 0x80 ? bidi[sel & 3] : peerUni[sel & 3];
    try {
      switch (op) {
        case 0:
        case 1:
        case 2:
          conn.streamData(stream, data, false);
          break;
        case 3:
          conn.streamData(stream, data, true);
          break;
        case 4:
          conn.streamReset(stream, sel);
          break;
        case 5:
          conn.stopSending(stream, sel);
          break;
        case 6:
          conn.receiveDatagram(data);
          break;
        case 7:
          if (role === 'client') conn.request(REQUEST);
          else conn.respond(stream, RESPONSE);
          break;
        case 8:
          conn.sendData(stream, data);
          conn.sendDatagram(stream, data);
          break;
        default:
          conn.goaway(role === 'server' ? sel & 0x7c : sel);
      }
    } catch (err) {
      if (!(err instanceof H3UsageError)) throw err;
    }
    drain();
  }
}

function step(op: number, sel: number, data: Uint8Array): Uint8Array {
  return concat([Uint8Array.of(op, sel, data.length), data]);
}

const serverSeed = concat([
  Uint8Array.of(0),
  step(0, 0, concat([Uint8Array.of(0), encodeSettingsFrame(localSettings({ role: 'client' }))])),
  step(0, 1, Uint8Array.of(2, 0x20)),
  step(0, 2, Uint8Array.of(3)),
  step(0, 0x80, encodeFrame(FrameType.HEADERS, encodeFieldSection(REQUEST, { huffman: 'always' }))),
  step(7, 0x80, new Uint8Array(0)),
  step(0, 0x80, encodeFrame(FrameType.DATA, Uint8Array.of(1, 7, 0, 4, 10, 1, 1, 2, 32))),
  step(6, 0, Uint8Array.of(0, 0, 0x45, 0)),
  step(8, 0x80, Uint8Array.of(0, 0x45)),
  step(3, 0x80, new Uint8Array(0)),
]);

const clientSeed = concat([
  Uint8Array.of(1),
  step(0, 0, concat([Uint8Array.of(0), encodeSettingsFrame(localSettings({ role: 'server' }))])),
  step(7, 0x80, new Uint8Array(0)),
  step(0, 0x80, encodeFrame(FrameType.HEADERS, encodeFieldSection(RESPONSE))),
  step(0, 0x80, encodeFrame(FrameType.DATA, Uint8Array.of(3, 0))),
  step(6, 0, Uint8Array.of(0, 0, 0x60)),
  step(9, 0, encodeIdFrame(FrameType.GOAWAY, 0)),
]);

const connectionTarget = (role: Role): FuzzTarget => ({
  name: `h3.connection-${role}`,
  seeds: [role === 'server' ? serverSeed : clientSeed],
  run: (input) => runConnectionScript(role, input),
  isExpected: (err) => err instanceof H3Error || err instanceof H3UsageError,
});

/** Every fuzz target of the HTTP/3 layer. */
export function h3FuzzTargets(): FuzzTarget[] {
  return [
    frameTarget,
    settingsTarget,
    qpackTarget,
    huffmanTarget,
    qpackStreamsTarget,
    datagramTarget,
    connectionTarget('server'),
    connectionTarget('client'),
  ];
}
