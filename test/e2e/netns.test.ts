// The harness itself: a topology comes up, carries traffic, and leaves nothing behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { isRoot, Topology } from './netns.js';

test('topology: veth between namespaces carries ping, destroy removes everything', async (t) => {
  if (!isRoot()) return t.skip('needs root');
  const topo = await Topology.create('nt');
  let destroyed = false;
  try {
    const r = await topo.exec(topo.cli, ['ping', '-c', '1', '-W', '2', topo.srvAddr]);
    assert.match(r.stdout, /1 received/);
    const sleeper = topo.startCmd(topo.srv, ['sleep', '60']);
    await topo.destroy();
    destroyed = true;
    assert.notEqual(sleeper.child.exitCode ?? sleeper.child.signalCode, null);
    const names = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    assert.ok(!names.includes(topo.srv) && !names.includes(topo.cli), names);
    assert.equal(existsSync(topo.dir), false);
  } finally {
    if (!destroyed) await topo.destroy();
  }
});
