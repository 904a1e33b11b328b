// The PKI library: public surface for the control plane, the data plane and masque-cert.
export { CertError, type CertErrorReason } from './errors.js';
export * from './defaults.js';
export { fingerprint, normalizeSerial } from './keys.js';
export { canonicalIp, validateDays, validateIdentity, validateServerName } from './names.js';
export * from './ca.js';
export * from './issue.js';
export * from './revocation.js';
export * from './verify.js';
