import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { natRuleset } from './nat.js';

test('ruleset masquerades each pool family and forwards the TUN', () => {
  const text = natRuleset({ pools: ['10.77.0.0/16', 'fd77::/64'], tun: 'mq0' });
  assert.match(text, /ip saddr 10\.77\.0\.0\/16 oifname != "mq0" masquerade/);
  assert.match(text, /ip6 saddr fd77::\/64 oifname != "mq0" masquerade/);
  assert.match(text, /iifname "mq0" accept/);
});

// Applies and undoes the real thing inside a namespace of our own, where sysctls and nftables are
// private, then checks nothing is left behind.
test('applyNat sets forwarding and a table, undo restores both', (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root');
  const ns = `natt-${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    const script = `
      import { applyNat } from ${JSON.stringify(fileURLToPath(new URL('./nat.js', import.meta.url)))};
      import { readFileSync } from 'node:fs';
      import { execFileSync } from 'node:child_process';
      const fwd = () => readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();
      const before = fwd();
      const nat = await applyNat({ pools: ['10.77.0.0/16', 'fd77::/64'], tun: 'mq0', table: 'mqtest' });
      const during = fwd();
      const listed = execFileSync('nft', ['list', 'table', 'inet', 'mqtest'], { encoding: 'utf8' });
      await nat.undo();
      let gone = false;
      try { execFileSync('nft', ['list', 'table', 'inet', 'mqtest'], { stdio: 'pipe' }); } catch { gone = true; }
      console.log(JSON.stringify({ before, during, after: fwd(), masq: listed.includes('masquerade'), gone }));
    `;
    const r = spawnSync(
      'ip',
      ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', script],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim()) as Record<string, unknown>;
    assert.equal(out.during, '1');
    assert.equal(out.after, out.before);
    assert.equal(out.masq, true);
    assert.equal(out.gone, true);
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
});
