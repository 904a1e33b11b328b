// The UDP echo responder behind the server's TUN, run by the benchmark inside the server namespace:
//   node udp-echo.js HOST PORT
// Sends every datagram back to where it came from, unchanged. It binds to the data plane's tunnel
// address, so its replies leave through the TUN and the tunnel like any server application's.
import { createSocket } from 'node:dgram';

function serve(host: string, port: number): void {
  const socket = createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
  let echoed = 0;
  socket.on('message', (msg, from) => {
    socket.send(msg, from.port, from.address);
    echoed++;
  });
  socket.on('error', (err) => {
    process.stderr.write(`udp echo: ${err.message}\n`);
    process.exit(1);
  });
  socket.bind(port, host, () => process.stdout.write(`udp echo ready on ${host}:${port}\n`));
  process.on('SIGTERM', () => {
    process.stdout.write(`udp echo: ${echoed} datagrams echoed\n`);
    process.exit(0);
  });
}

const [host, port] = process.argv.slice(2);
if (process.argv[1]?.endsWith('udp-echo.js')) {
  if (host === undefined || port === undefined || !/^\d+$/.test(port)) {
    process.stderr.write('usage: udp-echo.js HOST PORT\n');
    process.exit(2);
  }
  serve(host, Number(port));
}
