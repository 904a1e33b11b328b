// PacketReader over descriptors that need no root: an eventfd rung from another thread (the
// doorbell use) and a FIFO (packets arrive as whatever chunks the pipe holds; end of file).
// The TUN use is covered by client/tun-device.test.ts in a private namespace.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { EFD_CLOEXEC, EFD_NONBLOCK, libc } from '../tun/libc.js';
import { PacketReader, PacketReaderError } from './packet-reader.js';

function eightBytes(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
}

describe('PacketReader', () => {
  it('wakes this loop when another thread rings an eventfd', async () => {
    const efd = libc().eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert.ok(efd >= 0);
    const seen: bigint[] = [];
    let done!: () => void;
    const three = new Promise<void>((r) => (done = r));
    const reader = new PacketReader(efd, { slotBytes: 8, slotCount: 1 }, (batch, count) => {
      assert.equal(count, 1);
      assert.equal(batch.length(0), 8);
      seen.push(Buffer.from(batch.packet(0)).readBigUInt64LE());
      if (seen.length === 3) done();
    });
    try {
      // Each ring waits for the previous wake-up, so every one is its own read.
      const worker = new Worker(
        `const { workerData, parentPort } = require('node:worker_threads');
         const fs = require('node:fs');
         parentPort.on('message', (n) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); fs.writeSync(workerData, b); });`,
        { eval: true, workerData: efd },
      );
      for (const n of [5, 7, 11]) {
        const before = seen.length;
        worker.postMessage(n);
        while (seen.length === before) await new Promise((r) => setTimeout(r, 2));
      }
      await three;
      await worker.terminate();
      assert.deepEqual(seen, [5n, 7n, 11n]);
      const c = reader.counters();
      assert.equal(c.packets, 3);
      assert.equal(c.bytes, 24);
      assert.equal(c.errors, 0);
      assert.equal(c.watching, true);
    } finally {
      reader.close();
      fs.closeSync(efd);
    }
  });

  it('reads a FIFO in batches and reports end of file once, then stops', async () => {
    const dir = fs.mkdtempSync(join(tmpdir(), 'mq-reader-'));
    const path = join(dir, 'fifo');
    execFileSync('mkfifo', [path]);
    const rfd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const wfd = fs.openSync(path, fs.constants.O_WRONLY);
    const chunks: Buffer[] = [];
    const errors: PacketReaderError[] = [];
    let ended!: () => void;
    const end = new Promise<void>((r) => (ended = r));
    const reader = new PacketReader(
      rfd,
      { slotBytes: 16, slotCount: 4 },
      (batch, count) => {
        for (let i = 0; i < count; i++) chunks.push(Buffer.from(batch.packet(i)));
      },
      (e) => {
        errors.push(e);
        ended();
      },
    );
    try {
      const payload = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz'.repeat(5)); // 180 B
      fs.writeSync(wfd, payload);
      fs.closeSync(wfd);
      await end;
      // 16-byte slots: the pipe's bytes arrive whole and in order, spread over several batches.
      assert.deepEqual(Buffer.concat(chunks), payload);
      assert.ok(chunks.every((c) => c.length <= 16));
      assert.equal(errors.length, 1);
      assert.equal(errors[0]!.errno, 0);
      assert.equal(errors[0]!.code, 'ERR_PACKET_READER');
      assert.equal(reader.counters().watching, false);
      assert.ok(reader.counters().batches >= Math.ceil(180 / 16 / 4));
      // The descriptor is the caller's: still open.
      assert.doesNotThrow(() => fs.fstatSync(rfd));
    } finally {
      reader.close();
      fs.closeSync(rfd);
      fs.rmSync(dir, { recursive: true });
    }
  });

  it('stops calling back after close()', async () => {
    const efd = libc().eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    let calls = 0;
    const reader = new PacketReader(efd, { slotBytes: 8, slotCount: 1 }, () => calls++);
    fs.writeSync(efd, eightBytes(1n));
    while (calls === 0) await new Promise((r) => setTimeout(r, 2));
    reader.close();
    reader.close();
    fs.writeSync(efd, eightBytes(1n));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(calls, 1);
    assert.equal(reader.counters().watching, false);
    fs.closeSync(efd);
  });

  it('rejects bad arguments with a clear error', () => {
    const noop = () => {};
    assert.throws(() => new PacketReader(-1, {}, noop), /fd must be a descriptor number/);
    assert.throws(() => new PacketReader(1 << 20, {}, noop), /not an open descriptor/);
    assert.throws(() => new PacketReader(0, { slotBytes: 4 }, noop), /slotBytes/);
    assert.throws(() => new PacketReader(0, { slotCount: 0 }, noop), /slotCount/);
  });
});
