// vpnctl: the control plane's admin CLI. `run(argv, io)` returns the exit code: 0 done, 1 the
// control plane (or the request) said no, 2 the command line was wrong.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { status } from '@grpc/grpc-js';
import QRCode from 'qrcode';
import { ControlClient, isServiceError, type TlsOptions } from '../client.js';
import { PolicyAction } from '../../proto/gen/masque/v1/common.js';
import type { Device, PolicyRule, User } from '../../proto/gen/masque/v1/common.js';
import type { ConfigBundle } from '../../proto/gen/masque/v1/bundles.js';
import { CertificateKind } from '../../proto/gen/masque/v1/certificates.js';
import { bytes, since, table, when } from './format.js';

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

const DEFAULT_CONTROL = 'unix:./var/mq/control.sock';

/** A mistake on the command line found after parsing (exit 2). */
class UsageError extends Error {}

interface GlobalOptions {
  control: string;
  json: boolean;
  ca?: string;
  cert?: string;
  key?: string;
  serverName?: string;
  timeout: string;
}

const PROTOCOLS: Record<string, number> = {
  any: 0,
  icmp: 1,
  tcp: 6,
  udp: 17,
  icmpv6: 58,
  sctp: 132,
};

function actionName(a: PolicyAction): string {
  return a === PolicyAction.POLICY_ACTION_ALLOW
    ? 'allow'
    : a === PolicyAction.POLICY_ACTION_DENY
      ? 'deny'
      : '?';
}

function protocolName(p: number): string {
  return Object.entries(PROTOCOLS).find(([, n]) => n === p)?.[0] ?? String(p);
}

function parseAction(text: string): PolicyAction {
  if (text === 'allow') return PolicyAction.POLICY_ACTION_ALLOW;
  if (text === 'deny') return PolicyAction.POLICY_ACTION_DENY;
  throw new UsageError(`action must be allow or deny, not ${JSON.stringify(text)}`);
}

function parseProtocol(text: string): number {
  const named = PROTOCOLS[text.toLowerCase()];
  if (named !== undefined) return named;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 255) {
    throw new UsageError(
      `unknown protocol ${JSON.stringify(text)}: use tcp, udp, icmp, icmpv6 or 0-255`,
    );
  }
  return n;
}

function parsePorts(text: string): [number, number] {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!m) throw new UsageError(`invalid port ${JSON.stringify(text)}: use PORT or LOW-HIGH`);
  const from = Number(m[1]);
  return [from, m[2] === undefined ? from : Number(m[2])];
}

function parseInteger(name: string) {
  return (text: string): number => {
    const n = Number(text);
    if (!Number.isInteger(n))
      throw new UsageError(`${name} must be an integer, not ${JSON.stringify(text)}`);
    return n;
  };
}

function rulesTable(rules: PolicyRule[]): string {
  return table(
    ['ID', 'PRIO', 'GROUP', 'ACTION', 'PREFIX', 'PROTO', 'PORTS', 'DESCRIPTION'],
    rules.map((r) => [
      String(r.id),
      String(r.priority),
      r.group,
      actionName(r.action),
      r.prefix,
      protocolName(r.protocol),
      r.portFrom === 0
        ? '*'
        : r.portFrom === r.portTo
          ? String(r.portFrom)
          : `${r.portFrom}-${r.portTo}`,
      r.description,
    ]),
  );
}

function devicesTable(devices: Device[]): string {
  return table(
    ['USER', 'DEVICE', 'IPV4', 'IPV6', 'STATE', 'CERT SERIAL', 'CERT EXPIRES', 'LAST SEEN'],
    devices.map((d) => [
      d.user,
      d.name,
      d.ipv4 || '-',
      d.ipv6 || '-',
      d.revoked ? 'revoked' : 'active',
      d.certSerial || '-',
      when(d.certNotAfterMs),
      when(d.lastSeenMs),
    ]),
  );
}

function userText(u: User): string {
  const head = [
    `user:     ${u.name}${u.displayName ? ` (${u.displayName})` : ''}`,
    `state:    ${u.disabled ? 'disabled' : 'enabled'}`,
    `groups:   ${u.groups.length ? u.groups.join(', ') : '-'}`,
    `created:  ${when(u.createdAtMs)}`,
    '',
  ].join('\n');
  return head + (u.devices.length ? devicesTable(u.devices) : 'no devices\n');
}

/** Builds the program; `act` wraps every action with connection handling and output. */
function program(io: Io, exit: { code: number }): Command {
  const clients: ControlClient[] = [];
  const connect = (g: GlobalOptions): ControlClient => {
    let tls: TlsOptions | undefined;
    if (!g.control.startsWith('unix:')) {
      if (g.ca === undefined) {
        throw new UsageError(
          `--control ${g.control} is TCP: pass --ca FILE (and --cert/--key with an admin certificate), or use unix:PATH`,
        );
      }
      tls = { caPem: readFileSync(g.ca, 'utf8'), serverName: g.serverName };
      if (g.cert !== undefined) tls.certPem = readFileSync(g.cert, 'utf8');
      if (g.key !== undefined) tls.keyPem = readFileSync(g.key, 'utf8');
    } else {
      const path = resolve(g.control.slice('unix:'.length));
      if (!existsSync(path)) {
        throw new ReachError(`control plane not reachable at ${g.control}: no socket at ${path}`);
      }
    }
    const c = new ControlClient({ address: g.control, tls, deadlineMs: Number(g.timeout) * 1000 });
    clients.push(c);
    return c;
  };

  type Action<A extends unknown[]> = (
    c: ControlClient,
    g: GlobalOptions,
    ...args: A
  ) => Promise<{ json: unknown; text: string }>;

  const act =
    <A extends unknown[]>(fn: Action<A>) =>
    async (...args: unknown[]): Promise<void> => {
      const cmd = args[args.length - 1] as Command;
      const g = cmd.optsWithGlobals<GlobalOptions>();
      try {
        const c = connect(g);
        const res = await fn(c, g, ...(args.slice(0, -1) as A));
        io.out(g.json ? `${JSON.stringify(res.json, null, 2)}\n` : res.text);
        exit.code = 0;
      } catch (err) {
        exit.code = report(err, g, io);
      } finally {
        for (const c of clients.splice(0)) c.close();
      }
    };

  const root = new Command('vpnctl')
    .description('administer a masque-vpn control plane')
    .addOption(
      new Option('--control <target>', 'control plane: unix:PATH or HOST:PORT (mTLS)').default(
        DEFAULT_CONTROL,
      ),
    )
    .option('--json', 'machine-readable output', false)
    .option('--ca <file>', 'CA certificate (PEM) to check a TCP control plane')
    .option('--cert <file>', 'admin client certificate (PEM) for TCP')
    .option('--key <file>', 'admin client key (PEM) for TCP')
    .option('--server-name <name>', 'name in the control plane certificate (TCP)')
    .option('--timeout <seconds>', 'per-call deadline', '30')
    .showHelpAfterError('(add --help for usage)');

  // --- user ---
  const user = root.command('user').description('users: add, list, show, disable, enable, remove');
  user
    .command('add <name>')
    .description('create a user and its first device, allocate addresses, write its bundle')
    .option(
      '--group <group>',
      'join a group (repeatable)',
      (v: string, p: string[]) => [...p, v],
      [],
    )
    .option('--device <name>', 'name of the first device', 'default')
    .option('--display-name <text>', 'a human name', '')
    .option('--out <file>', 'where to write the bundle (default NAME.toml)')
    .action(
      act(
        async (
          c,
          _g,
          name: string,
          o: { group: string[]; device: string; displayName: string; out?: string },
        ) => {
          const res = await c.users.addUser({
            name,
            groups: o.group,
            deviceName: o.device,
            displayName: o.displayName,
            bundle: true,
          });
          const file = writeBundle(res.bundle as ConfigBundle, o.out);
          return {
            json: { user: res.user, device: res.device, bundle: file },
            text:
              `added user ${name} (device ${res.device?.name})\n` +
              `  addresses: ${[res.device?.ipv4, res.device?.ipv6].filter(Boolean).join(', ')}\n` +
              `  bundle:    ${file} (contains the private key; keep it secret)\n` +
              `  connect:   masque-client --config ${file}\n`,
          };
        },
      ),
    );
  user
    .command('list')
    .description('list users')
    .option('--group <group>', 'only members of this group', '')
    .option('--filter <text>', 'only names containing text', '')
    .option('--all', 'include disabled users', false)
    .action(
      act(async (c, _g, o: { group: string; filter: string; all: boolean }) => {
        const users: User[] = [];
        let pageToken = '';
        do {
          const page = await c.users.listUsers({
            pageSize: 500,
            pageToken,
            group: o.group,
            nameContains: o.filter,
            includeDisabled: o.all,
          });
          users.push(...page.users);
          pageToken = page.nextPageToken;
        } while (pageToken !== '');
        return {
          json: users,
          text:
            table(
              ['USER', 'STATE', 'GROUPS', 'DEVICES', 'ADDRESSES', 'CREATED'],
              users.map((u) => [
                u.name,
                u.disabled ? 'disabled' : 'enabled',
                u.groups.join(',') || '-',
                String(u.devices.filter((d) => !d.revoked).length),
                u.devices
                  .filter((d) => !d.revoked)
                  .flatMap((d) => [d.ipv4, d.ipv6])
                  .filter(Boolean)
                  .join(' ') || '-',
                when(u.createdAtMs),
              ]),
            ) || 'no users; add one with `vpnctl user add NAME`\n',
        };
      }),
    );
  user
    .command('show <name>')
    .description('a user with its devices, addresses and certificates')
    .action(
      act(async (c, _g, name: string) => {
        const u = await c.users.getUser({ name });
        return { json: u, text: userText(u) };
      }),
    );
  for (const [verb, text] of [
    ['disable', 'refuse new tunnels of the user and close its live ones'],
    ['enable', 'let a disabled user connect again'],
  ] as const) {
    user
      .command(`${verb} <name>`)
      .description(text)
      .action(
        act(async (c, _g, name: string) => {
          const u =
            verb === 'disable'
              ? await c.users.disableUser({ name })
              : await c.users.enableUser({ name });
          return { json: u, text: `user ${name} ${verb}d\n` };
        }),
      );
  }
  user
    .command('remove <name>')
    .description(
      'delete a user: revokes its certificates, frees its addresses, closes its sessions',
    )
    .action(
      act(async (c, _g, name: string) => {
        await c.users.removeUser({ name });
        return { json: { removed: name }, text: `user ${name} removed\n` };
      }),
    );

  // --- device ---
  const device = root.command('device').description('devices of a user: add, list, revoke');
  device
    .command('add <user> <name>')
    .description('add a device to a user and write its bundle')
    .option('--out <file>', 'where to write the bundle (default USER-NAME.toml)')
    .action(
      act(async (c, _g, userName: string, name: string, o: { out?: string }) => {
        const res = await c.devices.addDevice({ user: userName, name, bundle: true });
        const file = writeBundle(res.bundle as ConfigBundle, o.out);
        return {
          json: { device: res.device, bundle: file },
          text:
            `added device ${userName}/${name}\n` +
            `  addresses: ${[res.device?.ipv4, res.device?.ipv6].filter(Boolean).join(', ')}\n` +
            `  bundle:    ${file}\n`,
        };
      }),
    );
  device
    .command('list [user]')
    .description('list devices (of one user, or all)')
    .option('--all', 'include revoked devices', false)
    .action(
      act(async (c, _g, userName: string | undefined, o: { all: boolean }) => {
        const res = await c.devices.listDevices({ user: userName ?? '', includeRevoked: o.all });
        return { json: res.devices, text: devicesTable(res.devices) || 'no devices\n' };
      }),
    );
  device
    .command('revoke <user> <device>')
    .description('revoke a device: its certificates, addresses and sessions')
    .option('--reason <text>', 'recorded with the revocation', '')
    .action(
      act(async (c, _g, userName: string, name: string, o: { reason: string }) => {
        const d = await c.devices.revokeDevice({ user: userName, device: name, reason: o.reason });
        return { json: d, text: `device ${userName}/${name} revoked\n` };
      }),
    );

  // --- config ---
  const config = root.command('config').description('client config bundles');
  config
    .command('export <user>')
    .description(
      'issue a new certificate for a device and write its bundle (revokes the previous one)',
    )
    .option('--device <name>', 'the device (needed when the user has several)', '')
    .option('--out <file>', 'where to write the bundle (default USER.toml)')
    .option(
      '--csr <file>',
      'sign this CSR instead of generating a key (the bundle then has no key)',
    )
    .option('--qr', 'also print the masque:// URI as a QR code in the terminal', false)
    .option('--qr-png <file>', 'also write the QR code as a PNG image')
    .action(
      act(
        async (
          c,
          g,
          userName: string,
          o: { device: string; out?: string; csr?: string; qr: boolean; qrPng?: string },
        ) => {
          const csrPem = o.csr === undefined ? '' : readFileSync(o.csr, 'utf8');
          const b = await c.bundles.exportBundle({ user: userName, device: o.device, csrPem });
          const file = writeBundle(b, o.out);
          let text =
            `bundle for ${b.user}/${b.device} written to ${file}\n` +
            `  certificate: ${b.certSerial}${b.revokedSerial ? ` (revoked the previous ${b.revokedSerial})` : ''}\n` +
            `  addresses:   ${[b.ipv4, b.ipv6].filter(Boolean).join(', ')}\n`;
          if (o.qrPng !== undefined) {
            await QRCode.toFile(o.qrPng, b.uri, { errorCorrectionLevel: 'L' });
            text += `  QR code:     ${o.qrPng}\n`;
          }
          if (o.qr && !g.json) {
            text += `\n${await QRCode.toString(b.uri, { type: 'terminal', small: true, errorCorrectionLevel: 'L' })}\n`;
          }
          return { json: { ...b, toml: undefined, file }, text };
        },
      ),
    );

  // --- session ---
  const session = root.command('session').description('live sessions: list, kick');
  session
    .command('list')
    .description('live sessions with their traffic figures')
    .option('--user <name>', 'only this user', '')
    .action(
      act(async (c, _g, o: { user: string }) => {
        const res = await c.sessions.listSessions({ user: o.user });
        return {
          json: res.sessions,
          text:
            table(
              ['SESSION', 'USER', 'DEVICE', 'ADDRESSES', 'FROM', 'UP', 'IN', 'OUT', 'RTT', 'LOSS'],
              res.sessions.map((s) => [
                s.id,
                s.user,
                s.device,
                s.addresses.join(' '),
                s.remoteAddress || '-',
                since(s.startedAtMs),
                bytes(s.stats?.bytesIn ?? 0),
                bytes(s.stats?.bytesOut ?? 0),
                `${(s.stats?.rttMs ?? 0).toFixed(1)}ms`,
                `${((s.stats?.loss ?? 0) * 100).toFixed(2)}%`,
              ]),
            ) || 'no live sessions\n',
        };
      }),
    );
  session
    .command('kick [session]')
    .description('close a session (by id) or every session of --user')
    .option('--user <name>', 'kick all sessions of this user', '')
    .option('--reason <text>', 'sent to the data plane', '')
    .action(
      act(async (c, _g, id: string | undefined, o: { user: string; reason: string }) => {
        if ((id === undefined) === (o.user === '')) {
          throw new UsageError('give a session id or --user NAME (one of them)');
        }
        const res = await c.sessions.kickSession({
          sessionId: id ?? '',
          user: o.user,
          reason: o.reason,
        });
        return { json: res, text: `kicked ${res.kicked} session${res.kicked === 1 ? '' : 's'}\n` };
      }),
    );

  // --- group ---
  const group = root.command('group').description('groups and their members');
  group
    .command('add <name>')
    .description('create a group')
    .option('--description <text>', '', '')
    .action(
      act(async (c, _g, name: string, o: { description: string }) => {
        const g = await c.groups.createGroup({ name, description: o.description });
        return { json: g, text: `group ${name} created\n` };
      }),
    );
  group
    .command('list')
    .description('list groups')
    .action(
      act(async (c) => {
        const res = await c.groups.listGroups({});
        return {
          json: res.groups,
          text:
            table(
              ['GROUP', 'MEMBERS', 'DESCRIPTION'],
              res.groups.map((g) => [g.name, g.members.join(',') || '-', g.description]),
            ) || 'no groups; create one with `vpnctl group add NAME`\n',
        };
      }),
    );
  group
    .command('show <name>')
    .description('a group, its members and its rules')
    .action(
      act(async (c, _g, name: string) => {
        const g = await c.groups.getGroup({ name });
        const rules = await c.policies.listRules({ group: name });
        return {
          json: { ...g, rules: rules.rules },
          text:
            `group:    ${g.name}${g.description ? ` (${g.description})` : ''}\n` +
            `members:  ${g.members.join(', ') || '-'}\n\n` +
            (rulesTable(rules.rules) || 'no rules\n'),
        };
      }),
    );
  group
    .command('remove <name>')
    .description('delete a group with its rules and memberships')
    .action(
      act(async (c, _g, name: string) => {
        await c.groups.deleteGroup({ name });
        return { json: { removed: name }, text: `group ${name} removed\n` };
      }),
    );
  group
    .command('add-member <group> <user>')
    .description('add a user to a group')
    .action(
      act(async (c, _g, g: string, u: string) => {
        const res = await c.groups.addMember({ group: g, user: u });
        return { json: res, text: `${u} added to ${g}\n` };
      }),
    );
  group
    .command('remove-member <group> <user>')
    .description('remove a user from a group')
    .action(
      act(async (c, _g, g: string, u: string) => {
        const res = await c.groups.removeMember({ group: g, user: u });
        return { json: res, text: `${u} removed from ${g}\n` };
      }),
    );

  // --- policy ---
  const policy = root
    .command('policy')
    .description(
      'access rules: ascending priority, deny before allow at equal priority, first match wins; no match: the default action',
    );
  policy
    .command('add <group> <action> <prefix>')
    .description("add a rule for GROUP ('*' = everyone): allow|deny PREFIX")
    .option('--protocol <proto>', 'tcp, udp, icmp, icmpv6 or a number (default any)', 'any')
    .option('--port <port>', 'PORT or LOW-HIGH (tcp/udp only)')
    .option('--priority <n>', 'lower is evaluated first', '100')
    .option('--description <text>', '', '')
    .action(
      act(
        async (
          c,
          _g,
          g: string,
          action: string,
          prefix: string,
          o: { protocol: string; port?: string; priority: string; description: string },
        ) => {
          const [portFrom, portTo] = o.port === undefined ? [0, 0] : parsePorts(o.port);
          const rule = await c.policies.addRule({
            group: g,
            action: parseAction(action),
            prefix,
            protocol: parseProtocol(o.protocol),
            portFrom,
            portTo,
            priority: parseInteger('--priority')(o.priority),
            description: o.description,
          });
          return { json: rule, text: `rule ${rule.id} added\n${rulesTable([rule])}` };
        },
      ),
    );
  policy
    .command('list')
    .description('list rules in evaluation order')
    .option('--group <group>', "only this group's rules ('*' for the global ones)", '')
    .action(
      act(async (c, _g, o: { group: string }) => {
        const res = await c.policies.listRules({ group: o.group });
        return {
          json: { rules: res.rules, defaultAction: actionName(res.defaultAction) },
          text:
            (rulesTable(res.rules) || 'no rules\n') +
            `default: ${actionName(res.defaultAction)} (when no rule matches)\n`,
        };
      }),
    );
  policy
    .command('remove <id>')
    .description('remove a rule by id')
    .action(
      act(async (c, _g, id: string) => {
        await c.policies.removeRule({ id: parseInteger('rule id')(id) });
        return { json: { removed: Number(id) }, text: `rule ${id} removed\n` };
      }),
    );
  policy
    .command('default [action]')
    .description('show or set the default action (allow|deny) when no rule matches')
    .action(
      act(async (c, _g, action: string | undefined) => {
        const res =
          action === undefined
            ? await c.policies.getDefaultAction({})
            : await c.policies.setDefaultAction({ action: parseAction(action) });
        return {
          json: { defaultAction: actionName(res.action) },
          text: `default: ${actionName(res.action)}\n`,
        };
      }),
    );
  policy
    .command('show <user>')
    .description("a user's effective rules and routes")
    .action(
      act(async (c, _g, u: string) => {
        const p = await c.policies.getEffectivePolicy({ user: u });
        return {
          json: { ...p, defaultAction: actionName(p.defaultAction) },
          text:
            (rulesTable(p.rules) || 'no rules\n') +
            `default: ${actionName(p.defaultAction)}\nroutes:  ${p.routes.join(', ') || '-'}\n`,
        };
      }),
    );

  // --- pool ---
  const pool = root.command('pool').description('address pools');
  pool
    .command('show')
    .description('pools, server addresses and usage')
    .action(
      act(async (c) => {
        const res = await c.pool.showPools({});
        return {
          json: res.pools,
          text: table(
            ['POOL', 'SERVER', 'LEASED', 'AVAILABLE', 'CAPACITY'],
            res.pools.map((p) => [p.cidr, p.serverAddress, p.allocated, p.available, p.capacity]),
          ),
        };
      }),
    );
  pool
    .command('leases')
    .description('addresses held by devices')
    .option('--pool <cidr>', 'only this pool', '')
    .action(
      act(async (c, _g, o: { pool: string }) => {
        const all = [];
        let pageToken = '';
        do {
          const page = await c.pool.listLeases({ pool: o.pool, pageSize: 1000, pageToken });
          all.push(...page.leases);
          pageToken = page.nextPageToken;
        } while (pageToken !== '');
        return {
          json: all,
          text:
            table(
              ['ADDRESS', 'USER', 'DEVICE', 'SINCE'],
              all.map((l) => [l.address, l.user, l.device, when(l.allocatedAtMs)]),
            ) || 'no leases\n',
        };
      }),
    );

  // --- cert ---
  const cert = root.command('cert').description('the CA and issued certificates');
  cert
    .command('ca')
    .description('print the CA certificate (PEM)')
    .action(
      act(async (c) => {
        const ca = await c.certificates.getCa({});
        return { json: ca, text: ca.caPem };
      }),
    );
  cert
    .command('list')
    .description('issued certificates')
    .option('--user <name>', 'only this user', '')
    .option('--all', 'include revoked', false)
    .action(
      act(async (c, _g, o: { user: string; all: boolean }) => {
        const res = await c.certificates.listCertificates({ user: o.user, includeRevoked: o.all });
        const kinds: Record<number, string> = {
          [CertificateKind.CERTIFICATE_KIND_CLIENT]: 'client',
          [CertificateKind.CERTIFICATE_KIND_SERVER]: 'server',
          [CertificateKind.CERTIFICATE_KIND_ADMIN]: 'admin',
          [CertificateKind.CERTIFICATE_KIND_DATAPLANE]: 'dataplane',
        };
        return {
          json: res.certificates,
          text:
            table(
              ['SERIAL', 'KIND', 'SUBJECT', 'EXPIRES', 'STATE'],
              res.certificates.map((x) => [
                x.serial,
                kinds[x.kind] ?? '?',
                x.subjectCn,
                when(x.notAfterMs),
                x.revoked ? `revoked ${when(x.revokedAtMs)} (${x.revocationReason})` : 'valid',
              ]),
            ) || 'no certificates\n',
        };
      }),
    );
  cert
    .command('revoke <serial>')
    .description('revoke a certificate by serial (hex)')
    .option('--reason <text>', '', '')
    .action(
      act(async (c, _g, serial: string, o: { reason: string }) => {
        const x = await c.certificates.revokeCertificate({ serial, reason: o.reason });
        return { json: x, text: `certificate ${x.serial} (${x.subjectCn}) revoked\n` };
      }),
    );
  cert
    .command('admin <name>')
    .description(
      'issue an admin certificate for remote vpnctl over TCP (writes NAME.crt, NAME.key, ca.crt)',
    )
    .option('--out-dir <dir>', 'where to write the files', '.')
    .action(
      act(async (c, _g, name: string, o: { outDir: string }) => {
        const res = await c.certificates.issueAdminCertificate({ name });
        const base = resolve(o.outDir);
        writeFileSync(`${base}/${name}.crt`, res.certPem);
        writeFileSync(`${base}/${name}.key`, res.keyPem, { mode: 0o600 });
        writeFileSync(`${base}/ca.crt`, res.caPem);
        return {
          json: { certificate: res.certificate, dir: base },
          text: `admin certificate for ${name} written to ${base}/${name}.crt and .key (CA: ca.crt)\n`,
        };
      }),
    );
  cert
    .command('crl')
    .description('print the certificate revocation list (PEM)')
    .action(
      act(async (c) => {
        const res = await c.certificates.getCrl({});
        return { json: res, text: res.crlPem };
      }),
    );

  // --- dataplane ---
  const dp = root.command('dataplane').description('data planes');
  dp.command('token')
    .description('a one-time token for a data plane joining over TCP')
    .option('--minutes <n>', 'validity', '60')
    .action(
      act(async (c, _g, o: { minutes: string }) => {
        const res = await c.dataplane.createJoinToken({
          validMinutes: parseInteger('--minutes')(o.minutes),
        });
        return {
          json: res,
          text: `${res.token}\n(valid until ${when(res.expiresAtMs)}, single use)\n`,
        };
      }),
    );

  return root;
}

class ReachError extends Error {}

function writeBundle(bundle: ConfigBundle, out: string | undefined): string {
  const file = resolve(out ?? bundle.fileName);
  writeFileSync(file, bundle.toml, { mode: 0o600 });
  return out ?? bundle.fileName;
}

const CODE_NAMES: Record<number, string> = {
  [status.INVALID_ARGUMENT]: 'invalid argument',
  [status.NOT_FOUND]: 'not found',
  [status.ALREADY_EXISTS]: 'already exists',
  [status.PERMISSION_DENIED]: 'permission denied',
  [status.UNAUTHENTICATED]: 'not authenticated',
  [status.RESOURCE_EXHAUSTED]: 'exhausted',
  [status.FAILED_PRECONDITION]: 'not possible now',
};

function report(err: unknown, g: GlobalOptions, io: Io): number {
  if (err instanceof UsageError) {
    io.err(`vpnctl: ${err.message}\n`);
    return 2;
  }
  if (err instanceof ReachError) {
    io.err(
      `vpnctl: ${err.message} (is \`controlplane\` running? start it with \`npx controlplane\`, or pass --control)\n`,
    );
    return 1;
  }
  if (isServiceError(err)) {
    if (err.code === status.UNAVAILABLE || err.code === status.DEADLINE_EXCEEDED) {
      io.err(
        `vpnctl: control plane not reachable at ${g.control} (${err.details}); is \`controlplane\` running? start it with \`npx controlplane\`, or pass --control\n`,
      );
    } else {
      const what = CODE_NAMES[err.code] ?? status[err.code];
      io.err(`vpnctl: ${err.details} (${what})\n`);
    }
    return 1;
  }
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT' || e?.code === 'EACCES' || e?.code === 'EISDIR') {
    io.err(`vpnctl: ${e.message}\n`);
    return 1;
  }
  io.err(`vpnctl: ${err instanceof Error ? err.message : String(err)}\n`);
  return 1;
}

export async function run(argv: string[], io: Io): Promise<number> {
  const exit = { code: 0 };
  const root = program(io, exit);
  const configure = (cmd: Command) => {
    cmd.exitOverride();
    cmd.configureOutput({ writeOut: io.out, writeErr: io.err });
    for (const sub of cmd.commands) configure(sub);
  };
  configure(root);
  try {
    await root.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
      // A bare noun (`vpnctl user`) prints its help and is a usage error.
      return err.exitCode === 0 ? 0 : 2;
    }
    throw err;
  }
  return exit.code;
}
