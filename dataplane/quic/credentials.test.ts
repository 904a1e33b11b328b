// A renewed server certificate: setCredentials changes what new handshakes get, connections
// already up carry on with theirs, and bad credentials are refused with the old ones kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';

import { Endpoint, QuicError, type Connection } from './endpoint.js';
import { clientOptions, deferred, serverOptions, until } from './testing/harness.js';
import { OpensslDir, TestCa, type Identity } from './testing/pki.js';

const leaf = 'keyUsage=critical,digitalSignature\n';
const serverExt = `${leaf}extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:::1\n`;

function makeIdentities(): { caPem: string; first: Identity; second: Identity; client: Identity } {
  const dir = new OpensslDir();
  try {
    const ca = new TestCa(dir, 'ca', 'renewal test CA');
    return {
      caPem: ca.certPem,
      first: ca.issue('server-1', { ext: serverExt }),
      second: ca.issue('server-2', { ext: serverExt }),
      client: ca.issue('client', { ext: `${leaf}extendedKeyUsage=clientAuth\n` }),
    };
  } finally {
    dir.dispose();
  }
}

test('setCredentials: new handshakes get the new certificate, live connections carry on', async () => {
  const id = makeIdentities();
  const serial = (pem: string) => new X509Certificate(pem).serialNumber;
  const echoed: string[] = [];
  const server = new Endpoint(serverOptions({ ...id.first, caPem: id.caPem }), {
    onDatagrams: (conn, data, lengths, count) => {
      let off = 0;
      for (let i = 0; i < count; i++) {
        conn.sendDatagram(data.subarray(off, off + lengths[i]));
        off += lengths[i];
      }
    },
  });
  const port = server.address().port;
  const clients: Endpoint[] = [];
  const connect = async (): Promise<Connection> => {
    const up = deferred<Connection>(5000, 'handshake');
    const c = new Endpoint(clientOptions({ caPem: id.caPem }, id.client), {
      onHandshake: (conn) => up.resolve(conn),
      onClose: (_c, info) => up.reject(new Error(`closed: ${info.reason}`)),
      onDatagrams: (_c, data, lengths) =>
        echoed.push(Buffer.from(data.subarray(0, lengths[0])).toString()),
    });
    clients.push(c);
    c.connect('::1', port);
    return up.promise;
  };
  const presented = (conn: Connection) =>
    new X509Certificate(conn.peerCertDer as Buffer).serialNumber;
  try {
    const before = await connect();
    assert.equal(presented(before), serial(id.first.certPem));

    server.setCredentials({ ...id.second, caPem: id.caPem });
    const after = await connect();
    assert.equal(presented(after), serial(id.second.certPem), 'new handshake, new certificate');

    // The connection made with the first certificate still works both ways.
    before.sendDatagram(Buffer.from('still here'));
    await until(() => echoed.includes('still here'), 3000, 'echo on the old connection');

    // A key that does not belong to the certificate, and garbage: refused, the second kept.
    assert.throws(
      () =>
        server.setCredentials({
          certPem: id.first.certPem,
          keyPem: id.second.keyPem,
          caPem: id.caPem,
        }),
      (e: unknown) => e instanceof QuicError && e.code === 'ERR_QUIC_CREDENTIALS',
    );
    assert.throws(
      () => server.setCredentials({ certPem: 'not a certificate', keyPem: 'x', caPem: id.caPem }),
      (e: unknown) => e instanceof QuicError && e.code === 'ERR_QUIC_CREDENTIALS',
    );
    const third = await connect();
    assert.equal(presented(third), serial(id.second.certPem), 'refused swaps change nothing');
  } finally {
    for (const c of clients) await c.close();
    await server.close();
  }
});
