// Every failure an RPC returns is an ApiError carrying its gRPC status; lower layers throw their
// own typed errors and `toApiError` translates them once, at the service boundary, into messages a
// person can act on.
import { status } from '@grpc/grpc-js';
import { StoreConflictError, StoreNotFoundError } from '../store/store.js';
import { InvalidAddressError, InvalidCidrError, PoolExhaustedError } from '../pool/index.js';

export class ApiError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const invalidArgument = (message: string): ApiError =>
  new ApiError(status.INVALID_ARGUMENT, message);
export const notFound = (message: string): ApiError => new ApiError(status.NOT_FOUND, message);
export const alreadyExists = (message: string): ApiError =>
  new ApiError(status.ALREADY_EXISTS, message);
export const failedPrecondition = (message: string): ApiError =>
  new ApiError(status.FAILED_PRECONDITION, message);
export const permissionDenied = (message: string): ApiError =>
  new ApiError(status.PERMISSION_DENIED, message);
export const unauthenticated = (message: string): ApiError =>
  new ApiError(status.UNAUTHENTICATED, message);

const ENTITY_HINT: Record<string, string> = {
  user: 'list users with `vpnctl user list`',
  group: 'create it with `vpnctl group add NAME` or list groups with `vpnctl group list`',
  device: 'list devices with `vpnctl device list USER`',
  member: 'see `vpnctl group show NAME`',
  rule: 'list rules with `vpnctl policy list`',
  certificate: 'list certificates with `vpnctl cert list`',
  session: 'list sessions with `vpnctl session list`',
};

export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof StoreConflictError) {
    if (err.entity === 'user') {
      return alreadyExists(
        `user "${err.key}" already exists; pick another name, or export a new bundle with \`vpnctl config export ${err.key}\``,
      );
    }
    if (err.entity === 'member') return alreadyExists(`${err.key}: already a member`);
    return alreadyExists(`${err.entity} "${err.key}" already exists`);
  }
  if (err instanceof StoreNotFoundError) {
    const hint = ENTITY_HINT[err.entity];
    return notFound(`no ${err.entity} "${err.key}"${hint ? `; ${hint}` : ''}`);
  }
  if (err instanceof PoolExhaustedError) {
    return new ApiError(
      status.RESOURCE_EXHAUSTED,
      `${err.message}; remove unused devices or configure a larger pool`,
    );
  }
  if (err instanceof InvalidCidrError || err instanceof InvalidAddressError) {
    return invalidArgument(err.message);
  }
  const message = err instanceof Error ? err.message : String(err);
  return new ApiError(status.INTERNAL, `internal error: ${message}`);
}
