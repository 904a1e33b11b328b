// Certificates for the benchmark: the QUIC tests' throw-away P-256 PKI, flattened into the plain
// strings the benchmark passes to its child process and worker threads.
import { testPki } from '../../dataplane/quic/testing/pki.js';

export interface BenchPki {
  caPem: string;
  serverCertPem: string;
  serverKeyPem: string;
  clientCertPem: string;
  clientKeyPem: string;
}

export function benchPki(): BenchPki {
  const pki = testPki();
  return {
    caPem: pki.caPem,
    serverCertPem: pki.server.certPem,
    serverKeyPem: pki.server.keyPem,
    clientCertPem: pki.client.certPem,
    clientKeyPem: pki.client.keyPem,
  };
}
