// A client made of the real client library (MasqueTransport), without a TUN, run by the e2e tests
// inside the client namespace:
//   node tunnel-child.js burst COUNT BUNDLE...      open and close COUNT tunnels, one device per
//                                                  bundle at a time, the bundles in parallel
//   node tunnel-child.js spoof BUNDLE SPOOFED TARGET  one tunnel behaving like a hostile peer
// It prints one JSON line with what it saw. The spoof mode bypasses the session's own egress check
// (a well-behaved client never sends such packets) to reach the server's ingress check.
import { loadBundle, transportSettings } from '../../client/bundle.js';
import { MasqueTransport } from '../../client/masque-transport.js';
import type { IpPrefix } from '../../client/prefix.js';
import type { TransportSettings, TunnelEvents, TunnelHandle } from '../../client/transport.js';

interface Seen {
  addresses: IpPrefix[];
  packets: Uint8Array[];
  closed: string[];
}

function events(seen: Seen): TunnelEvents {
  return {
    addresses: (set) => {
      seen.addresses = [...set];
    },
    routes: () => undefined,
    packet: (p) => {
      seen.packets.push(p.slice());
    },
    closed: (r) => {
      seen.closed.push(`${r.kind}: ${r.message}`);
    },
  };
}

async function settingsFrom(path: string): Promise<TransportSettings> {
  const { bundle, endpoints } = await loadBundle(path);
  return transportSettings(bundle, endpoints);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

function checksum(b: Uint8Array, start: number, end: number): number {
  let sum = 0;
  for (let i = start; i < end; i += 2) sum += (b[i] << 8) | (i + 1 < end ? b[i + 1] : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function v4(address: string): number[] {
  return address.split('.').map(Number);
}

/** An IPv4 ICMP echo request with identifier `id`. */
function echoRequest(src: string, dst: string, id: number): Uint8Array {
  const p = new Uint8Array(20 + 8 + 16);
  p.set([0x45, 0, 0, p.length, 0, 0, 0x40, 0, 64, 1, 0, 0, ...v4(src), ...v4(dst)]);
  const ip = checksum(p, 0, 20);
  p[10] = ip >> 8;
  p[11] = ip & 0xff;
  p.set([8, 0, 0, 0, id >> 8, id & 0xff, 0, 1], 20);
  const icmp = checksum(p, 20, p.length);
  p[22] = icmp >> 8;
  p[23] = icmp & 0xff;
  return p;
}

function isEchoReplyTo(p: Uint8Array, dst: string, id: number): boolean {
  const d = v4(dst);
  return (
    p.length >= 28 &&
    p[0] >> 4 === 4 &&
    p[9] === 1 &&
    p[20] === 0 &&
    d.every((x, i) => p[16 + i] === x) &&
    ((p[24] << 8) | p[25]) === id
  );
}

async function burst(count: number, paths: string[]): Promise<object> {
  // One worker per device: a second live tunnel of the same device replaces the first by design.
  const transports = await Promise.all(
    paths.map(async (p) => new MasqueTransport(await settingsFrom(p))),
  );
  const addresses = new Map<number, Set<string>>();
  const failures: string[] = [];
  let opened = 0;
  let next = 0;
  const worker = async (device: number) => {
    const seenAddresses = new Set<string>();
    addresses.set(device, seenAddresses);
    while (next < count) {
      next++;
      const seen: Seen = { addresses: [], packets: [], closed: [] };
      let handle: TunnelHandle | undefined;
      try {
        handle = await transports[device].connect(events(seen), new AbortController().signal);
        opened++;
        if (await waitFor(() => seen.addresses.length > 0, 3_000)) {
          for (const a of seen.addresses) seenAddresses.add(`${a.address}/${a.length}`);
        } else failures.push('no ADDRESS_ASSIGN');
      } catch (err) {
        failures.push((err as Error).message);
      } finally {
        await handle?.close();
      }
    }
  };
  const started = Date.now();
  await Promise.all(transports.map((_, i) => worker(i)));
  return {
    opened,
    failures,
    addresses: paths.map((_, i) => [...(addresses.get(i) ?? [])]),
    ms: Date.now() - started,
  };
}

async function spoof(path: string, spoofed: string, target: string): Promise<object> {
  const transport = new MasqueTransport(await settingsFrom(path));
  const seen: Seen = { addresses: [], packets: [], closed: [] };
  const handle = await transport.connect(events(seen), new AbortController().signal);
  try {
    if (!(await waitFor(() => seen.addresses.length > 0, 3_000))) throw new Error('no address');
    const own = seen.addresses.find((a) => a.version === 4)?.address ?? '';
    // Context ID 0 then the packet, sent as the HTTP Datagram of the tunnel's stream.
    const raw = (handle as unknown as { sendDatagram(b: Uint8Array, o: number, l: number): void })
      .sendDatagram;
    const datagram = (p: Uint8Array) => {
      const d = new Uint8Array(1 + p.length);
      d.set(p, 1);
      raw.call(handle, d, 0, d.length);
    };
    const spoofedSent = 5;
    for (let i = 0; i < spoofedSent; i++) datagram(echoRequest(spoofed, target, 0x5000 + i));
    // Control: the same raw path with the client's own address is answered.
    datagram(echoRequest(own, target, 0x6000));
    const ownReplied = await waitFor(
      () => seen.packets.some((p) => isEchoReplyTo(p, own, 0x6000)),
      3_000,
    );
    await sleep(500);
    const spoofedReplies = seen.packets.filter((p) =>
      Array.from({ length: spoofedSent }, (_, i) => 0x5000 + i).some((id) =>
        isEchoReplyTo(p, spoofed, id),
      ),
    ).length;
    return { own, ownReplied, spoofedSent, spoofedReplies, packets: seen.packets.length };
  } finally {
    await handle.close();
  }
}

const [mode, ...args] = process.argv.slice(2);
const run =
  mode === 'burst'
    ? burst(Number(args[0]), args.slice(1))
    : mode === 'spoof'
      ? spoof(args[0], args[1], args[2])
      : Promise.reject(new Error(`unknown mode ${mode}`));
run.then(
  (result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  },
  (err: Error) => {
    process.stderr.write(`${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
