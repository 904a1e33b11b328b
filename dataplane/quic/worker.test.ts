// Worker safety: the addon in the main thread and 8 workers at once, 20 rounds of worker churn
// ending by close, process.exit() inside the worker or worker.terminate() mid-traffic; and a
// child process that calls process.exit() with endpoints open. Nothing may abort.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { Endpoint } from './endpoint.js';
import { testPki } from './testing/pki.js';
import { serverOptions } from './testing/harness.js';
import type { ChurnData } from './testing/worker.js';

const workerFile = fileURLToPath(new URL('./testing/worker.js', import.meta.url));
const endpointFile = fileURLToPath(new URL('./endpoint.js', import.meta.url));

function runWorker(data: ChurnData): Promise<string> {
  return new Promise((resolve, reject) => {
    const w = new Worker(workerFile, { workerData: data });
    let outcome = 'exit';
    const timer = setTimeout(() => {
      outcome = 'timeout';
      void w.terminate();
    }, 20000);
    w.on('message', (m: string) => {
      if (m === 'traffic') {
        outcome = 'terminated';
        void w.terminate();
      } else if (m === 'done') outcome = 'done';
    });
    w.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    w.on('exit', () => {
      clearTimeout(timer);
      resolve(outcome);
    });
  });
}

test('8 workers x 20 rounds of churn next to a busy main-thread endpoint', async () => {
  const pki = testPki();
  let mainDatagrams = 0;
  const main = new Endpoint(serverOptions({ host: '::1' }), {
    onDatagrams(conn, buf, lengths, count) {
      mainDatagrams += count;
      let off = 0;
      for (let i = 0; i < count; i++) {
        conn.sendDatagram(buf.subarray(off, off + lengths[i]));
        off += lengths[i];
      }
    },
  });
  const ends = ['destroy', 'exit', 'terminate'] as const;
  const tally: Record<string, number> = {};
  try {
    // Eight slots, each running 20 workers back to back: 8 workers alive at all times.
    await Promise.all(
      Array.from({ length: 8 }, async (_, slot) => {
        for (let round = 0; round < 20; round++) {
          const o = await runWorker({
            kind: 'churn',
            pki,
            mainPort: main.address().port,
            end: ends[(round + slot) % 3],
          });
          tally[o] = (tally[o] ?? 0) + 1;
        }
      }),
    );
  } finally {
    await main.close();
  }
  assert.equal(tally.timeout, undefined, `no worker hung: ${JSON.stringify(tally)}`);
  assert.ok((tally.done ?? 0) >= 50 && (tally.terminated ?? 0) >= 50 && (tally.exit ?? 0) >= 50);
  assert.ok(mainDatagrams > 0, 'the main thread served workers meanwhile');
});

test('process.exit() with open endpoints, workers and traffic exits cleanly', () => {
  const pki = JSON.stringify(testPki());
  const script = `
    import { Endpoint } from ${JSON.stringify(endpointFile)};
    import { Worker } from 'node:worker_threads';
    const pki = ${pki};
    const s = new Endpoint({ role: 'server', host: '::1', port: 0, ...pki.server, caPem: pki.caPem }, {
      onDatagrams(c, b, l, n) { let o = 0; for (let i = 0; i < n; i++) { c.sendDatagram(b.subarray(o, o + l[i])); o += l[i]; } },
    });
    for (let i = 0; i < 2; i++)
      new Worker(${JSON.stringify(workerFile)}, { execArgv: [], workerData: { kind: 'churn', pki, mainPort: s.address().port, end: 'terminate' } });
    let got = 0;
    const c = new Endpoint({ role: 'client', host: '::1', port: 0, ...pki.client, caPem: pki.caPem, serverName: 'localhost' }, {
      onHandshake(conn) { setInterval(() => { for (let i = 0; i < 50; i++) conn.sendDatagram(Buffer.alloc(1200)); }, 1); },
      onDatagrams(_c, _b, _l, n) { got += n; if (got > 500) process.exit(7); },
    });
    c.connect('::1', s.address().port);
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    timeout: 20000,
    encoding: 'utf8',
  });
  assert.equal(r.signal, null, `no abort: ${r.stderr}`);
  assert.equal(r.status, 7, r.stderr);
});
