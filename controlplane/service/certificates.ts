// Certificates: the CA (never its key), the issued certificates, revocation, admin certificates,
// the CRL.
import {
  CertificateKind,
  CertificatesService,
  type Certificate,
} from '../../proto/gen/masque/v1/certificates.js';
import type { CertificateKind as StoredKind, CertificateRecord } from '../store/store.js';
import type { ControlPlane } from './control.js';
import type { Implementation } from './rpc.js';
import { invalidArgument, notFound } from './errors.js';
import { readCertificate } from './pki.js';
import * as valid from './validate.js';

const KIND_TO_MESSAGE: Record<StoredKind, CertificateKind> = {
  client: CertificateKind.CERTIFICATE_KIND_CLIENT,
  server: CertificateKind.CERTIFICATE_KIND_SERVER,
  admin: CertificateKind.CERTIFICATE_KIND_ADMIN,
  dataplane: CertificateKind.CERTIFICATE_KIND_DATAPLANE,
};

function kindOf(k: CertificateKind): StoredKind | undefined {
  for (const [stored, message] of Object.entries(KIND_TO_MESSAGE)) {
    if (message === k) return stored as StoredKind;
  }
  return undefined;
}

export function certificateMessage(c: CertificateRecord, userName = ''): Certificate {
  return {
    serial: c.serial,
    kind: KIND_TO_MESSAGE[c.kind],
    subjectCn: c.subjectCn,
    user: userName,
    deviceId: c.deviceId ?? 0,
    notBeforeMs: c.notBefore,
    notAfterMs: c.notAfter,
    revoked: c.revokedAt !== null,
    revokedAtMs: c.revokedAt ?? 0,
    revocationReason: c.revocationReason,
    fingerprintSha256: c.fingerprint,
  };
}

/** Serials are stored lower-case hex without separators; accept what people paste. */
export function normalizeSerial(serial: string): string {
  const s = serial
    .trim()
    .replace(/:/g, '')
    .toLowerCase()
    .replace(/^0+(?=.)/, '');
  if (!/^[0-9a-f]{1,64}$/.test(s)) {
    throw invalidArgument(`invalid serial ${JSON.stringify(serial)}: give hex digits`);
  }
  return s;
}

export function certificatesService(cp: ControlPlane): Implementation<typeof CertificatesService> {
  return {
    async getCa() {
      const info = readCertificate(cp.pki.caPem);
      return {
        caPem: cp.pki.caPem,
        fingerprintSha256: info.fingerprint,
        subject: info.subject,
        notAfterMs: info.notAfter.getTime(),
      };
    },

    async listCertificates(req) {
      if (req.user !== '') await cp.requireUser(req.user);
      const kind =
        req.kind === CertificateKind.CERTIFICATE_KIND_UNSPECIFIED ? undefined : kindOf(req.kind);
      const certs = await cp.store.listCertificates({
        userName: req.user === '' ? undefined : req.user,
        kind,
        includeRevoked: req.includeRevoked,
      });
      return {
        certificates: certs.map((c) => certificateMessage(c, c.subjectCn.split('/')[0] ?? '')),
      };
    },

    async revokeCertificate(req) {
      const serial = await findSerial(cp, req.serial);
      const before = await cp.store.getCertificate(serial);
      const sessions =
        before?.deviceId != null && before.revokedAt === null
          ? await cp.store.listSessions({ deviceId: before.deviceId })
          : [];
      const cert = await cp.store.revokeCertificate(
        serial,
        cp.now(),
        req.reason === '' ? 'revoked by an administrator' : req.reason,
      );
      if (cert === undefined) throw notFound(`no certificate with serial ${req.serial}`);
      if (before?.revokedAt === null) {
        await cp.announceRevocation([serial], sessions, cert.deviceId ?? 0);
      }
      return certificateMessage(cert);
    },

    async issueAdminCertificate(req) {
      const name = valid.userName(req.name);
      const days = req.validDays === 0 ? 365 : Math.min(req.validDays, 3650);
      const issued = await cp.pki.issueAdmin(name, req.csrPem, days);
      const record: CertificateRecord = {
        serial: issued.serial,
        kind: 'admin',
        subjectCn: name,
        userId: null,
        deviceId: null,
        notBefore: issued.notBefore,
        notAfter: issued.notAfter,
        fingerprint: issued.fingerprint,
        revokedAt: null,
        revocationReason: '',
      };
      await cp.store.recordCertificate(record);
      cp.log.info({ admin: name, serial: issued.serial }, 'admin certificate issued');
      return {
        certificate: certificateMessage(record),
        certPem: issued.certPem,
        keyPem: issued.keyPem ?? '',
        caPem: cp.pki.caPem,
      };
    },

    async getCrl() {
      const revoked = await cp.store.listRevoked();
      const crlPem = await cp.pki.crl(
        revoked.map((c) => ({ serial: c.serial, revokedAt: c.revokedAt ?? 0 })),
      );
      return { crlPem, revokedSerials: revoked.map((c) => c.serial) };
    },
  };
}

async function findSerial(cp: ControlPlane, input: string): Promise<string> {
  const serial = normalizeSerial(input);
  if ((await cp.store.getCertificate(serial)) !== undefined) return serial;
  // Stored serials are 32 hex digits; a pasted one may have lost leading zeros.
  const padded = serial.padStart(32, '0');
  if ((await cp.store.getCertificate(padded)) !== undefined) return padded;
  throw notFound(`no certificate with serial ${input}; list them with \`vpnctl cert list\``);
}
