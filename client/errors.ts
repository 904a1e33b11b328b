// Errors a person running masque-client can act on. Each carries one line that names the problem;
// the CLI prints exactly that line and exits 1 (EXIT_USER), never a stack trace. Anything that is
// not a ClientError is a bug and is reported as one.

export const EXIT_OK = 0;
/** Bad bundle, bad flag value, unreachable server, denied by the server. */
export const EXIT_USER = 1;
/** The command line itself is malformed (unknown option, missing argument). */
export const EXIT_USAGE = 2;

export class ClientError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClientError';
  }
}

/** The bundle file cannot be read, parsed or validated. `key` names the offending key when known. */
export class BundleError extends ClientError {
  readonly key: string | undefined;
  constructor(message: string, key?: string) {
    super(message);
    this.name = 'BundleError';
    this.key = key;
  }
}

/** A certificate or key in the bundle is unusable (unreadable, mismatched, expired, wrong issuer). */
export class CertificateError extends BundleError {
  constructor(message: string, key: string) {
    super(message, key);
    this.name = 'CertificateError';
  }
}

/** The server endpoint does not resolve (or not in time). */
export class ResolveError extends ClientError {
  readonly host: string;
  constructor(message: string, host: string) {
    super(message);
    this.name = 'ResolveError';
    this.host = host;
  }
}

/** A flag value is invalid (the flag was well-formed, its value is not). */
export class FlagError extends ClientError {
  readonly flag: string;
  constructor(message: string, flag: string) {
    super(message);
    this.name = 'FlagError';
    this.flag = flag;
  }
}

/** A system change (ip, resolv.conf) failed; carries the command that failed. */
export class NetConfigError extends ClientError {
  readonly command: string;
  constructor(message: string, command: string) {
    super(message);
    this.name = 'NetConfigError';
    this.command = command;
  }
}
