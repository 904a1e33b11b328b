// How a service method is written here: an async function from the decoded request and the
// authenticated caller to the response. server.ts turns these into grpc-js handlers (role check,
// error mapping, metrics) using the generated service definitions.

/** Who is calling, as established by the transport (server.ts). */
export type Caller =
  | { role: 'local' }
  | { role: 'admin'; identity: string; serial: string }
  | { role: 'dataplane'; name: string; serial: string }
  | { role: 'anonymous' };

export type Role = 'admin' | 'dataplane' | 'anyone';

interface MethodDefinition<Req, Res> {
  requestDeserialize: (b: Buffer) => Req;
  responseSerialize: (r: Res) => Buffer;
  responseStream: boolean;
}

/** Unary methods of a generated service definition as plain async functions. */
export type Unary<D> = {
  [
    K in keyof D as D[K] extends { responseStream: false } ? K : never
  ]: D[K] extends MethodDefinition<infer Req, infer Res>
    ? (req: Req, caller: Caller) => Promise<Res>
    : never;
};

export interface Sink<T> {
  write(message: T): void;
  /** Resolves when the caller goes away. */
  closed: Promise<void>;
}

/** Server-streaming methods: the implementation writes to `sink` until the caller cancels. */
export type Streaming<D> = {
  [
    K in keyof D as D[K] extends { responseStream: true } ? K : never
  ]: D[K] extends MethodDefinition<infer Req, infer Res>
    ? (req: Req, caller: Caller, sink: Sink<Res>) => Promise<void>
    : never;
};

export type Implementation<D> = Unary<D> & Streaming<D>;
