// The report of `masque-bench all` in the style of docs/benchmarks.md: the machine and the date,
// then per benchmark its exact command, how it ended, and its figures as tables (built from its
// JSON; a benchmark without JSON output is quoted as text). Pure, so it is tested.
import type { Step } from './plan.js';

export interface Machine {
  date: string;
  kernel: string;
  cores: number;
  model: string;
  node: string;
  /** `uptime` before the first and after the last benchmark: the machine may be shared. */
  uptimeBefore: string;
  uptimeAfter: string;
}

export interface StepResult {
  step: Step;
  command: string;
  exitCode: number | null;
  timedOut: boolean;
  seconds: number;
  /** Parsed stdout when the step prints JSON and it parsed. */
  json?: unknown;
  /** stdout when it is not JSON (or did not parse). */
  text: string;
  /** The end of stderr, for a step that failed. */
  stderrTail: string;
}

const MAX_ROWS = 40;
const MAX_TABLE_ROWS = 30;
const MAX_COLUMNS = 10;

/** A figure as the tables show it: integers as they are, others to 4 significant digits. */
export function formatValue(v: unknown): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return String(v);
    return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
  }
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return String(v).replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export interface Flattened {
  /** Scalar leaves: dotted path → value. */
  values: [string, unknown][];
  /** Arrays of objects: dotted path → rows (each row's scalar leaves flattened). */
  tables: { path: string; rows: Record<string, unknown>[] }[];
}

/** Splits a JSON document into scalar figures and tables of rows. */
export function flatten(doc: unknown): Flattened {
  const out: Flattened = { values: [], tables: [] };
  const walk = (v: unknown, path: string): void => {
    if (Array.isArray(v)) {
      if (v.length > 0 && v.every(isRecord)) {
        out.tables.push({ path, rows: v.map((row) => Object.fromEntries(leaves(row))) });
      } else if (v.every((x) => !isRecord(x) && !Array.isArray(x))) {
        const shown = v.slice(0, 12).map(formatValue).join(', ');
        out.values.push([path, v.length > 12 ? `${shown}, … (${v.length})` : shown]);
      }
      return;
    }
    if (isRecord(v)) {
      for (const [k, x] of Object.entries(v)) walk(x, path === '' ? k : `${path}.${k}`);
      return;
    }
    out.values.push([path, v]);
  };
  walk(doc, '');
  return out;
}

/** Scalar leaves of one object (nested objects joined with dots; arrays left out). */
function leaves(o: Record<string, unknown>, prefix = ''): [string, unknown][] {
  const r: [string, unknown][] = [];
  for (const [k, v] of Object.entries(o)) {
    const key = prefix === '' ? k : `${prefix}.${k}`;
    if (isRecord(v)) r.push(...leaves(v, key));
    else if (!Array.isArray(v)) r.push([key, v]);
  }
  return r;
}

function keyValueTable(rows: [string, unknown][]): string[] {
  const shown = rows.slice(0, MAX_ROWS);
  const lines = ['| figure | value |', '| --- | --- |'];
  for (const [k, v] of shown) lines.push(`| ${formatValue(k)} | ${formatValue(v)} |`);
  if (rows.length > shown.length)
    lines.push(`| … | ${rows.length - shown.length} more in the JSON |`);
  return lines;
}

function rowsTable(rows: Record<string, unknown>[]): string[] {
  const columns: string[] = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!columns.includes(k)) columns.push(k);
  const cols = columns.slice(0, MAX_COLUMNS);
  const lines = [`| ${cols.join(' | ')} |`, `| ${cols.map(() => '---').join(' | ')} |`];
  for (const r of rows.slice(0, MAX_TABLE_ROWS)) {
    lines.push(`| ${cols.map((c) => formatValue(r[c])).join(' | ')} |`);
  }
  if (rows.length > MAX_TABLE_ROWS)
    lines.push(`\n(${rows.length - MAX_TABLE_ROWS} more rows in the JSON)`);
  if (columns.length > cols.length)
    lines.push(`\n(columns left out: ${columns.slice(MAX_COLUMNS).join(', ')})`);
  return lines;
}

/**
 * Ratios a benchmark does not print itself but whose peers are in its rows: for `loss`, each FEC
 * scheme's delivered loss over FEC off's on the same loss profile (lower is better for FEC).
 */
export function derivedRatios(name: string, doc: unknown): [string, unknown][] {
  if (name !== 'loss' || !isRecord(doc) || !Array.isArray(doc.cells)) return [];
  const cells = doc.cells.filter(isRecord);
  const out: [string, unknown][] = [];
  for (const c of cells) {
    if (c.fec === 'off' || typeof c.deliveredLossPercent !== 'number') continue;
    const off = cells.find((o) => o.profile === c.profile && o.fec === 'off');
    const base = off?.deliveredLossPercent;
    if (typeof base !== 'number' || base === 0) continue;
    out.push([
      `delivered loss ${String(c.fec)} / off, ${String(c.profile)}`,
      c.deliveredLossPercent / base,
    ]);
  }
  return out;
}

function outcome(r: StepResult): string {
  if (r.timedOut) return `**stopped after ${r.step.timeoutS} s** (its time bound)`;
  if (r.exitCode === 0) return `ok in ${Math.round(r.seconds)} s`;
  return `**exit code ${r.exitCode ?? 'none (signal)'}** after ${Math.round(r.seconds)} s`;
}

export function renderStep(r: StepResult): string {
  const lines = [`## ${r.step.name}`, '', `\`${r.command}\` — ${outcome(r)}`, ''];
  if (r.json !== undefined) {
    const f = flatten(r.json);
    // Long series (RSS samples, per-second buckets) belong to charts and the JSON, not tables.
    const tables = f.tables.filter((t) => t.rows.length <= MAX_TABLE_ROWS * 2);
    const ratios = [
      ...f.values.filter(([k]) => /ratio/i.test(k)),
      ...derivedRatios(r.step.name, r.json),
    ];
    const figures = f.values.filter(([k]) => !/ratio/i.test(k));
    if (figures.length > 0) lines.push(...keyValueTable(figures), '');
    for (const t of tables)
      lines.push(`${t.path === '' ? 'rows' : t.path}:`, '', ...rowsTable(t.rows), '');
    if (r.step.peers !== undefined) {
      lines.push(`Ratios against peers (${r.step.peers}):`, '');
      if (ratios.length > 0) lines.push(...keyValueTable(ratios), '');
      else lines.push('(none in this run: peers missing or not measured)', '');
    }
  } else if (r.text.trim() !== '') {
    lines.push('```', r.text.trimEnd().split('\n').slice(-60).join('\n'), '```', '');
  }
  if (r.exitCode !== 0 && r.stderrTail.trim() !== '') {
    lines.push('stderr (end):', '', '```', r.stderrTail.trimEnd(), '```', '');
  }
  return lines.join('\n');
}

export function renderReport(input: {
  command: string;
  machine: Machine;
  results: readonly StepResult[];
}): string {
  const m = input.machine;
  const failed = input.results
    .filter((r) => r.exitCode !== 0 || r.timedOut)
    .map((r) => r.step.name);
  const lines = [
    `# masque-vpn benchmarks (${m.date.slice(0, 10)})`,
    '',
    `\`${input.command}\` on ${m.date}.`,
    '',
    '| machine | |',
    '| --- | --- |',
    `| kernel (\`uname -r\`) | ${formatValue(m.kernel)} |`,
    `| cores | ${m.cores} × ${formatValue(m.model)} |`,
    `| Node.js | ${formatValue(m.node)} |`,
    `| \`uptime\` before | ${formatValue(m.uptimeBefore)} |`,
    `| \`uptime\` after | ${formatValue(m.uptimeAfter)} |`,
    '',
    'Short (`--quick`) durations: these figures are a smoke run, noisier than the full runs in',
    '`docs/benchmarks.md`; a load average above the core count means others shared the machine.',
    '',
    '| benchmark | outcome |',
    '| --- | --- |',
    ...input.results.map((r) => `| ${r.step.name} | ${outcome(r)} |`),
    '',
    failed.length === 0
      ? 'Every benchmark finished.'
      : `Did not finish cleanly: ${failed.join(', ')}.`,
    '',
    ...input.results.map(renderStep),
  ];
  return `${lines.join('\n').trimEnd()}\n`;
}
