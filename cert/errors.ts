// Every PKI failure is a CertError whose reason a caller can switch on (the control plane maps
// reasons to gRPC codes and to the denial reasons a data plane reports).

export type CertErrorReason =
  | 'malformed'
  | 'key-mismatch'
  | 'not-a-ca'
  | 'unsupported-key'
  | 'invalid-name'
  | 'invalid-argument'
  | 'bad-signature'
  | 'issuer-mismatch'
  | 'expired'
  | 'not-yet-valid'
  | 'wrong-purpose'
  | 'revoked';

export class CertError extends Error {
  override readonly name = 'CertError';
  constructor(
    readonly reason: CertErrorReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
