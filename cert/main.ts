// masque-cert: the PKI library as a command line, for operators who keep their CA offline.
// User mistakes end in one line on stderr and exit code 1; nothing here prints a stack trace.

import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { CertificateAuthority } from './ca.js';
import { DEFAULT_CA_DAYS, DEFAULT_CA_NAME, DEFAULT_DAYS } from './defaults.js';
import { CertError } from './errors.js';
import { canonicalIp, validateIdentity, validateServerName } from './names.js';
import type { CertificateKind, CertificateProfile, IssuedCertificate } from './issue.js';
import type { RevocationReason, RevokedEntry } from './revocation.js';

// The PKI pulls in a whole ASN.1 stack: loaded when a command runs, so --help and usage errors are instant.
const pki = (): Promise<typeof import('./index.js')> => import('./index.js');

/** A mistake the user can fix: reported as one line, exit code 1. */
class UsageError extends Error {}

const CA_CERT = 'ca.crt';
const CA_KEY = 'ca.key';

function parseDays(value: string): number {
  if (!/^[1-9][0-9]{0,4}$/.test(value) || Number(value) > 36500) {
    throw new InvalidArgumentError('a whole number of days from 1 to 36500');
  }
  return Number(value);
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UsageError(`${what} ${path} does not exist`);
    if (code === 'EACCES')
      throw new UsageError(`${what} ${path} is not readable (permission denied)`);
    if (code === 'EISDIR') throw new UsageError(`${what} ${path} is a directory, not a file`);
    throw new UsageError(`cannot read ${what} ${path}: ${(err as Error).message}`);
  }
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

function ensureDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new UsageError(
      `cannot create directory ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

/**
 * Writes through a temporary file and a rename, so a reader never sees half a key and the mode
 * is right from the first byte (a key is never world-readable, not even for a moment).
 */
function writeFile(path: string, data: string, mode: number, force: boolean): void {
  if (!force && exists(path))
    throw new UsageError(`${path} already exists (use --force to replace it)`);
  const tmp = join(dirname(path), `.${randomBytes(6).toString('hex')}.tmp`);
  try {
    writeFileSync(tmp, data, { mode, flag: 'wx' });
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // nothing was created
    }
    throw new UsageError(
      `cannot write ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

async function loadCa(dir: string): Promise<CertificateAuthority> {
  const certPath = join(dir, CA_CERT);
  const keyPath = join(dir, CA_KEY);
  if (!exists(certPath)) {
    throw new UsageError(
      `no CA in ${dir}: ${certPath} not found (create one with: masque-cert ca init --out ${dir})`,
    );
  }
  const { importCa } = await pki();
  return importCa(readText(certPath, 'CA certificate'), readText(keyPath, 'CA key'));
}

function printIssued(kind: string, issued: IssuedCertificate, files: string[]): void {
  process.stdout.write(
    `${kind} certificate ${issued.subject}\n` +
      `  serial      ${issued.serial}\n` +
      `  sha256      ${issued.fingerprint}\n` +
      `  valid until ${issued.notAfter.toISOString()}\n` +
      files.map((f) => `  wrote       ${f}\n`).join(''),
  );
}

interface IssueFlags {
  ca: string;
  name: string;
  out: string;
  ip: string[];
  days?: number;
  csr?: string;
  force?: boolean;
}

async function issue(kind: CertificateKind, flags: IssueFlags): Promise<void> {
  // Every check that needs no CA comes first: cheap, and nothing is half done when one fails.
  if (kind !== 'server' && flags.ip.length > 0) {
    throw new UsageError('--ip applies to server certificates only');
  }
  const profile: CertificateProfile =
    kind === 'server'
      ? {
          kind,
          serverName: validateServerName(flags.name),
          ipAddresses: flags.ip.map(canonicalIp),
        }
      : { kind, identity: validateIdentity(flags.name) };
  const out = resolve(flags.out);
  const certPath = join(out, `${kind}.crt`);
  const keyPath = join(out, `${kind}.key`);
  const force = flags.force === true;
  for (const path of flags.csr === undefined ? [certPath, keyPath] : [certPath]) {
    if (!force && exists(path)) {
      throw new UsageError(`${path} already exists (use --force to replace it)`);
    }
  }
  const csr = flags.csr === undefined ? undefined : readText(flags.csr, 'CSR');
  const opts = flags.days === undefined ? {} : { days: flags.days };

  const ca = await loadCa(resolve(flags.ca));
  const { issueCertificate, signCsr } = await pki();
  if (csr !== undefined) {
    const issued = await signCsr(ca, csr, profile, opts);
    ensureDir(out);
    writeFile(certPath, issued.certPem, 0o644, force);
    printIssued(kind, issued, [certPath]);
    return;
  }
  const issued = await issueCertificate(ca, profile, opts);
  ensureDir(out);
  writeFile(keyPath, issued.keyPem, 0o600, force);
  writeFile(certPath, issued.certPem, 0o644, force);
  printIssued(kind, issued, [certPath, keyPath]);
}

const REASONS: readonly RevocationReason[] = [
  'unspecified',
  'keyCompromise',
  'cACompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'certificateHold',
  'privilegeWithdrawn',
];

/** `SERIAL [TIME] [REASON]` per line; `#` starts a comment. */
function parseRevokedList(text: string, file: string, now: Date): RevokedEntry[] {
  const entries: RevokedEntry[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') return;
    const where = `${file}:${index + 1}`;
    const [serial, ...rest] = line.split(/\s+/);
    if (!/^[0-9a-fA-F:]+$/.test(serial))
      throw new UsageError(`${where}: "${serial}" is not a hex serial number`);
    const entry: RevokedEntry = { serial, revokedAt: now };
    for (const field of rest) {
      if ((REASONS as readonly string[]).includes(field)) {
        entry.reason = field as RevocationReason;
        continue;
      }
      const time = Date.parse(field);
      if (!/^\d{4}-\d{2}-\d{2}/.test(field) || Number.isNaN(time)) {
        throw new UsageError(
          `${where}: "${field}" is neither an RFC 3339 time (2026-01-31T12:00:00Z) nor a reason (${REASONS.join(', ')})`,
        );
      }
      entry.revokedAt = new Date(time);
    }
    entries.push(entry);
  });
  return entries;
}

function buildProgram(): Command {
  const program = new Command('masque-cert').description(
    'The masque-vpn PKI offline: an ECDSA P-256 CA, server/client/admin certificates and revocation lists.\n' +
      `A CA directory holds ${CA_CERT} and ${CA_KEY} (the key is written with mode 0600).`,
  );

  const ca = program.command('ca').description('manage the certificate authority');
  ca.command('init')
    .description(`create a new CA: writes DIR/${CA_CERT} and DIR/${CA_KEY}`)
    .requiredOption('--out <dir>', 'directory for the CA files (created if missing)')
    .option('--name <cn>', 'common name of the CA', DEFAULT_CA_NAME)
    .addOption(
      new Option('--days <n>', 'lifetime in days').default(DEFAULT_CA_DAYS).argParser(parseDays),
    )
    .option(
      '--force',
      'replace an existing CA in DIR (every certificate it issued stops verifying)',
    )
    .action(async (flags: { out: string; name: string; days: number; force?: boolean }) => {
      const out = resolve(flags.out);
      const keyPath = join(out, CA_KEY);
      const certPath = join(out, CA_CERT);
      const force = flags.force === true;
      if (!force && (exists(keyPath) || exists(certPath))) {
        throw new UsageError(`${out} already holds a CA (use --force to replace it)`);
      }
      const { createCa } = await pki();
      const created = await createCa({ commonName: flags.name, days: flags.days });
      ensureDir(out);
      writeFile(keyPath, created.keyPem, 0o600, force);
      writeFile(certPath, created.certPem, 0o644, force);
      process.stdout.write(
        `CA ${created.subject}\n  sha256      ${created.fingerprint}\n  valid until ${created.notAfter.toISOString()}\n` +
          `  wrote       ${certPath}\n  wrote       ${keyPath}\n`,
      );
    });

  const issueCmd = program
    .command('issue')
    .description('issue a certificate signed by the CA (a fresh key, or for a CSR with --csr)');
  const kinds: [CertificateKind, string, string][] = [
    [
      'server',
      'a data-plane server certificate (SAN: the name and each --ip)',
      'DNS name of the server, e.g. vpn.example.com',
    ],
    [
      'client',
      'a VPN client certificate (CN = identity, EKU clientAuth)',
      'identity, e.g. alice/laptop',
    ],
    [
      'admin',
      'an administrator certificate (CN = identity, OU masque-admin)',
      'identity, e.g. ops/alice',
    ],
  ];
  for (const [kind, description, nameHelp] of kinds) {
    const cmd = issueCmd
      .command(kind)
      .description(`${description}: writes DIR/${kind}.crt and DIR/${kind}.key`)
      .requiredOption('--ca <dir>', `CA directory (${CA_CERT}, ${CA_KEY})`)
      .requiredOption('--name <name>', nameHelp)
      .requiredOption('--out <dir>', 'directory for the certificate and key (created if missing)')
      .addOption(
        new Option('--days <n>', `lifetime in days (default ${DEFAULT_DAYS[kind]})`).argParser(
          parseDays,
        ),
      )
      .option(
        '--csr <file>',
        'sign this PKCS#10 request instead of making a key (its subject is ignored)',
      )
      .option('--force', 'replace existing files');
    if (kind === 'server') {
      cmd.addOption(
        new Option('--ip <address>', 'IP address SAN (repeat for more)')
          .default([], 'none')
          .argParser(collect),
      );
    } else {
      cmd.addOption(new Option('--ip <address>').default([]).hideHelp().argParser(collect));
    }
    cmd.action((flags: IssueFlags) => issue(kind, flags));
  }

  program
    .command('crl')
    .description('write a revocation list signed by the CA')
    .requiredOption('--ca <dir>', `CA directory (${CA_CERT}, ${CA_KEY})`)
    .requiredOption(
      '--revoked <file>',
      'one revoked certificate per line: SERIAL [RFC3339-TIME] [REASON]; # comments',
    )
    .option('--out <file>', 'where to write the CRL (default: DIR/crl.pem)')
    .addOption(
      new Option('--days <n>', 'days until the next update').default(7).argParser(parseDays),
    )
    .option('--force', 'replace an existing CRL file')
    .action(
      async (flags: {
        ca: string;
        revoked: string;
        out?: string;
        days: number;
        force?: boolean;
      }) => {
        const caDir = resolve(flags.ca);
        const out = resolve(flags.out ?? join(caDir, 'crl.pem'));
        // A CRL is replaced on every run by design; --force only matters for a file given with --out.
        const force = flags.force === true || flags.out === undefined;
        const entries = parseRevokedList(
          readText(flags.revoked, 'revoked list'),
          flags.revoked,
          new Date(),
        );
        const authority = await loadCa(caDir);
        const { createCrl } = await pki();
        const crl = await createCrl(authority, entries, { days: flags.days });
        ensureDir(dirname(out));
        writeFile(out, crl.pem, 0o644, force);
        process.stdout.write(
          `CRL number ${crl.crlNumber} with ${entries.length} revoked certificate(s), next update ${crl.nextUpdate.toISOString()}\n` +
            `  wrote       ${out}\n`,
        );
      },
    );

  program
    .command('show')
    .description('print what a certificate says; with --ca also verify it (or verify a CRL)')
    .argument('<file>', 'PEM certificate or CRL')
    .option('--ca <dir>', 'verify against this CA directory')
    .action(async (file: string, flags: { ca?: string }) => {
      const text = readText(file, 'file');
      const { readCertificate, readCrl, verifyCertificate } = await pki();
      if (text.includes('-----BEGIN X509 CRL-----') || text.includes('-----BEGIN CRL-----')) {
        if (flags.ca === undefined)
          throw new UsageError('a CRL is shown only after verifying it: add --ca DIR');
        const list = await readCrl(text, (await loadCa(resolve(flags.ca))).certificate);
        process.stdout.write(
          `CRL by ${list.issuer}, number ${list.crlNumber ?? '-'}, issued ${list.thisUpdate.toISOString()}, ` +
            `next ${list.nextUpdate?.toISOString() ?? '-'}: signature OK\n` +
            list.entries
              .map(
                (e) =>
                  `  ${e.serial}  ${e.revokedAt.toISOString()}${e.reason ? '  ' + e.reason : ''}\n`,
              )
              .join(''),
        );
        return;
      }
      const info = readCertificate(text);
      const rows: [string, string][] = [
        ['subject', info.subject],
        ['issuer', info.issuer],
        ['role', info.role],
        ['serial', info.serial],
        ['sha256', info.fingerprint],
        ['not before', info.notBefore.toISOString()],
        ['not after', info.notAfter.toISOString()],
      ];
      if (info.dnsNames.length + info.ipAddresses.length > 0) {
        rows.push(['names', [...info.dnsNames, ...info.ipAddresses].join(', ')]);
      }
      process.stdout.write(rows.map(([k, v]) => `${k.padEnd(11)} ${v}\n`).join(''));
      if (flags.ca !== undefined) {
        const authority = await loadCa(resolve(flags.ca));
        const purpose =
          info.role === 'server' ? 'server' : info.role === 'ca' ? undefined : 'client';
        await verifyCertificate(text, authority, purpose === undefined ? {} : { purpose });
        process.stdout.write(
          `verified    OK against ${authority.subject}${purpose ? ` for TLS ${purpose}` : ''}\n`,
        );
      }
    });
  return program;
}

async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof UsageError || err instanceof CertError) {
      process.stderr.write(`masque-cert: ${err.message}\n`);
      process.exitCode = 1;
      return;
    }
    // A bug, not a user mistake: still one line, and a different exit code.
    process.stderr.write(
      `masque-cert: internal error: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    process.exitCode = 2;
  }
}

await main(process.argv);
