// @peculiar/x509, made ready to use: its dependency injection (tsyringe) needs the Reflect
// metadata polyfill loaded first, and it must sign with Node's WebCrypto. Every module in cert/
// imports the library through here, never directly, so the order cannot go wrong.

import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export * from '@peculiar/x509';
