// The production packet stack behind the client. TUN packet I/O is TunPacketIo (tun-io.ts). The
// transport — QUIC (dataplane/quic) + HTTP/3 (dataplane/h3) + CONNECT-IP (dataplane/masque) as a
// TunnelTransport — is the lead engineer's wiring step; until it lands a run stops here with a
// clear message, after the bundle and flags were fully validated and before the host is changed.
import { ClientError } from './errors.js';
import type { RunDeps } from './run.js';
import { TunPacketIo } from './tun-io.js';

export function stackDeps(): Pick<RunDeps, 'createTransport' | 'openDevice'> {
  return {
    createTransport() {
      throw new ClientError(
        'the CONNECT-IP transport is not wired into this build of masque-client yet (client/stack.ts)',
      );
    },
    async openDevice(tun) {
      return TunPacketIo.attach(tun);
    },
  };
}
