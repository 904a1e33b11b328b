// Small helpers shared by the QUIC tests: endpoint options from the test PKI and promise-based
// waiting with a deadline (a hung handshake fails the test instead of hanging the suite).
import type { EndpointOptions } from '../endpoint.js';
import { testPki, type Identity } from './pki.js';

export function serverOptions(extra: Partial<EndpointOptions> = {}): EndpointOptions {
  const pki = testPki();
  return { role: 'server', host: '::', port: 0, ...pki.server, caPem: pki.caPem, ...extra };
}

export function clientOptions(
  extra: Partial<EndpointOptions> = {},
  identity: Identity = testPki().client,
): EndpointOptions {
  const pki = testPki();
  return {
    role: 'client',
    host: '::',
    port: 0,
    ...identity,
    caPem: pki.caPem,
    serverName: 'localhost',
    ...extra,
  };
}

/** A promise plus its resolver, with a timeout that rejects it. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: Error): void;
}

export function deferred<T>(timeoutMs: number, what: string): Deferred<T> {
  let resolveFn!: (v: T) => void;
  let rejectFn!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`timed out: ${what}`)), timeoutMs);
    resolveFn = (v) => {
      clearTimeout(timer);
      res(v);
    };
    rejectFn = (e) => {
      clearTimeout(timer);
      rej(e);
    };
  });
  return { promise, resolve: resolveFn, reject: rejectFn };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `cond` until true or the deadline passes. */
export async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(10);
  }
}
