// ClientTunDevice against a real TUN in a private network namespace: the probe runs in a child
// process under `ip netns exec` (TUNSETIFF attaches by name in the caller's namespace).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const isRoot = process.getuid?.() === 0;
const moduleUrl = pathToFileURL(
  join(dirname(fileURLToPath(import.meta.url)), 'tun-device.js'),
).href;

const probe = `
import { ClientTunDevice } from ${JSON.stringify(moduleUrl)};
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
const ip = (...a) => execFileSync('ip', a);
ip('link', 'set', 'lo', 'up');
ip('tuntap', 'add', 'dev', 'mqio0', 'mode', 'tun');
ip('addr', 'add', '10.99.0.1/24', 'dev', 'mqio0');
ip('link', 'set', 'dev', 'mqio0', 'up');
const io = await ClientTunDevice.open('mqio0', 1280);
const got = [];
io.start((p) => got.push(Buffer.from(p)));
function sum(b) {
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += (b[i] << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}
// ICMP echo request 10.99.0.2 -> 10.99.0.1, written into the TUN: the kernel must answer it.
const icmp = Buffer.from([8, 0, 0, 0, 0x12, 0x34, 0, 1, 0x61, 0x62, 0x63, 0x64]);
icmp.writeUInt16BE(sum(icmp), 2);
const ipHdr = Buffer.from([0x45, 0, 0, 20 + icmp.length, 0, 0, 0x40, 0, 64, 1, 0, 0, 10, 99, 0, 2, 10, 99, 0, 1]);
ipHdr.writeUInt16BE(sum(ipHdr), 10);
const wrote = io.write(Buffer.concat([ipHdr, icmp]));
// UDP from this host to 10.99.0.2 is routed into the TUN: we must read it.
const s = dgram.createSocket('udp4');
s.send('hello', 9999, '10.99.0.2', () => s.close());
await new Promise((r) => setTimeout(r, 700));
await io.close();
const udp = got.some((p) => p[9] === 17 && p.readUInt32BE(16) === 0x0a630002 && p.readUInt16BE(22) === 9999 && p.subarray(28).toString() === 'hello');
const reply = got.some((p) => p[9] === 1 && p[20] === 0 && p.readUInt32BE(12) === 0x0a630001 && p.readUInt32BE(16) === 0x0a630002 && p.readUInt16BE(24) === 0x1234);
console.log(JSON.stringify({ wrote, udp, reply, writeDrops: io.writeDrops }));
`;

describe('ClientTunDevice', { skip: isRoot ? false : 'needs root' }, () => {
  it('reads what the kernel routes into the TUN and writes what the kernel answers', () => {
    const ns = `mqc-io-${process.pid}`;
    execFileSync('ip', ['netns', 'add', ns]);
    try {
      const r = spawnSync(
        'ip',
        ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', probe],
        { encoding: 'utf8', timeout: 20_000 },
      );
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}');
      assert.equal(out.wrote, true);
      assert.equal(out.udp, true, `UDP packet read from the TUN: ${r.stdout}`);
      assert.equal(out.reply, true, `echo reply read back: ${r.stdout}`);
      assert.equal(out.writeDrops, 0);
    } finally {
      execFileSync('ip', ['netns', 'del', ns]);
    }
  });
});
