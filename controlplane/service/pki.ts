// The control plane's view of its CA: loaded from the store (or imported, or created on first
// start), and the handful of issuing and checking operations the services need, over `cert/`.
// The CA key is read from the store into this process only; no RPC ever returns it.
//
// Key generation and signing go through WebCrypto, which Node runs on its libuv thread pool, so a
// bulk import does not block the event loop and needs no extra worker pool.
import {
  CertError,
  createCa,
  createCrl,
  importCa,
  issueAdminCertificate,
  issueClientCertificate,
  issueServerCertificate,
  readCertificate,
  signCsr,
  verifyCertificate,
  type CertificateAuthority,
  type CertificateInfo,
  type CertificateProfile,
  type IssuedCertificate,
} from '../../cert/index.js';
import { createHash } from 'node:crypto';
import type { Store } from '../store/store.js';
import { invalidArgument } from './errors.js';

export { CertError, readCertificate, type CertificateInfo };

export interface IssuedLeaf {
  serial: string;
  certPem: string;
  /** Absent when the caller supplied a CSR and keeps its key. */
  keyPem?: string;
  notBefore: number;
  notAfter: number;
  fingerprint: string;
}

const DATAPLANE_IDENTITY_PREFIX = 'dataplane:';

const VERIFIED_CACHE_SIZE = 8192;

export class Pki {
  /** Verified client certificates by SHA-256 of their DER, least recently used first. */
  readonly #verified = new Map<string, CertificateInfo>();

  private constructor(readonly ca: CertificateAuthority) {}

  /**
   * The stored CA; else the one in `importFrom` (stored for next time); else a new one. Two
   * control planes starting together on one database agree: the first stored CA wins.
   */
  static async open(
    store: Store,
    options: { importFrom?: { certPem: string; keyPem: string }; commonName?: string } = {},
  ): Promise<{ pki: Pki; created: boolean; imported: boolean }> {
    const stored = await store.loadCa();
    if (stored !== undefined) {
      return {
        pki: new Pki(await importCa(stored.certPem, stored.keyPem)),
        created: false,
        imported: false,
      };
    }
    const ca =
      options.importFrom !== undefined
        ? await importCa(options.importFrom.certPem, options.importFrom.keyPem)
        : await createCa({ commonName: options.commonName });
    const won = await store.saveCa({ certPem: ca.certPem, keyPem: ca.keyPem }, Date.now());
    if (!won) return Pki.open(store);
    return {
      pki: new Pki(ca),
      created: options.importFrom === undefined,
      imported: options.importFrom !== undefined,
    };
  }

  get caPem(): string {
    return this.ca.certPem;
  }

  async issueClient(identity: string, csrPem: string, days: number): Promise<IssuedLeaf> {
    if (csrPem !== '') return this.#sign(csrPem, { kind: 'client', identity }, days);
    return leaf(await issueClientCertificate(this.ca, identity, { days }));
  }

  async issueAdmin(identity: string, csrPem: string, days: number): Promise<IssuedLeaf> {
    if (csrPem !== '') return this.#sign(csrPem, { kind: 'admin', identity }, days);
    return leaf(await issueAdminCertificate(this.ca, identity, { days }));
  }

  /** A data plane's gRPC client certificate (its role is recorded by serial in the store). */
  async issueDataPlane(name: string, csrPem: string, days: number): Promise<IssuedLeaf> {
    return this.#sign(
      csrPem,
      { kind: 'client', identity: `${DATAPLANE_IDENTITY_PREFIX}${name}` },
      days,
    );
  }

  async issueServer(
    serverName: string,
    ipAddresses: string[],
    csrPem: string,
    days: number,
  ): Promise<IssuedLeaf> {
    if (csrPem !== '') {
      return this.#sign(csrPem, { kind: 'server', serverName, ipAddresses }, days);
    }
    return leaf(await issueServerCertificate(this.ca, serverName, ipAddresses, { days }));
  }

  /**
   * Chain, validity and purpose against this CA; throws CertError with the reason. A certificate
   * that verified once needs only its validity window checked again (its signature and purpose
   * cannot change), so reconnects skip the signature check; revocation is the store's business
   * and is checked by the caller on every call.
   */
  async verifyClient(der: Uint8Array, now = new Date()): Promise<CertificateInfo> {
    const key = createHash('sha256').update(der).digest('base64');
    const cached = this.#verified.get(key);
    if (cached !== undefined && cached.notBefore <= now && now <= cached.notAfter) {
      this.#verified.delete(key);
      this.#verified.set(key, cached);
      return cached;
    }
    const info = await verifyCertificate(der, this.ca, { purpose: 'client', at: now });
    this.#verified.set(key, info);
    if (this.#verified.size > VERIFIED_CACHE_SIZE) {
      this.#verified.delete(this.#verified.keys().next().value as string);
    }
    return info;
  }

  /**
   * Time checks for a certificate recognized as one this CA issued (its DER's SHA-256 equals the
   * fingerprint the store recorded when we signed it): issuer, signature and purpose were fixed
   * by us then and cannot differ, so only the validity windows of the leaf and of the CA are left
   * to check. Throws CertError 'expired' or 'not-yet-valid', like verifyClient would.
   */
  checkIssuedWindow(
    cert: { subjectCn: string; serial: string; notBefore: number; notAfter: number },
    now = new Date(),
  ): void {
    const at = now.getTime();
    const ca = this.ca.certificate;
    const windows = [
      { what: 'the CA certificate', from: ca.notBefore.getTime(), to: ca.notAfter.getTime() },
      {
        what: `certificate ${cert.serial} of ${cert.subjectCn}`,
        from: cert.notBefore,
        to: cert.notAfter,
      },
    ];
    for (const w of windows) {
      if (at < w.from) {
        throw new CertError(
          'not-yet-valid',
          `${w.what} is not valid before ${new Date(w.from).toISOString()}`,
        );
      }
      if (at > w.to) {
        throw new CertError('expired', `${w.what} expired at ${new Date(w.to).toISOString()}`);
      }
    }
  }

  async crl(entries: { serial: string; revokedAt: number }[]): Promise<string> {
    const crl = await createCrl(
      this.ca,
      entries.map((e) => ({ serial: e.serial, revokedAt: new Date(e.revokedAt) })),
    );
    return crl.pem;
  }

  async #sign(csrPem: string, profile: CertificateProfile, days: number): Promise<IssuedLeaf> {
    try {
      return leaf(await signCsr(this.ca, csrPem, profile, { days }));
    } catch (err) {
      if (err instanceof CertError) {
        throw invalidArgument(`certificate request rejected: ${err.message}`);
      }
      throw err;
    }
  }
}

function leaf(c: IssuedCertificate & { keyPem?: string }): IssuedLeaf {
  const out: IssuedLeaf = {
    serial: c.serial,
    certPem: c.certPem,
    notBefore: c.notBefore.getTime(),
    notAfter: c.notAfter.getTime(),
    fingerprint: c.fingerprint,
  };
  if (c.keyPem !== undefined) out.keyPem = c.keyPem;
  return out;
}
