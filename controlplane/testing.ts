// Test support: a real control plane in a temporary directory (unix socket and TCP+mTLS), and the
// little tools the integration tests share. Not a test itself.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { webcrypto } from 'node:crypto';
// cert/x509.js loads @peculiar/x509 with its Reflect polyfill and Node's WebCrypto provider.
import * as x509 from '../cert/x509.js';
import { credentials, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { buildConfig } from './config.js';
import { startControlPlane, type RunningControlPlane } from './daemon.js';
import { ControlClient, isServiceError, type TlsOptions } from './client.js';
import { DataPlaneClient, type WatchEvent } from '../proto/gen/masque/v1/dataplane.js';
import type { Logger } from './service/control.js';

export const QUIET: Logger = { info() {}, warn() {}, error() {} };

export interface Harness {
  dir: string;
  run: RunningControlPlane;
  local: ControlClient;
  tcpAddress: string;
  tcp(tls: Omit<TlsOptions, 'caPem'>): ControlClient;
  close(): Promise<void>;
}

export async function startHarness(toml = ''): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'cp-test-'));
  const config = buildConfig(toml, {
    dataDir: join(dir, 'data'),
    grpc: '127.0.0.1:0',
    endpoint: ['192.0.2.10:4433'],
    serverName: 'vpn.test',
    logLevel: 'silent',
  });
  const run = await startControlPlane(config, QUIET);
  const local = new ControlClient({ address: `unix:${run.socketPath}` });
  const opened: ControlClient[] = [local];
  const tcpAddress = `127.0.0.1:${run.tcpPort}`;
  return {
    dir,
    run,
    local,
    tcpAddress,
    tcp(tls) {
      const c = new ControlClient({
        address: tcpAddress,
        tls: { caPem: run.cp.pki.caPem, serverName: 'vpn.test', ...tls },
        deadlineMs: 10_000,
      });
      opened.push(c);
      return c;
    },
    async close() {
      for (const c of opened) c.close();
      await run.stop(1_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves with the gRPC status code of a failed call; fails the test if the call succeeded. */
export async function codeOf(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await p;
  } catch (err) {
    if (isServiceError(err)) return { code: err.code, details: err.details };
    throw err;
  }
  throw new Error('expected the call to fail');
}

/** DER bytes of the first certificate in a PEM string. */
export function pemToDer(pem: string): Buffer {
  const b64 = pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
  return Buffer.from(b64, 'base64');
}

/** A fresh P-256 key and a CSR for it (the subject is ignored by the CA). */
export async function makeCsr(): Promise<{ csrPem: string; keyPem: string }> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=ignored',
    keys,
    signingAlgorithm: alg,
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END PRIVATE KEY-----\n`;
  return { csrPem: csr.toString('pem'), keyPem };
}

/** A Watch stream that records its events; `next` waits for one matching a predicate. */
export class Watcher {
  readonly events: WatchEvent[] = [];
  readonly #client: DataPlaneClient;
  readonly #stream: ClientReadableStream<WatchEvent>;
  #waiters: { pred: (e: WatchEvent) => boolean; done: (e: WatchEvent) => void }[] = [];

  constructor(socketPath: string, dataplaneId: string) {
    this.#client = new DataPlaneClient(`unix:${socketPath}`, credentials.createInsecure());
    this.#stream = this.#client.watch({ dataplaneId });
    this.#stream.on('data', (e: WatchEvent) => {
      this.events.push(e);
      this.#waiters = this.#waiters.filter((w) => {
        if (!w.pred(e)) return true;
        w.done(e);
        return false;
      });
    });
    this.#stream.on('error', (_e: ServiceError) => {});
  }

  next(pred: (e: WatchEvent) => boolean, timeoutMs = 2_000): Promise<WatchEvent> {
    const seen = this.events.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no matching watch event')), timeoutMs);
      this.#waiters.push({
        pred,
        done: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
    });
  }

  close(): void {
    this.#stream.cancel();
    this.#client.close();
  }
}
