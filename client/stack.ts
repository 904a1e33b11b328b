// The production packet stack behind the client: QUIC (dataplane/quic) + HTTP/3 (dataplane/h3) +
// CONNECT-IP (dataplane/masque) as a TunnelTransport, and the TUN's packet I/O as a PacketDevice.
import { MasqueTransport } from './masque-transport.js';
import type { RunDeps } from './run.js';
import { ClientTunDevice } from './tun-device.js';

export function stackDeps(): Pick<RunDeps, 'createTransport' | 'openDevice'> {
  return {
    createTransport(settings) {
      return new MasqueTransport(settings);
    },
    openDevice(tun, mtu) {
      return ClientTunDevice.open(tun, mtu);
    },
  };
}
