import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CertificateRenewal,
  type IssuedServerCertificate,
  type RenewalClock,
  type RenewalLog,
} from './renewal.js';

class FakeClock implements RenewalClock {
  t = 1_000_000;
  private timers: Array<{ at: number; fn: () => void; id: number }> = [];
  private nextId = 1;
  /** Longest delay ever asked of setTimeout. */
  longest = 0;
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    this.longest = Math.max(this.longest, ms);
    const id = this.nextId++;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((x) => x.id !== handle);
  }
  pending(): number {
    return this.timers.length;
  }
  /** Moves time forward, firing due timers in order and letting their promises settle. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (next === undefined || next.at > end) break;
      this.timers.shift();
      this.t = next.at;
      next.fn();
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    }
    this.t = end;
  }
}

function cert(serial: number, renewAtMs: number, notAfterMs = renewAtMs + 100_000) {
  return {
    serverCertPem: `cert ${serial}`,
    serverKeyPem: `key ${serial}`,
    caPem: 'ca',
    renewAtMs,
    certNotAfterMs: notAfterMs,
  } satisfies IssuedServerCertificate;
}

function recorder() {
  const lines: string[] = [];
  const log: RenewalLog = {
    info: (_o, m) => lines.push(`info ${m}`),
    warn: (_o, m) => lines.push(`warn ${m}`),
    error: (_o, m) => lines.push(`error ${m}`),
  };
  return { lines, log };
}

test('fetches at renew-at, not before, applies, and follows the new renew-at', async () => {
  const clock = new FakeClock();
  const applied: string[] = [];
  let serial = 1;
  const r = new CertificateRenewal({
    clock,
    log: recorder().log,
    fetch: async () => cert(++serial, clock.now() + 60_000),
    apply: async (c) => void applied.push(c.serverCertPem),
  });
  r.start(cert(1, clock.now() + 30_000));
  await clock.advance(29_999);
  assert.deepEqual(applied, []);
  await clock.advance(1);
  assert.deepEqual(applied, ['cert 2']);
  await clock.advance(59_999);
  assert.deepEqual(applied, ['cert 2']);
  await clock.advance(1);
  assert.deepEqual(applied, ['cert 2', 'cert 3']);
  assert.equal(r.renewals, 2);
  r.stop();
  assert.equal(clock.pending(), 0);
  await clock.advance(1_000_000);
  assert.equal(applied.length, 2, 'nothing after stop');
});

test('a failed fetch or hand-over is retried with doubling delays, then the backoff resets', async () => {
  const clock = new FakeClock();
  const { lines, log } = recorder();
  const attempts: number[] = [];
  let failFetches = 3;
  let failApply = 1;
  const start = clock.now();
  const r = new CertificateRenewal({
    clock,
    log,
    fetch: async () => {
      attempts.push(clock.now() - start);
      if (failFetches-- > 0) throw new Error('control plane not reachable');
      return cert(2, clock.now() + 1_000_000);
    },
    apply: async () => {
      if (failApply-- > 0) throw new Error('shard refused the certificate');
    },
  });
  r.start(cert(1, start + 10_000));
  await clock.advance(10_000 + 5_000 + 10_000 + 20_000 + 40_000);
  // 3 failed fetches, 1 failed apply, then success: at 10 s, +5, +10, +20, +40.
  assert.deepEqual(attempts, [10_000, 15_000, 25_000, 45_000, 85_000]);
  assert.equal(r.failures, 4);
  assert.equal(r.renewals, 1);
  assert.equal(lines.filter((l) => l.startsWith('warn')).length, 4);
  assert.equal(r.nextAttemptAt, clock.now() + 1_000_000);
  r.stop();
});

test('past expiry a failure is an error, and retries go on (capped at 5 minutes)', async () => {
  const clock = new FakeClock();
  const { lines, log } = recorder();
  const at: number[] = [];
  const r = new CertificateRenewal({
    clock,
    log,
    fetch: async () => {
      at.push(clock.now());
      throw new Error('down');
    },
    apply: async () => undefined,
  });
  r.start(cert(1, clock.now() + 1_000, clock.now() + 20_000));
  await clock.advance(3_600_000);
  assert.ok(lines.some((l) => l.startsWith('error') && /expired/.test(l)));
  const gaps = at.slice(1).map((t, i) => t - at[i]);
  assert.ok(Math.max(...gaps) <= 300_000, `gap ${Math.max(...gaps)}`);
  assert.equal(gaps.at(-1), 300_000);
  r.stop();
});

test('renew-at 0 schedules nothing; a renew-at in the past cannot make it spin', async () => {
  const clock = new FakeClock();
  const none = new CertificateRenewal({
    clock,
    log: recorder().log,
    fetch: async () => assert.fail('no renewal was due'),
    apply: async () => undefined,
  });
  none.start(cert(1, 0));
  assert.equal(clock.pending(), 0);
  assert.equal(none.nextAttemptAt, undefined);

  let fetches = 0;
  const spin = new CertificateRenewal({
    clock,
    log: recorder().log,
    fetch: async () => {
      fetches++;
      return cert(2, clock.now() - 1_000);
    },
    apply: async () => undefined,
  });
  spin.start(cert(1, clock.now() - 1_000));
  await clock.advance(60_000);
  assert.ok(fetches >= 10 && fetches <= 13, `${fetches} fetches in a minute`);
  spin.stop();
});

test('waits longer than setTimeout allows are done in steps', async () => {
  const clock = new FakeClock();
  let fetched = 0;
  const r = new CertificateRenewal({
    clock,
    log: recorder().log,
    fetch: async () => {
      fetched++;
      return cert(2, 0);
    },
    apply: async () => undefined,
  });
  const sixtyDays = 60 * 86_400_000;
  r.start(cert(1, clock.now() + sixtyDays));
  assert.ok(clock.longest <= 2 ** 31 - 1);
  await clock.advance(sixtyDays - 1);
  assert.equal(fetched, 0);
  await clock.advance(1);
  assert.equal(fetched, 1);
  r.stop();
});
