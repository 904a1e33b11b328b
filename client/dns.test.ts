import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  lstatSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DnsControl } from './dns.js';

describe('DnsControl', () => {
  let dir: string;
  let conf: string;
  let backup: string;
  const calls: string[][] = [];
  const run = async (file: string, args: readonly string[]): Promise<string> => {
    calls.push([file, ...args]);
    return '';
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'mqc-dns-'));
    conf = join(dir, 'resolv.conf');
    backup = join(dir, 'mq0.resolv.conf');
    calls.length = 0;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('replaces a plain resolv.conf and restores it byte for byte', async () => {
    const original = '# mine\nnameserver 192.0.2.53\noptions edns0\n';
    writeFileSync(conf, original);
    const dns = new DnsControl({ run, resolvConf: conf, backupPath: backup, useResolvectl: false });
    const record = await dns.apply('mq0', ['10.77.0.1', 'fd00:77::1']);
    assert.deepEqual(record, { mode: 'resolv.conf', path: conf, backup });
    assert.match(
      readFileSync(conf, 'utf8'),
      /^# written by masque-client for mq0.*\nnameserver 10\.77\.0\.1\nnameserver fd00:77::1\n$/,
    );
    await dns.restore(record);
    assert.equal(readFileSync(conf, 'utf8'), original);
    assert.throws(() => lstatSync(backup), 'backup removed');
  });

  it('replaces a symlinked resolv.conf without writing through the link, and relinks it', async () => {
    const target = join(dir, 'stub-resolv.conf');
    writeFileSync(target, 'nameserver 127.0.0.53\n');
    symlinkSync(target, conf);
    const dns = new DnsControl({ run, resolvConf: conf, backupPath: backup, useResolvectl: false });
    const record = await dns.apply('mq0', ['10.77.0.1']);
    assert.equal(readFileSync(target, 'utf8'), 'nameserver 127.0.0.53\n', 'link target untouched');
    assert.ok(!lstatSync(conf).isSymbolicLink());
    await dns.restore(record);
    assert.equal(readlinkSync(conf), target);
  });

  it('uses resolvectl per link when systemd-resolved runs', async () => {
    const dns = new DnsControl({ run, resolvConf: conf, backupPath: backup, useResolvectl: true });
    const record = await dns.apply('mq0', ['10.77.0.1']);
    await dns.restore(record);
    assert.deepEqual(calls, [
      ['resolvectl', 'dns', 'mq0', '10.77.0.1'],
      ['resolvectl', 'domain', 'mq0', '~.'],
      ['resolvectl', 'revert', 'mq0'],
    ]);
    assert.throws(() => lstatSync(conf), 'resolv.conf not touched');
  });
});
