// `masque-client status`: the running client answers on a local unix socket (mode 0600, in a
// 0700 directory: the figures include addresses and the server, and only root or the owner
// should read them). One JSON request per line, one JSON response per line.
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { ClientError } from './errors.js';
import type { ClientState, SupervisorSnapshot } from './supervisor.js';
import type { FecStats } from './transport.js';

export const STATUS_VERSION = 1;

/** What `status --json` prints; stable field names for scripts. */
export interface ClientStatus {
  readonly version: number;
  readonly pid: number;
  readonly tun: string;
  readonly identity: string | undefined;
  readonly server: { readonly name: string; readonly endpoints: readonly string[] };
  readonly state: ClientState;
  readonly stateSince: string;
  /** Seconds the current tunnel has been up; 0 unless up. */
  readonly uptimeSeconds: number;
  /** Seconds since the client started. */
  readonly runningSeconds: number;
  readonly addresses: readonly string[];
  readonly routes: readonly string[];
  readonly bytesSent: number;
  readonly bytesReceived: number;
  readonly packetsSent: number;
  readonly packetsReceived: number;
  readonly droppedWhileDown: number;
  readonly rttMs: number | null;
  readonly lossRatio: number | null;
  readonly reconnects: number;
  readonly failedAttempts: number;
  readonly lastError: string | null;
  readonly deniedReason: string | null;
  readonly nextAttemptInSeconds: number | null;
  readonly fec: FecStats | null;
}

export interface StatusInfo {
  readonly tun: string;
  readonly identity: string | undefined;
  readonly serverName: string;
  readonly endpoints: readonly string[];
}

export function buildStatus(snap: SupervisorSnapshot, info: StatusInfo, now: number): ClientStatus {
  const seconds = (from: number | undefined): number =>
    from === undefined ? 0 : Math.max(0, Math.round((now - from) / 1000));
  return {
    version: STATUS_VERSION,
    pid: process.pid,
    tun: info.tun,
    identity: info.identity,
    server: { name: info.serverName, endpoints: info.endpoints },
    state: snap.state,
    stateSince: new Date(snap.stateSince).toISOString(),
    uptimeSeconds: seconds(snap.connectedAt),
    runningSeconds: seconds(snap.startedAt),
    addresses: snap.addresses,
    routes: snap.routes,
    bytesSent: snap.traffic.bytesSent,
    bytesReceived: snap.traffic.bytesReceived,
    packetsSent: snap.traffic.packetsSent,
    packetsReceived: snap.traffic.packetsReceived,
    droppedWhileDown: snap.droppedWhileDown,
    rttMs: snap.rttMs ?? null,
    lossRatio: snap.lossRatio ?? null,
    reconnects: snap.reconnects,
    failedAttempts: snap.failedAttempts,
    lastError: snap.lastError ?? null,
    deniedReason: snap.deniedReason ?? null,
    nextAttemptInSeconds:
      snap.nextAttemptAt === undefined ? null : Math.max(0, (snap.nextAttemptAt - now) / 1000),
    fec: snap.fec ?? null,
  };
}

function duration(totalSeconds: number): string {
  const d = Math.floor(totalSeconds / 86400);
  const h = Math.floor((totalSeconds % 86400) / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  const s = totalSeconds % 60;
  if (d > 0) return `${d}d${h}h${String(m).padStart(2, '0')}m`;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m${String(s).padStart(2, '0')}s`;
  return `${s}s`;
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** The human summary `masque-client status` prints. */
export function formatStatus(s: ClientStatus): string {
  const rows: [string, string][] = [];
  let headline: string = s.state;
  if (s.state === 'up') headline = `up for ${duration(s.uptimeSeconds)}`;
  if (s.state === 'reconnecting' && s.nextAttemptInSeconds !== null) {
    headline = `reconnecting (next attempt in ${s.nextAttemptInSeconds.toFixed(1)} s)`;
  }
  if (s.state === 'denied') headline = `denied: ${s.deniedReason ?? 'no reason given'}`;
  rows.push(['state', headline]);
  rows.push(['server', `${s.server.name} (${s.server.endpoints.join(', ')})`]);
  if (s.identity) rows.push(['device', s.identity]);
  rows.push(['tun', s.tun]);
  rows.push(['addresses', s.addresses.length ? s.addresses.join(', ') : 'none']);
  rows.push(['routes', s.routes.length ? s.routes.join(', ') : 'none']);
  rows.push(['sent', `${bytes(s.bytesSent)} in ${s.packetsSent} packets`]);
  rows.push(['received', `${bytes(s.bytesReceived)} in ${s.packetsReceived} packets`]);
  if (s.droppedWhileDown > 0) rows.push(['dropped', `${s.droppedWhileDown} packets while down`]);
  rows.push(['rtt', s.rttMs === null ? 'n/a' : `${s.rttMs.toFixed(1)} ms`]);
  rows.push(['loss', s.lossRatio === null ? 'n/a' : `${(s.lossRatio * 100).toFixed(2)} %`]);
  rows.push(['reconnects', `${s.reconnects} (failed attempts: ${s.failedAttempts})`]);
  rows.push(['running', duration(s.runningSeconds)]);
  if (s.fec) {
    rows.push([
      'fec',
      `${s.fec.scheme}: repair sent ${s.fec.repairSent}, received ${s.fec.repairReceived}, ` +
        `recovered ${s.fec.recovered}, unrecoverable ${s.fec.unrecoverable}` +
        (s.fec.ratio === undefined
          ? ''
          : `, ratio ${(s.fec.ratio * 100).toFixed(0)} %, overhead ${bytes(s.fec.overheadBytes ?? 0)}`),
    ]);
  } else {
    rows.push(['fec', 'off']);
  }
  if (s.lastError && s.state !== 'up') rows.push(['last error', s.lastError]);
  const width = Math.max(...rows.map(([k]) => k.length)) + 1;
  return rows.map(([k, v]) => `${`${k}:`.padEnd(width + 1)}${v}`).join('\n') + '\n';
}

interface Request {
  command?: unknown;
}

/** The running client's side of the socket. */
export class ControlServer {
  readonly #server: Server;
  readonly path: string;

  private constructor(server: Server, path: string) {
    this.#server = server;
    this.path = path;
  }

  /** Listens on `path`, replacing a stale socket; refuses if another client answers there. */
  static async listen(path: string, provide: () => ClientStatus): Promise<ControlServer> {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    if (await answers(path)) {
      throw new ClientError(`another masque-client is already listening on ${path}`);
    }
    rmSync(path, { force: true });
    const server = createServer((socket) => serve(socket, provide));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    chmodSync(path, 0o600);
    return new ControlServer(server, path);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    rmSync(this.path, { force: true });
  }
}

function serve(socket: Socket, provide: () => ClientStatus): void {
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    // A request is a few dozen bytes; anything this large is not a client of ours.
    if (buffered.length > 4096) return void socket.destroy();
    const newline = buffered.indexOf('\n');
    if (newline < 0) return;
    const line = buffered.slice(0, newline);
    let response: object;
    try {
      const request = JSON.parse(line) as Request;
      response =
        request.command === 'status'
          ? { ok: true, status: provide() }
          : { ok: false, error: `unknown command ${JSON.stringify(request.command)}` };
    } catch {
      response = { ok: false, error: 'request is not JSON' };
    }
    socket.end(`${JSON.stringify(response)}\n`);
  });
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Asks the client on `path` for its status. Failures are one-line ClientErrors. */
export function queryStatus(path: string, timeoutMs = 3000): Promise<ClientStatus> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let buffered = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ClientError(`masque-client on ${path} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.once('connect', () => socket.write('{"command":"status"}\n'));
    socket.on('data', (chunk: string) => (buffered += chunk));
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why =
        err.code === 'ENOENT'
          ? `no masque-client is running (no control socket at ${path})`
          : err.code === 'ECONNREFUSED'
            ? `no masque-client is running (stale control socket ${path})`
            : err.code === 'EACCES'
              ? `permission denied on ${path} (run as root or as the client's user)`
              : `cannot reach masque-client on ${path}: ${err.code ?? err.message}`;
      reject(new ClientError(why));
    });
    socket.once('end', () => {
      clearTimeout(timer);
      try {
        const response = JSON.parse(buffered) as {
          ok: boolean;
          status?: ClientStatus;
          error?: string;
        };
        if (response.ok && response.status) resolve(response.status);
        else reject(new ClientError(`masque-client on ${path}: ${response.error ?? 'bad answer'}`));
      } catch {
        reject(new ClientError(`masque-client on ${path} sent an unreadable answer`));
      }
    });
  });
}
