import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  GOAWAY_MAX_ID,
  H3Connection,
  type H3Action,
  type H3ConnectionOptions,
  type H3Event,
} from './connection.js';
import { H3ErrorCode, H3UsageError } from './error.js';
import { FrameType, encodeFrame, encodeIdFrame } from './frame.js';
import { encodeFieldSection, type HeaderList } from './qpack.js';
import { encodeSettingsFrame, encodeSettingsPayload, localSettings } from './settings.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const ascii = (s: string) => Buffer.from(s, 'latin1').toString('hex');
const cat = (...parts: Uint8Array[]) => Uint8Array.from(Buffer.concat(parts));

const CONNECT_IP: HeaderList = [
  [':method', 'CONNECT'],
  [':scheme', 'https'],
  [':authority', 'proxy.example.org'],
  [':path', '/.well-known/masque/ip/*/*/'],
  [':protocol', 'connect-ip'],
  ['capsule-protocol', '?1'],
];
const OK: HeaderList = [
  [':status', '200'],
  ['capsule-protocol', '?1'],
];
const GET: HeaderList = [
  [':method', 'GET'],
  [':scheme', 'https'],
  [':authority', 'a'],
  [':path', '/'],
];

interface Drained {
  actions: H3Action[];
  events: H3Event[];
}

function drain(conn: H3Connection): Drained {
  const out: Drained = { actions: [], events: [] };
  for (let a = conn.pollAction(); a; a = conn.pollAction()) out.actions.push(a);
  for (let e = conn.pollEvent(); e; e = conn.pollEvent()) out.events.push(e);
  return out;
}

/** Concatenated bytes written per stream. */
function writes(actions: H3Action[]): Map<number, string> {
  const m = new Map<number, string>();
  for (const a of actions)
    if (a.kind === 'write') m.set(a.streamId, (m.get(a.streamId) ?? '') + toHex(a.data));
  return m;
}

function closeCode(d: Drained): number | undefined {
  return d.actions.find((a): a is Extract<H3Action, { kind: 'close' }> => a.kind === 'close')?.code;
}

function kinds(d: Drained): string[] {
  return d.events.map((e) => e.kind);
}

const CLIENT_CONTROL = cat(
  Uint8Array.of(0),
  encodeSettingsFrame(localSettings({ role: 'client' })),
);
const SERVER_CONTROL = cat(
  Uint8Array.of(0),
  encodeSettingsFrame(localSettings({ role: 'server' })),
);

/** A server that already has the client's control stream (client uni stream 2). */
function server(opts: Partial<H3ConnectionOptions> = {}): H3Connection {
  const s = new H3Connection({ role: 'server', ...opts });
  s.streamData(2, CLIENT_CONTROL, false);
  drain(s);
  return s;
}

/** A client that already has the server's control stream (server uni stream 3). */
function client(opts: Partial<H3ConnectionOptions> = {}): H3Connection {
  const c = new H3Connection({ role: 'client', ...opts });
  c.streamData(3, SERVER_CONTROL, false);
  drain(c);
  return c;
}

const headersFrame = (fields: HeaderList) =>
  encodeFrame(FrameType.HEADERS, encodeFieldSection(fields));

/** A server with one accepted CONNECT-IP request on stream 0. */
function serverWithTunnel(opts: Partial<H3ConnectionOptions> = {}): H3Connection {
  const s = server(opts);
  s.streamData(0, headersFrame(CONNECT_IP), false);
  assert.deepEqual(kinds(drain(s)), ['request']);
  return s;
}

/** Delivers every action of `from` to `to`; returns those actions (events stay queued). */
function deliver(from: H3Connection, to: H3Connection, chunk = Infinity): Drained {
  const d: Drained = { actions: [], events: [] };
  for (let a = from.pollAction(); a; a = from.pollAction()) d.actions.push(a);
  for (const a of d.actions) {
    switch (a.kind) {
      case 'write':
        if (a.data.length === 0) to.streamData(a.streamId, a.data, a.fin);
        for (let i = 0; i < a.data.length; i += chunk) {
          const end = Math.min(a.data.length, i + chunk);
          to.streamData(a.streamId, a.data.subarray(i, end), a.fin && end === a.data.length);
        }
        break;
      case 'resetStream':
        to.streamReset(a.streamId, a.code);
        break;
      case 'stopSending':
        to.stopSending(a.streamId, a.code);
        break;
      case 'close':
        to.transportClosed(a.code, a.reason);
        break;
      default:
        break;
    }
  }
  return d;
}

// ---- setup and the Appendix B trace ----------------------------------------------------------

test('Appendix B: control streams and SETTINGS bytes of both sides', () => {
  const c = drain(new H3Connection({ role: 'client' }));
  assert.deepEqual(c.actions[0], { kind: 'openStream', streamId: 2, uni: true });
  assert.equal(writes(c.actions).get(2), '00' + '0406010007003301');
  const s = drain(new H3Connection({ role: 'server' }));
  assert.deepEqual(s.actions[0], { kind: 'openStream', streamId: 3, uni: true });
  assert.equal(writes(s.actions).get(3), '00' + '04080100070008013301');
});

test('Appendix B: the whole client trace, byte for byte', () => {
  const c = new H3Connection({ role: 'client', huffman: 'never' });
  const s = new H3Connection({ role: 'server', huffman: 'never' });
  assert.throws(
    () => c.request(CONNECT_IP),
    H3UsageError,
    "no CONNECT before the server's SETTINGS",
  );
  assert.equal(c.canConnect(), false);
  deliver(c, s);
  deliver(s, c);
  assert.equal(c.canConnect(), true);
  assert.equal(c.canSendDatagrams(), true);
  assert.deepEqual(kinds(drain(c)), ['settings']);
  assert.equal(drain(s).events[0].kind, 'settings');

  const id = c.request(CONNECT_IP);
  assert.equal(id, 0);
  const req = deliver(c, s);
  const block = toHex(encodeFieldSection(CONNECT_IP, { huffman: 'never' }));
  assert.equal(writes(req.actions).get(0), '01405f' + block);
  assert.ok(!req.actions.some((a) => a.kind === 'write' && a.fin), 'no FIN after the request');
  const ev = drain(s).events;
  assert.deepEqual(ev, [{ kind: 'request', streamId: 0, headers: CONNECT_IP }]);

  s.respond(0, OK);
  s.sendData(0, hex('01 07 00 04 0a 01 01 02 20'));
  s.sendData(0, hex('03 0a 04 00 00 00 00 ff ff ff ff 00'));
  const resp = deliver(s, c);
  assert.equal(
    writes(resp.actions).get(0),
    '0118' +
      '0000d92709' +
      ascii('capsule-protocol') +
      '02' +
      ascii('?1') +
      '0009010700040a01010220' +
      '000c030a0400000000ffffffff00',
  );
  const got = drain(c).events;
  assert.deepEqual(got[0], { kind: 'response', streamId: 0, status: 200, headers: OK });
  assert.deepEqual(
    got.slice(1).map((e) => (e.kind === 'data' ? toHex(e.data) : e.kind)),
    ['010700040a01010220', '030a0400000000ffffffff00'],
  );

  const packet = hex('00 45 00 00 14');
  assert.equal(c.sendDatagram(0, packet), true);
  const dg = drain(c).actions[0];
  assert.ok(dg.kind === 'datagram');
  assert.equal(toHex(dg.data), '00' + '0045000014');
  const target = s.receiveDatagram(dg.data);
  assert.deepEqual(target, { streamId: 0, offset: 1 });
});

test('a client in Cloudflare mode sends 0x276 and may CONNECT without ENABLE_CONNECT_PROTOCOL', () => {
  const c = new H3Connection({
    role: 'client',
    draftDatagramSetting: true,
    requirePeerConnectProtocol: false,
  });
  assert.equal(writes(drain(c).actions).get(2), '00' + '04090100070033014276' + '01');
  c.streamData(3, cat(Uint8Array.of(0), encodeSettingsFrame([[0x276, 1]])), false);
  assert.equal(c.canConnect(), true);
  assert.equal(c.canSendDatagrams(), true);
  assert.equal(c.request(CONNECT_IP), 0);
});

test('§10.1 item 3: a client refuses CONNECT when the server did not enable Extended CONNECT', () => {
  const c = new H3Connection({ role: 'client' });
  c.streamData(3, cat(Uint8Array.of(0), encodeSettingsFrame([[0x33, 1]])), false);
  assert.throws(() => c.request(CONNECT_IP), H3UsageError);
  assert.equal(c.request(GET), 0, 'a plain request is still allowed');
});

test('no datagrams before H3_DATAGRAM was received', () => {
  const c = new H3Connection({ role: 'client', requirePeerConnectProtocol: false });
  const id = c.request(CONNECT_IP);
  assert.equal(c.sendDatagram(id, hex('00')), false);
  c.streamData(3, cat(Uint8Array.of(0), encodeSettingsFrame([[8, 1]])), false);
  assert.equal(c.canSendDatagrams(), false);
  assert.equal(c.sendDatagram(id, hex('00')), false);
  assert.ok(!drain(c).actions.some((a) => a.kind === 'datagram'));
});

// ---- a peer that behaves like quic-go / quiche ---------------------------------------------------

test('§10.1 items 17–18: a quiche/quic-go-like client (Huffman everything, QPACK streams, GREASE) is accepted', () => {
  const s = new H3Connection({ role: 'server' });
  drain(s);
  const control = cat(
    Uint8Array.of(0),
    encodeFrame(
      FrameType.SETTINGS,
      encodeSettingsPayload([
        [1, 65536],
        [7, 100],
        [6, 16384],
        [0x33, 1],
        [0x1f * 7 + 0x21, 3],
        [2 ** 40 * 0x1f + 0x21, 0],
      ]),
    ),
    encodeFrame(0x1f * 3 + 0x21, hex('de ad')),
  );
  const request: HeaderList = [
    [':method', 'CONNECT'],
    [':protocol', 'connect-ip'],
    [':scheme', 'https'],
    [':authority', 'vpn.example:443'],
    [':path', '/vpn'],
    ['capsule-protocol', '?1'],
    ['connect-ip-version', '3'],
    ['user-agent', 'quic-go HTTP/3'],
  ];
  const headers = encodeFrame(
    FrameType.HEADERS,
    encodeFieldSection(request, { huffman: 'always' }),
  );
  const streams: Array<[number, Uint8Array]> = [
    [2, control],
    [6, hex('02 20')], // QPACK encoder stream, Set Dynamic Table Capacity 0
    [10, hex('03')], // QPACK decoder stream
    [14, hex('40 21 aa bb')], // GREASE stream type (non-minimal varint)
    [
      0,
      cat(
        encodeFrame(0x21, hex('00')),
        headers,
        encodeFrame(FrameType.DATA, hex('02 07 01 04 00 00 00 00 20')),
      ),
    ],
  ];
  for (const [id, bytes] of streams)
    for (const b of bytes) s.streamData(id, Uint8Array.of(b), false);
  const d = drain(s);
  assert.equal(closeCode(d), undefined);
  assert.deepEqual(kinds(d), ['settings', 'request', ...new Array(9).fill('data')]);
  const req = d.events[1];
  assert.ok(req.kind === 'request');
  assert.deepEqual(req.headers, request);
  assert.deepEqual(
    d.actions.filter((a) => a.kind === 'stopSending'),
    [{ kind: 'stopSending', streamId: 14, code: H3ErrorCode.STREAM_CREATION_ERROR }],
  );
});

test('our client against a quiche-like server: QPACK capacity offered, Huffman response without capsule-protocol', () => {
  const c = new H3Connection({ role: 'client' });
  c.streamData(
    3,
    cat(
      Uint8Array.of(0),
      encodeSettingsFrame([
        [1, 65536],
        [7, 100],
        [8, 1],
        [0x33, 1],
        [0x21, 0],
      ]),
    ),
    false,
  );
  c.streamData(3, encodeFrame(0x1f * 9 + 0x21, hex('01 02 03')), false); // GREASE frame
  c.streamData(7, hex('02'), false);
  c.streamData(11, hex('03'), false);
  c.streamData(15, hex('52 0d 00'), false); // GREASE stream type 0x1f * 148 + 0x21
  const id = c.request(CONNECT_IP);
  const sent = drain(c);
  assert.ok(
    toHex(
      writes(sent.actions).get(id) ? hex(writes(sent.actions).get(id)!) : new Uint8Array(),
    ).includes('0000cf'),
    'static-only block',
  );
  c.streamData(
    id,
    encodeFrame(
      FrameType.HEADERS,
      encodeFieldSection(
        [
          [':status', '200'],
          ['server', 'quiche'],
        ],
        { huffman: 'always' },
      ),
    ),
    false,
  );
  const d = drain(c);
  assert.equal(closeCode(d), undefined);
  assert.deepEqual(kinds(sent), ['settings']);
  assert.deepEqual(kinds(d), ['response']);
});

test('1xx interim responses are skipped; the final 2xx is reported', () => {
  const c = client();
  const id = c.request(CONNECT_IP);
  drain(c);
  c.streamData(id, cat(headersFrame([[':status', '103']]), headersFrame(OK)), false);
  const d = drain(c);
  assert.deepEqual(kinds(d), ['response']);
});

// ---- §10.2 rows: connection errors ------------------------------------------------------------

function feed(conn: H3Connection, id: number, bytes: Uint8Array, fin = false): Drained {
  conn.streamData(id, bytes, fin);
  return drain(conn);
}

test('§10.2: first control-stream frame is not SETTINGS → H3_MISSING_SETTINGS', () => {
  for (const first of [encodeIdFrame(FrameType.GOAWAY, 0), encodeFrame(0x21, hex(''))]) {
    const s = new H3Connection({ role: 'server' });
    assert.equal(closeCode(feed(s, 2, cat(hex('00'), first))), H3ErrorCode.MISSING_SETTINGS);
    assert.equal(s.closed, true);
  }
});

test('§10.2: second control stream, second QPACK encoder or decoder stream → H3_STREAM_CREATION_ERROR', () => {
  // server() already holds the client's control stream on stream 2
  assert.equal(closeCode(feed(server(), 6, hex('00'))), H3ErrorCode.STREAM_CREATION_ERROR);
  for (const type of ['02', '03']) {
    const s = server();
    assert.equal(closeCode(feed(s, 6, hex(type))), undefined);
    assert.equal(closeCode(feed(s, 10, hex(type))), H3ErrorCode.STREAM_CREATION_ERROR, type);
  }
});

test('§10.2: control, QPACK encoder or decoder stream closed or reset → H3_CLOSED_CRITICAL_STREAM', () => {
  for (const [id, type] of [
    [2, '00'],
    [6, '02'],
    [6, '03'],
  ] as const) {
    const fin = server();
    if (id !== 2) feed(fin, id, hex(type));
    assert.equal(
      closeCode(feed(fin, id, hex(''), true)),
      H3ErrorCode.CLOSED_CRITICAL_STREAM,
      `FIN ${type}`,
    );
    const rst = server();
    if (id !== 2) feed(rst, id, hex(type));
    rst.streamReset(id, 0x100);
    assert.equal(closeCode(drain(rst)), H3ErrorCode.CLOSED_CRITICAL_STREAM, `reset ${type}`);
  }
  const stop = server();
  stop.stopSending(3, 0x100); // our own control stream
  assert.equal(closeCode(drain(stop)), H3ErrorCode.CLOSED_CRITICAL_STREAM);
});

test('§10.2: second SETTINGS → H3_FRAME_UNEXPECTED', () => {
  const s = server();
  assert.equal(closeCode(feed(s, 2, encodeSettingsFrame([]))), H3ErrorCode.FRAME_UNEXPECTED);
});

test('§10.2: DATA or HEADERS on the control stream → H3_FRAME_UNEXPECTED', () => {
  for (const frame of [encodeFrame(0, hex('00')), headersFrame(OK)]) {
    assert.equal(closeCode(feed(server(), 2, frame)), H3ErrorCode.FRAME_UNEXPECTED);
  }
});

test('§10.2: reserved frame types 0x02/0x06/0x08/0x09 on control and request streams → H3_FRAME_UNEXPECTED', () => {
  for (const t of [2, 6, 8, 9]) {
    assert.equal(
      closeCode(feed(server(), 2, encodeFrame(t, hex('')))),
      H3ErrorCode.FRAME_UNEXPECTED,
    );
    assert.equal(
      closeCode(feed(server(), 0, encodeFrame(t, hex('')))),
      H3ErrorCode.FRAME_UNEXPECTED,
    );
  }
});

test('§10.2: GOAWAY, SETTINGS, CANCEL_PUSH or MAX_PUSH_ID on a request stream → H3_FRAME_UNEXPECTED', () => {
  for (const frame of [
    encodeIdFrame(FrameType.GOAWAY, 0),
    encodeSettingsFrame([]),
    encodeIdFrame(FrameType.CANCEL_PUSH, 0),
    encodeIdFrame(FrameType.MAX_PUSH_ID, 0),
  ]) {
    const s = serverWithTunnel();
    assert.equal(closeCode(feed(s, 0, frame)), H3ErrorCode.FRAME_UNEXPECTED);
  }
});

test('PUSH_PROMISE: at the client → H3_ID_ERROR (no MAX_PUSH_ID sent); from a client → H3_FRAME_UNEXPECTED', () => {
  const c = client();
  const id = c.request(CONNECT_IP);
  assert.equal(
    closeCode(feed(c, id, encodeFrame(FrameType.PUSH_PROMISE, hex('00 00 00')))),
    H3ErrorCode.ID_ERROR,
  );
  assert.equal(
    closeCode(feed(server(), 0, encodeFrame(FrameType.PUSH_PROMISE, hex('00 00 00')))),
    H3ErrorCode.FRAME_UNEXPECTED,
  );
});

test('CANCEL_PUSH → H3_ID_ERROR; MAX_PUSH_ID at the client → H3_FRAME_UNEXPECTED; decreasing MAX_PUSH_ID → H3_ID_ERROR', () => {
  assert.equal(
    closeCode(feed(server(), 2, encodeIdFrame(FrameType.CANCEL_PUSH, 0))),
    H3ErrorCode.ID_ERROR,
  );
  assert.equal(
    closeCode(feed(client(), 3, encodeIdFrame(FrameType.MAX_PUSH_ID, 0))),
    H3ErrorCode.FRAME_UNEXPECTED,
  );
  const s = server();
  assert.equal(closeCode(feed(s, 2, encodeIdFrame(FrameType.MAX_PUSH_ID, 5))), undefined);
  assert.equal(
    closeCode(feed(s, 2, encodeIdFrame(FrameType.MAX_PUSH_ID, 4))),
    H3ErrorCode.ID_ERROR,
  );
});

test('§10.2: frame payload longer or shorter than its fields → H3_FRAME_ERROR', () => {
  assert.equal(closeCode(feed(server(), 2, hex('07 02 00 00'))), H3ErrorCode.FRAME_ERROR);
  assert.equal(closeCode(feed(server(), 2, hex('07 00'))), H3ErrorCode.FRAME_ERROR);
  const s = new H3Connection({ role: 'server' });
  assert.equal(
    closeCode(feed(s, 2, hex('00 04 01 01'))),
    H3ErrorCode.FRAME_ERROR,
    'SETTINGS cut inside a setting',
  );
});

test('§10.2: frame truncated at FIN → H3_FRAME_ERROR', () => {
  const s = serverWithTunnel();
  assert.equal(closeCode(feed(s, 0, hex('00 05 01 02'), true)), H3ErrorCode.FRAME_ERROR);
});

test('§10.2: HTTP/2 settings, non-boolean H3_DATAGRAM / ENABLE_CONNECT_PROTOCOL, duplicates → H3_SETTINGS_ERROR', () => {
  for (const payload of [
    '00 01',
    '02 00',
    '03 00',
    '04 00',
    '05 00',
    '33 02',
    '08 02',
    '33 01 33 01',
  ]) {
    const s = new H3Connection({ role: 'server' });
    const frame = encodeFrame(FrameType.SETTINGS, hex(payload));
    assert.equal(closeCode(feed(s, 2, cat(hex('00'), frame))), H3ErrorCode.SETTINGS_ERROR, payload);
  }
});

test('§10.2: H3_DATAGRAM=1 without QUIC max_datagram_frame_size → H3_SETTINGS_ERROR', () => {
  const s = new H3Connection({ role: 'server', quicDatagrams: false });
  assert.equal(closeCode(feed(s, 2, CLIENT_CONTROL)), H3ErrorCode.SETTINGS_ERROR);
});

test('§10.2: GOAWAY ID increases → H3_ID_ERROR; server GOAWAY not a multiple of 4 → H3_ID_ERROR', () => {
  const c = client();
  let d = feed(c, 3, encodeIdFrame(FrameType.GOAWAY, 8));
  assert.deepEqual(d.events, [{ kind: 'goaway', id: 8 }]);
  assert.equal(closeCode(feed(c, 3, encodeIdFrame(FrameType.GOAWAY, 12))), H3ErrorCode.ID_ERROR);
  assert.equal(
    closeCode(feed(client(), 3, encodeIdFrame(FrameType.GOAWAY, 6))),
    H3ErrorCode.ID_ERROR,
  );
  const s = server();
  d = feed(s, 2, encodeIdFrame(FrameType.GOAWAY, 3)); // client GOAWAY carries a push ID: any value
  assert.equal(closeCode(d), undefined);
  assert.equal(closeCode(feed(s, 2, encodeIdFrame(FrameType.GOAWAY, 4))), H3ErrorCode.ID_ERROR);
});

test('§10.2: server-initiated bidi stream at the client → H3_STREAM_CREATION_ERROR', () => {
  assert.equal(closeCode(feed(client(), 1, hex('01 00'))), H3ErrorCode.STREAM_CREATION_ERROR);
});

test('§10.2: client push stream at the server → H3_STREAM_CREATION_ERROR; push stream at our client → H3_ID_ERROR', () => {
  assert.equal(closeCode(feed(server(), 6, hex('01'))), H3ErrorCode.STREAM_CREATION_ERROR);
  assert.equal(closeCode(feed(client(), 7, hex('01 00'))), H3ErrorCode.ID_ERROR);
});

test('§10.2: DATA before HEADERS → H3_FRAME_UNEXPECTED (connection)', () => {
  assert.equal(
    closeCode(feed(server(), 0, encodeFrame(0, hex('00')))),
    H3ErrorCode.FRAME_UNEXPECTED,
  );
  const c = client();
  const id = c.request(CONNECT_IP);
  assert.equal(closeCode(feed(c, id, encodeFrame(0, hex('00')))), H3ErrorCode.FRAME_UNEXPECTED);
});

test('§10.2: a known non-DATA frame after the CONNECT head → H3_FRAME_UNEXPECTED (both sides)', () => {
  assert.equal(
    closeCode(feed(serverWithTunnel(), 0, headersFrame([['x', 'y']]))),
    H3ErrorCode.FRAME_UNEXPECTED,
  );
  const c = client();
  const id = c.request(CONNECT_IP);
  feed(c, id, headersFrame(OK));
  assert.equal(closeCode(feed(c, id, headersFrame([['x', 'y']]))), H3ErrorCode.FRAME_UNEXPECTED);
});

test('§10.2: QPACK errors in a request HEADERS → connection error QPACK_DECOMPRESSION_FAILED', () => {
  for (const block of [
    '01 00 d9',
    '00 80 d9',
    '00 00 80',
    '00 00 10',
    '00 00 ff 24',
    '00 00 51 82 1f ff',
    '00 00 51 05 61',
  ]) {
    const frame = encodeFrame(FrameType.HEADERS, hex(block));
    assert.equal(
      closeCode(feed(server(), 0, frame)),
      H3ErrorCode.QPACK_DECOMPRESSION_FAILED,
      block,
    );
  }
});

test('§10.2 (strict mode): encoder instructions → QPACK_ENCODER_STREAM_ERROR; Section Ack / ICI → QPACK_DECODER_STREAM_ERROR', () => {
  assert.equal(
    closeCode(feed(server({ strictQpackStreams: true }), 6, hex('02 3f e1 1f'))),
    H3ErrorCode.QPACK_ENCODER_STREAM_ERROR,
  );
  assert.equal(
    closeCode(feed(server({ strictQpackStreams: true }), 6, hex('02 c0 01 61'))),
    H3ErrorCode.QPACK_ENCODER_STREAM_ERROR,
  );
  assert.equal(
    closeCode(feed(server({ strictQpackStreams: true }), 6, hex('03 80'))),
    H3ErrorCode.QPACK_DECODER_STREAM_ERROR,
  );
  assert.equal(
    closeCode(feed(server({ strictQpackStreams: true }), 6, hex('03 01'))),
    H3ErrorCode.QPACK_DECODER_STREAM_ERROR,
  );
  assert.equal(
    closeCode(feed(server({ strictQpackStreams: true }), 6, hex('03 41'))),
    undefined,
    'Stream Cancellation',
  );
  assert.equal(
    closeCode(feed(server(), 6, hex('02 3f e1 1f c0 01'))),
    undefined,
    'lenient mode drains',
  );
});

test('§10.2: unknown and GREASE uni stream types → STOP_SENDING H3_STREAM_CREATION_ERROR, never a connection error', () => {
  for (const type of ['04', '21', '40 40', 'ff ff ff ff ff ff ff ff']) {
    const s = server();
    const d = feed(s, 6, cat(hex(type), hex('01 02 03')));
    assert.equal(closeCode(d), undefined);
    assert.deepEqual(d.actions, [
      { kind: 'stopSending', streamId: 6, code: H3ErrorCode.STREAM_CREATION_ERROR },
    ]);
    assert.equal(closeCode(feed(s, 6, hex('04 05'), true)), undefined);
  }
});

test('a uni stream reset before its type byte is tolerated', () => {
  const s = server();
  s.streamReset(6, 0x10c);
  const d = drain(s);
  assert.deepEqual(d.actions, []);
  assert.equal(s.closed, false);
});

test('a huge HEADERS on a request stream → stream error H3_EXCESSIVE_LOAD; huge SETTINGS → connection error', () => {
  const s = server({ maxHeadersFrameSize: 1000 });
  const d = feed(s, 0, hex('01 80 10 00 00'));
  assert.equal(closeCode(d), undefined);
  assert.deepEqual(d.actions, [
    { kind: 'resetStream', streamId: 0, code: H3ErrorCode.EXCESSIVE_LOAD },
    { kind: 'stopSending', streamId: 0, code: H3ErrorCode.EXCESSIVE_LOAD },
  ]);
  assert.deepEqual(feed(s, 0, new Uint8Array(5000)).actions, [], 'late bytes are ignored');
  const big = new H3Connection({ role: 'server', maxControlFrameSize: 100 });
  assert.equal(closeCode(feed(big, 2, hex('00 04 80 01 00 00'))), H3ErrorCode.EXCESSIVE_LOAD);
});

test('a field section over our advertised SETTINGS_MAX_FIELD_SECTION_SIZE → stream error H3_EXCESSIVE_LOAD', () => {
  const s = server({ maxFieldSectionSize: 400 });
  const d = feed(s, 0, headersFrame([...CONNECT_IP, ['x-pad', 'a'.repeat(100)]]));
  assert.equal(closeCode(d), undefined);
  assert.deepEqual(d.actions[0], {
    kind: 'resetStream',
    streamId: 0,
    code: H3ErrorCode.EXCESSIVE_LOAD,
  });
  assert.deepEqual(kinds(feed(s, 4, headersFrame(CONNECT_IP))), ['request']);
});

test("our field sections respect the peer's SETTINGS_MAX_FIELD_SECTION_SIZE", () => {
  const c = new H3Connection({ role: 'client' });
  c.streamData(
    3,
    cat(
      hex('00'),
      encodeSettingsFrame([
        [6, 100],
        [8, 1],
        [0x33, 1],
      ]),
    ),
    false,
  );
  assert.throws(() => c.request(CONNECT_IP), H3UsageError);
});

// ---- §10.2 rows: malformed messages (stream errors) ------------------------------------------

test('§10.2: malformed request → RESET_STREAM + STOP_SENDING H3_MESSAGE_ERROR, never surfaced', () => {
  const cases: HeaderList[] = [
    [...CONNECT_IP, ['Upper', 'x']],
    [
      [':method', 'GET'],
      [':protocol', 'connect-ip'],
      [':scheme', 'https'],
      [':authority', 'a'],
      [':path', '/'],
    ],
    CONNECT_IP.filter(([n]) => n !== ':authority'),
    [...CONNECT_IP, ['connection', 'close']],
  ];
  for (const fields of cases) {
    const s = server();
    const d = feed(s, 0, headersFrame(fields));
    assert.equal(closeCode(d), undefined);
    assert.deepEqual(d.events, []);
    assert.deepEqual(d.actions, [
      { kind: 'resetStream', streamId: 0, code: H3ErrorCode.MESSAGE_ERROR },
      { kind: 'stopSending', streamId: 0, code: H3ErrorCode.MESSAGE_ERROR },
    ]);
  }
});

test('§10.2: Extended CONNECT while we did not enable it → H3_MESSAGE_ERROR', () => {
  const s = new H3Connection({ role: 'server', enableConnectProtocol: false });
  assert.equal(writes(drain(s).actions).get(3), '00' + '0406010007003301');
  s.streamData(2, CLIENT_CONTROL, false);
  drain(s);
  const d = feed(s, 0, headersFrame(CONNECT_IP));
  assert.equal(d.actions[0].kind === 'resetStream' && d.actions[0].code, H3ErrorCode.MESSAGE_ERROR);
});

test('§10.2: response 101 or missing :status at the client → abort H3_MESSAGE_ERROR', () => {
  for (const fields of [[[':status', '101']], [['capsule-protocol', '?1']]] as HeaderList[]) {
    const c = client();
    const id = c.request(CONNECT_IP);
    drain(c);
    const d = feed(c, id, headersFrame(fields));
    assert.deepEqual(d.events, [
      { kind: 'aborted', streamId: id, code: H3ErrorCode.MESSAGE_ERROR },
    ]);
    assert.equal(d.actions[0].kind, 'resetStream');
  }
});

test('request stream finished before its HEADERS → H3_REQUEST_INCOMPLETE', () => {
  const d = feed(server(), 0, hex('01 05 00'), false);
  assert.deepEqual(d.actions, []);
  const s = server();
  const e = feed(s, 0, new Uint8Array(0), true);
  assert.deepEqual(e.actions[0], {
    kind: 'resetStream',
    streamId: 0,
    code: H3ErrorCode.REQUEST_INCOMPLETE,
  });
});

// ---- §10.2 rows: HTTP datagrams -----------------------------------------------------------------

test('§10.2: datagram too short for a QSID → H3_DATAGRAM_ERROR', () => {
  const s = serverWithTunnel();
  assert.equal(s.receiveDatagram(new Uint8Array(0)), null);
  assert.equal(closeCode(drain(s)), H3ErrorCode.DATAGRAM_ERROR);
  const t = serverWithTunnel();
  assert.equal(t.receiveDatagram(hex('40')), null);
  assert.equal(closeCode(drain(t)), H3ErrorCode.DATAGRAM_ERROR);
});

test('§10.2: QSID > 2^60-1 → H3_DATAGRAM_ERROR; 2^60-1 itself is legal (dropped: no such stream)', () => {
  const s = serverWithTunnel();
  assert.equal(s.receiveDatagram(hex('cf ff ff ff ff ff ff ff 00')), null);
  assert.equal(closeCode(drain(s)), undefined);
  assert.equal(s.receiveDatagram(hex('d0 00 00 00 00 00 00 00 00')), null);
  assert.equal(closeCode(drain(s)), H3ErrorCode.DATAGRAM_ERROR);
});

test('§10.2: QSID beyond the stream limit → H3_ID_ERROR', () => {
  const s = serverWithTunnel({ maxPeerBidiStreams: 100 });
  assert.equal(s.receiveDatagram(hex('40 63 00')), null); // stream 396: within the limit, unknown
  assert.equal(closeCode(drain(s)), undefined);
  assert.equal(s.receiveDatagram(hex('40 64 00')), null);
  assert.equal(closeCode(drain(s)), H3ErrorCode.ID_ERROR);
});

test('§10.2: datagram on a non-CONNECT-IP request stream → abort that stream with H3_DATAGRAM_ERROR', () => {
  const s = server();
  feed(s, 0, headersFrame(GET));
  assert.equal(s.receiveDatagram(hex('00 00 45')), null);
  const d = drain(s);
  assert.equal(closeCode(d), undefined);
  assert.deepEqual(d.actions, [
    { kind: 'resetStream', streamId: 0, code: H3ErrorCode.DATAGRAM_ERROR },
    { kind: 'stopSending', streamId: 0, code: H3ErrorCode.DATAGRAM_ERROR },
  ]);
  assert.deepEqual(d.events, [{ kind: 'aborted', streamId: 0, code: H3ErrorCode.DATAGRAM_ERROR }]);
});

test('§10.2: datagram for a stream not yet open or already closed → dropped silently', () => {
  const s = serverWithTunnel();
  assert.equal(s.receiveDatagram(hex('01 00 45')), null); // stream 4: not open
  s.streamReset(0, 0x10c);
  drain(s);
  assert.equal(s.receiveDatagram(hex('00 00 45')), null); // stream 0: receive side closed
  const d = drain(s);
  assert.deepEqual(d.actions, []);
  assert.equal(s.closed, false);
});

test('prepareDatagram writes the QSID into caller headroom, or refuses with -1', () => {
  const c = client();
  const buf = new Uint8Array(16);
  assert.equal(c.prepareDatagram(0, buf, 3), -1, 'no such stream yet');
  c.request(CONNECT_IP);
  c.request(CONNECT_IP);
  assert.equal(c.prepareDatagram(4, buf, 3), 4);
  assert.equal(buf[3], 0x01);
  c.resetStream(4, H3ErrorCode.REQUEST_CANCELLED);
  assert.equal(c.prepareDatagram(4, buf, 3), -1, 'send side closed');
  assert.ok(!drain(c).actions.some((a) => a.kind === 'datagram'), 'nothing queued');
});

test('receiveDatagram reuses one target object (no allocation per packet)', () => {
  const s = serverWithTunnel();
  const a = s.receiveDatagram(hex('00 00 45'));
  const b = s.receiveDatagram(hex('40 00 00 60'));
  assert.ok(a !== null && a === b);
  assert.deepEqual(b, { streamId: 0, offset: 2 });
});

// ---- lifecycle ------------------------------------------------------------------------------

test('tunnel teardown: FIN in both directions, then the stream is forgotten', () => {
  const c = client();
  const s = server();
  const id = c.request(CONNECT_IP);
  deliver(c, s);
  s.respond(id, OK);
  deliver(s, c);
  drain(c);
  drain(s);
  c.endStream(id);
  deliver(c, s);
  assert.deepEqual(drain(s).events, [{ kind: 'end', streamId: id }]);
  s.endStream(id);
  deliver(s, c);
  assert.deepEqual(drain(c).events, [{ kind: 'end', streamId: id }]);
  assert.throws(() => s.sendData(id, hex('00')), H3UsageError);
  assert.equal(s.receiveDatagram(hex('00 00')), null);
  assert.deepEqual(
    feed(s, id, hex('00 01 00')).actions,
    [],
    'late bytes on a finished stream are ignored',
  );
});

test('§10.1 item 19: reset with any code is reported as reset; STOP_SENDING resets our side', () => {
  for (const code of [0x100, 0x101, 0x107, 0x10c, 0x12345]) {
    const s = serverWithTunnel();
    s.streamReset(0, code);
    assert.deepEqual(drain(s).events, [{ kind: 'reset', streamId: 0, code }]);
  }
  const s = serverWithTunnel();
  s.stopSending(0, 0x10c);
  const d = drain(s);
  assert.deepEqual(d.actions, [{ kind: 'resetStream', streamId: 0, code: 0x10c }]);
  assert.deepEqual(d.events, [{ kind: 'stopSending', streamId: 0, code: 0x10c }]);
  assert.throws(() => s.sendData(0, hex('00')), H3UsageError);
});

test('a request stream reset or stopped before its HEADERS completed is dropped whole', () => {
  const s = server();
  feed(s, 0, hex('01 05 00'));
  s.streamReset(0, 0x10c);
  let d = drain(s);
  assert.deepEqual(d.events, []);
  assert.deepEqual(d.actions, [
    { kind: 'resetStream', streamId: 0, code: H3ErrorCode.REQUEST_CANCELLED },
  ]);
  assert.deepEqual(feed(s, 0, headersFrame(CONNECT_IP)).events, [], 'forgotten');
  feed(s, 4, hex('01 05 00'));
  s.stopSending(4, 0x10c);
  d = drain(s);
  assert.deepEqual(d.actions, [
    { kind: 'resetStream', streamId: 4, code: 0x10c },
    { kind: 'stopSending', streamId: 4, code: 0x10c },
  ]);
  assert.deepEqual(feed(s, 4, headersFrame(CONNECT_IP)).events, []);
});

test('resetStream sends RESET_STREAM and STOP_SENDING', () => {
  const c = client();
  const id = c.request(CONNECT_IP);
  drain(c);
  c.resetStream(id, H3ErrorCode.REQUEST_CANCELLED);
  assert.deepEqual(drain(c).actions, [
    { kind: 'resetStream', streamId: id, code: H3ErrorCode.REQUEST_CANCELLED },
    { kind: 'stopSending', streamId: id, code: H3ErrorCode.REQUEST_CANCELLED },
  ]);
});

test('§10.1 item 20: graceful shutdown with two GOAWAYs, then close with H3_NO_ERROR', () => {
  const c = client();
  const s = server();
  const id = c.request(CONNECT_IP);
  deliver(c, s);
  drain(s);
  s.goaway(GOAWAY_MAX_ID);
  s.goaway();
  const g = deliver(s, c);
  assert.equal(writes(g.actions).get(3), '0708fffffffffffffffc' + '070104');
  assert.deepEqual(drain(c).events, [
    { kind: 'goaway', id: 2 ** 62 },
    { kind: 'goaway', id: 4 },
  ]);
  assert.throws(() => c.request(CONNECT_IP), H3UsageError, 'no new tunnels after GOAWAY');
  assert.equal(c.canConnect(), false);
  assert.throws(() => s.goaway(8), H3UsageError, 'GOAWAY must not increase');
  // A request that raced the GOAWAY is rejected without processing.
  const late = feed(s, 4, headersFrame(CONNECT_IP));
  assert.deepEqual(late.actions, [
    { kind: 'resetStream', streamId: 4, code: H3ErrorCode.REQUEST_REJECTED },
    { kind: 'stopSending', streamId: 4, code: H3ErrorCode.REQUEST_REJECTED },
  ]);
  // The existing tunnel keeps working.
  s.respond(id, OK);
  s.sendData(id, hex('01 00'));
  deliver(s, c);
  assert.deepEqual(kinds(drain(c)), ['response', 'data']);
  s.close();
  deliver(s, c);
  assert.deepEqual(drain(c).events, [
    { kind: 'closed', code: H3ErrorCode.NO_ERROR, reason: '', local: false },
  ]);
  assert.equal(s.closed, true);
  s.sendData(id, hex('00')); // no-ops once closed
  s.endStream(id);
  assert.equal(s.pollAction(), undefined);
});

test('requests at or above a received GOAWAY ID are aborted with H3_REQUEST_REJECTED', () => {
  const c = client();
  const a = c.request(CONNECT_IP);
  const b = c.request(CONNECT_IP);
  drain(c);
  const d = feed(c, 3, encodeIdFrame(FrameType.GOAWAY, b));
  assert.deepEqual(d.events, [
    { kind: 'goaway', id: b },
    { kind: 'aborted', streamId: b, code: H3ErrorCode.REQUEST_REJECTED },
  ]);
  assert.deepEqual(d.actions, [
    { kind: 'resetStream', streamId: b, code: H3ErrorCode.REQUEST_REJECTED },
    { kind: 'stopSending', streamId: b, code: H3ErrorCode.REQUEST_REJECTED },
  ]);
  c.sendData(a, hex('00')); // the tunnel below the ID carries on
  assert.equal(drain(c).actions.length, 1);
});

test('client GOAWAY carries push ID 0', () => {
  const c = client();
  c.goaway();
  assert.equal(writes(drain(c).actions).get(2), '070100');
});

test('opening QPACK streams and GREASE: the peer accepts them', () => {
  const c = new H3Connection({ role: 'client', openQpackStreams: true, grease: true });
  const s = new H3Connection({
    role: 'server',
    openQpackStreams: true,
    grease: true,
    strictQpackStreams: true,
  });
  const d = deliver(c, s);
  assert.deepEqual(
    d.actions
      .filter((a) => a.kind === 'openStream')
      .map((a) => a.kind === 'openStream' && a.streamId),
    [2, 6, 10],
  );
  deliver(s, c);
  assert.equal(c.closed || s.closed, false);
  assert.deepEqual(kinds(drain(c)), ['settings']);
  assert.deepEqual(kinds(drain(s)), ['settings']);
});

test('property: any chunking of both directions delivers the same events', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 40 }),
      fc.uint8Array({ maxLength: 300 }),
      (chunk, payload) => {
        const c = new H3Connection({ role: 'client' });
        const s = new H3Connection({ role: 'server' });
        deliver(c, s, chunk);
        deliver(s, c, chunk);
        const id = c.request(CONNECT_IP);
        c.sendData(id, payload);
        deliver(c, s, chunk);
        const ev = drain(s).events;
        assert.equal(ev[0].kind, 'settings');
        assert.deepEqual(ev[1], { kind: 'request', streamId: id, headers: CONNECT_IP });
        const data = ev
          .slice(2)
          .map((e) => (e.kind === 'data' ? toHex(e.data) : e.kind))
          .join('');
        assert.equal(data, toHex(payload));
      },
    ),
    { numRuns: 100 },
  );
});
