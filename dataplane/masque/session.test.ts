// Client and proxy sessions driven against each other and against scripted peers, with no HTTP/3
// underneath: stream bytes, FINs, resets and datagrams are passed by a small in-memory pump.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIp, parsePrefix, type IpPrefix } from './address.js';
import { CapsuleParser, encodeCapsule } from './capsule.js';
import { ClientSession, type ClientSessionOptions } from './client-session.js';
import { H3_EXCESSIVE_LOAD, H3_MESSAGE_ERROR, H3_REQUEST_CANCELLED } from './errors.js';
import { hex, ipv4Packet, ipv6Packet, referenceChecksum, toHex } from './fixtures.js';
import type { HeaderList } from './request.js';
import { fullRange, type IpRange } from './route.js';
import { ServerSession, type Authorization, type ServerSessionOptions } from './server-session.js';
import { parseTemplate } from './template.js';
import { SendResult, type TunnelClosed, type TunnelOutput } from './tunnel.js';

const pfx = (s: string): IpPrefix => parsePrefix(s) as IpPrefix;
const ip = (s: string): Uint8Array => parseIp(s) as Uint8Array;

/** Records every output of one side. */
class Recorder implements TunnelOutput {
  headers: HeaderList[] = [];
  data: Uint8Array[] = [];
  fin = false;
  resets: number[] = [];
  datagrams: Uint8Array[] = [];
  delivered: Uint8Array[] = [];
  closed: TunnelClosed[] = [];
  /** Forwarding hooks set when two sessions are wired together. */
  peer?: {
    headers(h: HeaderList): void;
    data(b: Uint8Array, fin: boolean): void;
    reset(code: number): void;
    datagram(b: Uint8Array): void;
  };
  sendHeaders(h: HeaderList): void {
    this.headers.push(h);
    this.peer?.headers(h);
  }
  sendData(bytes: Uint8Array, fin: boolean): void {
    if (bytes.length > 0) this.data.push(bytes.slice());
    if (fin) this.fin = true;
    this.peer?.data(bytes.slice(), fin);
  }
  resetStream(code: number): void {
    this.resets.push(code);
    this.peer?.reset(code);
  }
  sendDatagram(payload: Uint8Array, offset: number, length: number): void {
    const copy = payload.slice(offset, offset + length);
    this.datagrams.push(copy);
    this.peer?.datagram(copy);
  }
  deliverPacket(packet: Uint8Array, offset: number, length: number): void {
    this.delivered.push(packet.slice(offset, offset + length));
  }
  get allData(): string {
    return this.data.map(toHex).join('');
  }
}

const section37: HeaderList = [
  [':method', 'CONNECT'],
  [':scheme', 'https'],
  [':authority', 'proxy.example.org'],
  [':path', '/.well-known/masque/ip/*/*/'],
  [':protocol', 'connect-ip'],
  ['capsule-protocol', '?1'],
];

const grant =
  (addresses: string[], routes: IpRange[] = [fullRange(4)]): (() => Promise<Authorization>) =>
  async () => ({ ok: true, addresses: addresses.map(pfx), routes });

function server(opts: Partial<ServerSessionOptions> = {}): { s: ServerSession; out: Recorder } {
  const out = new Recorder();
  const s = new ServerSession({
    output: out,
    events: { onClosed: (c) => out.closed.push(c) },
    request: {
      authorities: ['proxy.example.org'],
      templates: [parseTemplate('/vpn')],
      extendedConnectEnabled: true,
    },
    authorize: grant(['10.1.1.2/32']),
    now: () => 0,
    ...opts,
  });
  return { s, out };
}

function client(opts: Partial<ClientSessionOptions> = {}): { c: ClientSession; out: Recorder } {
  const out = new Recorder();
  const c = new ClientSession({
    output: out,
    events: { onClosed: (x) => out.closed.push(x) },
    template: parseTemplate('https://proxy.example.org/.well-known/masque/ip/{target}/{ipproto}/'),
    streamId: 0,
    now: () => 0,
    ...opts,
  });
  return { c, out };
}

/** A client and a proxy wired back to back; returns once the tunnel is open. */
async function connected(
  sopts: Partial<ServerSessionOptions> = {},
  copts: Partial<ClientSessionOptions> = {},
): Promise<{ c: ClientSession; s: ServerSession; cout: Recorder; sout: Recorder }> {
  const { s, out: sout } = server(sopts);
  const { c, out: cout } = client(copts);
  let pending: Promise<void> | undefined;
  cout.peer = {
    headers: (h) => (pending = s.onRequestHeaders(h)),
    data: (b, fin) => (b.length && s.onData(b), fin && s.onFin()),
    reset: (code) => s.onReset(code),
    datagram: (b) => s.receiveDatagram(b, 0, b.length),
  };
  sout.peer = {
    headers: (h) => c.onResponseHeaders(h, 0),
    data: (b, fin) => (b.length && c.onData(b), fin && c.onFin()),
    reset: (code) => c.onReset(code),
    datagram: (b) => c.receiveDatagram(b, 0, b.length),
  };
  c.start();
  await pending;
  return { c, s, cout, sout };
}

// ---- proxy ---------------------------------------------------------------------------------

test('Appendix B (proxy side): 200 + capsule-protocol, then ADDRESS_ASSIGN 10.1.1.2/32 and ROUTE_ADV bytes', async () => {
  const { s, out } = server();
  await s.onRequestHeaders(section37);
  assert.deepEqual(out.headers, [
    [
      [':status', '200'],
      ['capsule-protocol', '?1'],
    ],
  ]);
  assert.equal(
    out.allData,
    toHex(hex('01 07 00 04 0a 01 01 02 20' + '03 0a 04 00 00 00 00 ff ff ff ff 00')),
  );
  assert.equal(s.state, 'open');
  assert.equal(out.fin, false, 'no FIN after the response');
});

test('§10.1 item 8: unsolicited ADDRESS_ASSIGN holds an IPv4 /32 plus IPv6 when configured; routes normalised', async () => {
  const { s, out } = server({
    authorize: grant(
      ['10.1.1.7/32', '2001:db8::7/128'],
      [
        fullRange(6),
        { ...fullRange(4), end: hex('7fffffff') },
        { ...fullRange(4), start: hex('80000000') },
      ],
    ),
  });
  await s.onRequestHeaders(section37);
  const expected =
    toHex(
      encodeCapsule({
        kind: 'address-assign',
        addresses: [
          { requestId: 0, prefix: pfx('10.1.1.7/32') },
          { requestId: 0, prefix: pfx('2001:db8::7/128') },
        ],
      }),
    ) + toHex(encodeCapsule({ kind: 'route-advertisement', ranges: [fullRange(4), fullRange(6)] }));
  assert.equal(out.allData, expected);
});

test('§10.1 item 7: literal operator path /vpn and quiche-style request without capsule-protocol open a tunnel', async () => {
  const quiche: HeaderList = [
    ...section37.filter(([n]) => n !== 'capsule-protocol'),
    ['connect-ip-version', '3'],
  ];
  const a = server();
  await a.s.onRequestHeaders(quiche);
  assert.equal(a.s.state, 'open');
  assert.deepEqual(
    a.out.headers[0],
    [
      [':status', '200'],
      ['capsule-protocol', '?1'],
    ],
    'always sent on 2xx',
  );
  const b = server();
  await b.s.onRequestHeaders(section37.map(([n, v]) => [n, n === ':path' ? '/vpn' : v]));
  assert.equal(b.s.state, 'open');
});

test('proxy rejections: 404 + FIN, malformed 400 + reset H3_MESSAGE_ERROR, 403/401/503 from the hook, 501', async () => {
  const path = server();
  await path.s.onRequestHeaders(section37.map(([n, v]) => [n, n === ':path' ? '/nope' : v]));
  assert.equal(path.out.headers[0][0][1], '404');
  assert.equal(path.out.fin, true);
  assert.deepEqual(path.out.resets, []);
  assert.equal(path.s.state, 'closed');

  const bad = server();
  await bad.s.onRequestHeaders([...section37, ['content-length', '0']]);
  assert.equal(bad.out.headers[0][0][1], '400');
  assert.deepEqual(bad.out.resets, [H3_MESSAGE_ERROR]);

  const proto = server();
  await proto.s.onRequestHeaders(
    section37.map(([n, v]) => [n, n === ':protocol' ? 'connect-udp' : v]),
  );
  assert.equal(proto.out.headers[0][0][1], '501');

  for (const status of [401, 403, 503] as const) {
    const denied = server({ authorize: async () => ({ ok: false, status, reason: 'no' }) });
    await denied.s.onRequestHeaders(section37);
    assert.equal(denied.out.headers[0][0][1], String(status));
    assert.match(denied.out.headers[0][1][1], /^masque-vpn; error=/);
    assert.equal(denied.out.fin, true);
    assert.deepEqual(
      denied.out.closed.map((c) => c.how),
      ['rejected'],
    );
  }
  const throws = server({ authorize: async () => Promise.reject(new Error('control plane down')) });
  await throws.s.onRequestHeaders(section37);
  assert.equal(throws.out.headers[0][0][1], '503');
  const empty = server({ authorize: grant([]) });
  await empty.s.onRequestHeaders(section37);
  assert.equal(empty.out.headers[0][0][1], '503', 'no address available');
  assert.ok(empty.out.headers[0].some(([n, v]) => n === 'retry-after' && v === '30'));
  const hinted = server({
    authorize: async () => ({ ok: false, status: 503, reason: 'down', retryAfterSeconds: 5 }),
  });
  await hinted.s.onRequestHeaders(section37);
  assert.deepEqual(
    hinted.out.headers[0].filter(([n]) => n === 'retry-after'),
    [['retry-after', '5']],
  );
});

test('a client reset during authorisation: no response is sent afterwards', async () => {
  let release: (a: Authorization) => void = () => {};
  const { s, out } = server({ authorize: () => new Promise((r) => (release = r)) });
  const done = s.onRequestHeaders(section37);
  s.onReset(H3_REQUEST_CANCELLED);
  release({ ok: true, addresses: [pfx('10.1.1.2/32')], routes: [] });
  await done;
  assert.deepEqual(out.headers, []);
  assert.equal(s.state, 'closed');
});

test('§10.1 item 9: ADDRESS_REQUEST answered with the same IDs inside a full-set ADDRESS_ASSIGN; rejections not repeated', async () => {
  const { s, out } = server();
  await s.onRequestHeaders(section37);
  out.data = [];
  s.onData(
    encodeCapsule({
      kind: 'address-request',
      addresses: [
        { requestId: 5, prefix: pfx('0.0.0.0/32') },
        { requestId: 6, prefix: pfx('::/128') },
      ],
    }),
  );
  assert.equal(
    out.allData,
    toHex(
      encodeCapsule({
        kind: 'address-assign',
        addresses: [
          { requestId: 5, prefix: pfx('10.1.1.2/32') },
          { requestId: 6, prefix: pfx('::/128') },
        ],
      }),
    ),
  );
  out.data = [];
  s.updateAddresses([pfx('10.1.1.2/32'), pfx('10.1.1.3/32')]);
  assert.equal(
    out.allData,
    toHex(
      encodeCapsule({
        kind: 'address-assign',
        addresses: [
          { requestId: 5, prefix: pfx('10.1.1.2/32') },
          { requestId: 0, prefix: pfx('10.1.1.3/32') },
        ],
      }),
    ),
    'later capsule: the full set, no rejection',
  );
});

test('ADDRESS_REQUEST arriving while the proxy is still authorising is answered once the tunnel opens', async () => {
  let release: (a: Authorization) => void = () => {};
  const { s, out } = server({ authorize: () => new Promise((r) => (release = r)) });
  const done = s.onRequestHeaders(section37);
  s.onData(hex('02 07 09 04 00 00 00 00 20'));
  release({ ok: true, addresses: [pfx('10.1.1.2/32')], routes: [fullRange(4)] });
  await done;
  assert.equal(out.data.length, 3, 'ADDRESS_ASSIGN, ROUTE_ADVERTISEMENT, then the answer');
  assert.equal(
    toHex(out.data[2]),
    toHex(
      encodeCapsule({
        kind: 'address-assign',
        addresses: [{ requestId: 9, prefix: pfx('10.1.1.2/32') }],
      }),
    ),
  );
});

test('§10.2 on the proxy stream: empty ADDRESS_REQUEST, request ID 0, bad routes, truncation → reset H3_MESSAGE_ERROR; oversize → H3_EXCESSIVE_LOAD', async () => {
  for (const [bytes, code] of [
    ['02 00', H3_MESSAGE_ERROR],
    ['02 07 00 04 00 00 00 00 20', H3_MESSAGE_ERROR],
    ['03 0a 04 0a 00 00 02 0a 00 00 01 00', H3_MESSAGE_ERROR],
    ['01 07 00 07 0a 01 01 02 20', H3_MESSAGE_ERROR],
    ['03 80 10 00 00', H3_EXCESSIVE_LOAD],
  ] as const) {
    const { s, out } = server();
    await s.onRequestHeaders(section37);
    s.onData(hex(bytes));
    assert.deepEqual(out.resets, [code], bytes);
    assert.equal(s.state, 'closed');
    assert.deepEqual(
      out.closed.map((c) => c.how),
      ['aborted'],
    );
  }
  const { s, out } = server();
  await s.onRequestHeaders(section37);
  s.onData(hex('01 07 00 04'));
  s.onFin();
  assert.deepEqual(out.resets, [H3_MESSAGE_ERROR], 'capsule truncated at FIN');
});

test('§10.1 item 11: unknown capsules from the peer are skipped; the tunnel stays up', async () => {
  const { s, out } = server();
  await s.onRequestHeaders(section37);
  s.onData(encodeCapsule({ kind: 'other', type: 0x1ace79ec, value: new Uint8Array(30) }));
  s.onData(encodeCapsule({ kind: 'other', type: 0x29 * 7 + 0x17, value: new Uint8Array(3) }));
  assert.deepEqual(out.resets, []);
  assert.equal(s.state, 'open');
});

// ---- client --------------------------------------------------------------------------------

test('client sends the §3.7 request, accepts 200 without capsule-protocol (quiche), ignores 1xx', () => {
  const { c, out } = client();
  c.start();
  assert.deepEqual(new Map(out.headers[0]), new Map(section37));
  c.onResponseHeaders([[':status', '100']], 0);
  assert.equal(c.state, 'requesting');
  c.onResponseHeaders([[':status', '200']], 0);
  assert.equal(c.state, 'open');
  assert.equal(c.status, 200);
});

test('client: non-2xx is failure (reset H3_REQUEST_CANCELLED); 204 is malformed (H3_MESSAGE_ERROR)', () => {
  const a = client();
  a.c.start();
  a.c.onResponseHeaders(
    [
      [':status', '403'],
      ['proxy-status', 'x; error=http_request_denied'],
    ],
    0,
  );
  assert.deepEqual(a.out.resets, [H3_REQUEST_CANCELLED]);
  assert.equal(a.c.state, 'closed');
  assert.match(a.out.closed[0].reason, /403/);
  const b = client();
  b.c.start();
  b.c.onResponseHeaders([[':status', '204']], 0);
  assert.deepEqual(b.out.resets, [H3_MESSAGE_ERROR]);
  const r = client();
  r.c.start();
  r.c.onResponseHeaders(
    [
      [':status', '301'],
      ['location', '/elsewhere'],
    ],
    0,
  );
  assert.equal(r.c.state, 'closed', '3xx not followed');
});

test('§10.1 item 10: every ADDRESS_ASSIGN and ROUTE_ADVERTISEMENT replaces the full set', () => {
  const seen: string[][] = [];
  const { c } = client({
    events: {
      onLocalAddresses: (a) =>
        seen.push(a.map((p) => `${p.version}:${toHex(p.address)}/${p.prefixLength}`)),
    },
  });
  c.start();
  c.onResponseHeaders([[':status', '200']], 0);
  c.onData(
    encodeCapsule({
      kind: 'address-assign',
      addresses: [
        { requestId: 0, prefix: pfx('10.1.1.2/32') },
        { requestId: 0, prefix: pfx('2001:db8::2/128') },
      ],
    }),
  );
  c.onData(
    encodeCapsule({
      kind: 'address-assign',
      addresses: [{ requestId: 0, prefix: pfx('10.1.1.9/32') }],
    }),
  );
  c.onData(
    encodeCapsule({
      kind: 'address-assign',
      addresses: [{ requestId: 77, prefix: pfx('0.0.0.0/32') }],
    }),
  );
  assert.deepEqual(seen, [
    ['4:0a010102/32', '6:20010db8000000000000000000000002/128'],
    ['4:0a010109/32'],
    [],
  ]);
  c.onData(encodeCapsule({ kind: 'route-advertisement', ranges: [fullRange(4), fullRange(6)] }));
  assert.equal(c.routesFromPeer.length, 2);
  c.onData(encodeCapsule({ kind: 'route-advertisement', ranges: [] }));
  assert.equal(c.routesFromPeer.length, 0, 'an empty capsule withdraws all routes');
});

test('§10.1 item 10: ADDRESS_REQUEST only after the grace period, never when disabled or already assigned', () => {
  const a = client({ addressGraceMs: 50 });
  a.c.start();
  a.c.onResponseHeaders([[':status', '200']], 1000);
  assert.equal(a.c.nextTimeout(), 1050);
  a.c.onTimeout(1049);
  assert.deepEqual(a.out.data, []);
  a.c.onTimeout(1050);
  // One capsule, two entries: any IPv4 /32 (ID 1) and any IPv6 /128 (ID 2).
  assert.equal(
    a.out.allData,
    toHex(hex('02 1a 01 04 00 00 00 00 20' + '02 06' + '00'.repeat(16) + '80')),
  );
  assert.equal(a.c.nextTimeout(), undefined, 'sent once');
  const never = client({ addressRequest: 'never' });
  never.c.start();
  never.c.onResponseHeaders([[':status', '200']], 0);
  assert.equal(never.c.nextTimeout(), undefined);
  never.c.onTimeout(1e9);
  assert.deepEqual(never.out.data, []);
  const assigned = client();
  assigned.c.start();
  assigned.c.onResponseHeaders([[':status', '200']], 0);
  assigned.c.onData(hex('01 07 00 04 0a 01 01 02 20'));
  assert.equal(assigned.c.nextTimeout(), undefined, 'quiche-style assignment with ID 0 counts');
});

test('client answers a proxy ADDRESS_REQUEST with rejections carrying the same IDs', () => {
  const { c, out } = client();
  c.start();
  c.onResponseHeaders([[':status', '200']], 0);
  c.onData(hex('02 07 03 04 00 00 00 00 20'));
  assert.equal(out.allData, toHex(hex('01 07 03 04 00 00 00 00 20')));
});

// ---- packets both ways ------------------------------------------------------------------------

test('client → proxy packet: TTL decremented on encapsulation only, once; IPv4 checksum stays valid', async () => {
  const { c, cout, sout } = await connected();
  assert.equal(c.state, 'open');
  const p = ipv4Packet({ src: '10.1.1.2', dst: '192.0.2.1', ttl: 64 });
  assert.equal(c.sendPacket(p, 0, p.length), SendResult.Sent);
  assert.equal(cout.datagrams.length, 1);
  assert.equal(cout.datagrams[0][0], 0, 'context ID 0');
  const got = sout.delivered[0];
  assert.equal(got[8], 63, 'decremented once, by the sender');
  assert.equal(referenceChecksum(got.subarray(0, 20)), 0);
  assert.equal(cout.delivered.length, 0, 'no ICMP');
});

test('proxy egress and client ingress: addresses the proxy assigned are reachable; others refused', async () => {
  const { s, cout, sout } = await connected();
  const back = ipv4Packet({ src: '192.0.2.1', dst: '10.1.1.2', ttl: 50 });
  assert.equal(s.sendPacket(back, 0, back.length), SendResult.Sent);
  assert.equal(cout.delivered.length, 1);
  assert.equal(cout.delivered[0][8], 49);
  const stray = ipv4Packet({ src: '192.0.2.1', dst: '10.1.1.99' });
  assert.equal(s.sendPacket(stray, 0, stray.length), SendResult.Refused);
  assert.equal(sout.delivered.length, 1, 'ICMP unreachable to the local side');
  assert.deepEqual([sout.delivered[0][20], sout.delivered[0][21]], [3, 0]);
});

test('§10.1 item 15 / §10.2: spoofed source from the client is dropped with ICMP admin prohibited, never a stream error', async () => {
  const { s, c, cout, sout } = await connected();
  // Bypass the client's own egress check to act as a hostile client.
  const spoof = ipv4Packet({ src: '10.9.9.9', dst: '192.0.2.1' });
  const dg = new Uint8Array(spoof.length + 1);
  dg.set(spoof, 1);
  s.receiveDatagram(dg, 0, dg.length);
  assert.equal(sout.delivered.length, 0);
  assert.equal(s.stats.droppedSource, 1);
  assert.equal(sout.datagrams.length, 1, 'ICMP went back through the tunnel');
  const icmp = sout.datagrams[0].subarray(1);
  assert.equal(sout.datagrams[0][0], 0, 'context 0');
  assert.deepEqual([icmp[20], icmp[21]], [3, 13]);
  assert.equal(toHex(icmp.subarray(16, 20)), '0a090909', 'addressed to the offending source');
  // The client drops it: 10.9.9.9 is not its address. That is a drop, not an error either.
  assert.equal(cout.delivered.length, 0);
  assert.equal(c.stats.droppedDestination, 1);
  assert.deepEqual(sout.resets, []);
  assert.equal(s.state, 'open');
  assert.equal(c.state, 'open');
});

test('§10.1 item 13 / §10.2: junk (quiche "asdf"), bad IP packets and unknown contexts are dropped silently', async () => {
  const { s, sout } = await connected();
  const junk = Uint8Array.from([0, ...new TextEncoder().encode('asdf')]);
  s.receiveDatagram(junk, 0, junk.length);
  s.receiveDatagram(hex('04 45 00'), 0, 3);
  s.receiveDatagram(hex(''), 0, 0);
  s.receiveDatagram(hex('40'), 0, 1);
  assert.deepEqual(sout.resets, []);
  assert.deepEqual(sout.datagrams, [], 'no ICMP for malformed packets');
  assert.equal(s.stats.droppedMalformed, 1);
  assert.equal(s.contexts.stats.unknownContext, 1);
  assert.equal(s.contexts.stats.unparseable, 2);
  // Random garbage never touches the stream.
  for (let i = 0; i < 2000; i++) {
    const b = Uint8Array.from({ length: i % 90 }, () => (Math.random() * 256) | 0);
    s.receiveDatagram(b, 0, b.length);
  }
  assert.deepEqual(sout.resets, []);
  assert.equal(s.state, 'open');
});

test('§10.1 item 14: TTL 1 is dropped with Time Exceeded; oversize gets PTB with the tunnel MTU (§10.1 item 16)', async () => {
  const { c, cout } = await connected({
    authorize: grant(['10.1.1.2/32', '2001:db8::2/128'], [fullRange(4), fullRange(6)]),
  });
  const ttl1 = ipv4Packet({ src: '10.1.1.2', dst: '192.0.2.1', ttl: 1 });
  assert.equal(c.sendPacket(ttl1, 0, ttl1.length), SendResult.HopLimit);
  assert.deepEqual([cout.delivered[0][20], cout.delivered[0][21]], [11, 0]);
  const big = ipv6Packet({
    src: ip('2001:db8::2'),
    dst: ip('2001:db8:1::1'),
    payload: new Uint8Array(1300),
  });
  assert.equal(c.sendPacket(big, 0, big.length), SendResult.TooBig);
  const ptb = cout.delivered[1];
  assert.deepEqual([ptb[40], ptb[41]], [2, 0]);
  assert.equal((ptb[46] << 8) | ptb[47], 1280);
  c.setMaxDatagramPayload(1201);
  const mid = ipv6Packet({
    src: ip('2001:db8::2'),
    dst: ip('2001:db8:1::1'),
    payload: new Uint8Array(1200),
  });
  assert.equal(
    c.sendPacket(mid, 0, mid.length),
    SendResult.TooBig,
    'QUIC path smaller than the MTU',
  );
  assert.equal(cout.datagrams.length, 0, 'never falls back to a DATAGRAM capsule');
  assert.deepEqual(cout.data, []);
});

test('client without assignment/routes from the proxy uses static addresses and routes (Cloudflare)', async () => {
  const { c, cout } = await connected(
    { authorize: grant(['10.1.1.2/32'], []) },
    {
      staticAddresses: [pfx('172.16.0.2/32')],
      staticRoutes: [fullRange(4)],
      addressRequest: 'never',
    },
  );
  // The proxy assigned 10.1.1.2, so the static address is not used; routes come from config.
  const p = ipv4Packet({ src: '10.1.1.2', dst: '198.51.100.1' });
  assert.equal(c.sendPacket(p, 0, p.length), SendResult.Sent);
  const cf = client({ staticAddresses: [pfx('172.16.0.2/32')], staticRoutes: [fullRange(4)] });
  cf.c.start();
  cf.c.onResponseHeaders(
    [
      [':status', '200'],
      ['cf-team', 'x'],
    ],
    0,
  );
  const q = ipv4Packet({ src: '172.16.0.2', dst: '198.51.100.1' });
  assert.equal(cf.c.sendPacket(q, 0, q.length), SendResult.Sent);
  const wrong = ipv4Packet({ src: '172.16.0.3', dst: '198.51.100.1' });
  assert.equal(cf.c.sendPacket(wrong, 0, wrong.length), SendResult.Refused);
  assert.equal(cout.resets.length, 0);
});

test('newer connect-ip-go behaviour: nothing goes off-link before ROUTE_ADVERTISEMENT', () => {
  const { c } = client();
  c.start();
  c.onResponseHeaders([[':status', '200']], 0);
  c.onData(hex('01 07 00 04 0a 01 01 02 20'));
  const p = ipv4Packet({ src: '10.1.1.2', dst: '192.0.2.1' });
  assert.equal(c.sendPacket(p, 0, p.length), SendResult.Refused);
  c.onData(hex('03 0a 04 00 00 00 00 ff ff ff ff 00'));
  assert.equal(c.sendPacket(p, 0, p.length), SendResult.Sent);
});

test('DATAGRAM capsules are delivered like datagrams and used for sending only when asked', async () => {
  const { s, c, cout, sout } = await connected({}, { datagramsInCapsules: true });
  const p = ipv4Packet({ src: '10.1.1.2', dst: '192.0.2.1' });
  assert.equal(c.sendPacket(p, 0, p.length), SendResult.Sent);
  assert.equal(cout.datagrams.length, 0);
  assert.equal(sout.delivered.length, 1);
  assert.equal(s.stats.packetsFromPeer, 1);
});

// ---- teardown and GOAWAY ------------------------------------------------------------------------

test('§10.1 item 19: FIN from the peer is answered with FIN; close() then peer FIN closes both', async () => {
  const { c, s, cout, sout } = await connected();
  c.close();
  assert.equal(cout.fin, true);
  assert.equal(sout.fin, true, 'proxy answered the FIN');
  assert.equal(s.state, 'closed');
  assert.equal(c.state, 'closed');
  assert.deepEqual(
    sout.closed.map((x) => x.how),
    ['fin'],
  );
  assert.deepEqual(
    cout.closed.map((x) => x.how),
    ['fin'],
  );
});

test('§10.1 item 19: a reset with any code closes the tunnel', async () => {
  for (const code of [0x100, 0x101, 0x107, 0x10c, 0x1f * 3 + 0x21, 0xdead]) {
    const { s, sout } = await connected();
    s.onReset(code);
    assert.equal(s.state, 'closed');
    assert.deepEqual(sout.closed, [
      { how: 'reset', code, reason: `stream reset by peer (0x${code.toString(16)})` },
    ]);
    const p = ipv4Packet({ src: '192.0.2.1', dst: '10.1.1.2' });
    assert.equal(s.sendPacket(p, 0, p.length), SendResult.NotOpen);
  }
});

test('§10.1 item 20: GOAWAY keeps tunnels below the ID, ends a request at or above it', () => {
  const a = client({ streamId: 4 });
  a.c.start();
  a.c.onResponseHeaders([[':status', '200']], 0);
  assert.equal(a.c.onGoaway(8), true);
  assert.equal(a.c.state, 'open');
  const b = client({ streamId: 8 });
  b.c.start();
  assert.equal(b.c.onGoaway(8), false);
  assert.equal(b.c.state, 'closed');
});

test('§10.1 item 12: only ADDRESS_ASSIGN/ADDRESS_REQUEST/ROUTE_ADVERTISEMENT go on the wire; no DATAGRAM capsules with QUIC DATAGRAM', async () => {
  const { c, s, cout, sout } = await connected({}, { addressGraceMs: 0 });
  c.onTimeout(0); // no-op: an assignment already arrived
  s.updateRoutes([fullRange(4), fullRange(6)]);
  s.updateAddresses([pfx('10.1.1.2/32'), pfx('10.1.1.3/32')]);
  s.onData(hex('02 07 05 04 00 00 00 00 20'));
  c.onData(hex('02 07 05 04 00 00 00 00 20')); // the client answers with an ADDRESS_ASSIGN
  const p = ipv4Packet({ src: '10.1.1.2', dst: '192.0.2.1' });
  c.sendPacket(p, 0, p.length);
  const q = ipv4Packet({ src: '192.0.2.1', dst: '10.1.1.2' });
  s.sendPacket(q, 0, q.length);
  const lone = client({ addressGraceMs: 0 });
  lone.c.start();
  lone.c.onResponseHeaders([[':status', '200']], 0);
  lone.c.onTimeout(0); // this one does send ADDRESS_REQUEST
  for (const out of [cout, sout, lone.out]) {
    const parser = new CapsuleParser();
    const kinds = new Set<string>();
    for (const d of out.data) parser.push(d, (x) => kinds.add(x.kind));
    parser.finish();
    assert.equal(parser.stats.skippedUnknown, 0, 'no other capsule types');
    assert.equal(kinds.has('datagram'), false, 'no DATAGRAM capsules');
    assert.ok(kinds.size > 0);
  }
  assert.equal(cout.datagrams.length, 1);
  assert.equal(sout.datagrams.length, 1);
});

test('RFC 9484 §7.1: the proxy never forwards link-local traffic off the tunnel (dropped, no ICMP)', async () => {
  const { s, sout } = await connected({
    authorize: grant(['10.1.1.2/32', '2001:db8::2/128'], [fullRange(4), fullRange(6)]),
  });
  const send = (p: Uint8Array): void => {
    const dg = new Uint8Array(p.length + 1);
    dg.set(p, 1);
    s.receiveDatagram(dg, 0, dg.length);
  };
  send(ipv4Packet({ src: '10.1.1.2', dst: '169.254.1.1' }));
  send(ipv6Packet({ src: ip('2001:db8::2'), dst: ip('fe80::1') }));
  send(ipv6Packet({ src: ip('2001:db8::2'), dst: ip('ff02::1') }));
  assert.equal(s.stats.droppedLinkLocal, 3);
  assert.deepEqual(sout.delivered, []);
  assert.deepEqual(sout.datagrams, []);
  send(ipv6Packet({ src: ip('2001:db8::2'), dst: ip('2001:db8:1::1') }));
  assert.equal(sout.delivered.length, 1, 'global destinations still pass');
});
