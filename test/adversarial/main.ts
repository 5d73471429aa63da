/**
 * `npm run adversarial`: runs every attack case of issue 12 at the sizes (300 idle peers,
 * 15 s floods, 2,000-handshake storm, ...) against a fresh directory node process per case, and
 * prints a table of figures with each target marked PASS or FAIL.
 *
 *   npm run adversarial -- [--quick] [--only pubmsg-flood,storm] [--strict]
 *
 * --quick uses the CI sizes; --strict exits 1 when any target fails (without it the exit code is
 * 0 unless a case could not run: the latency targets depend on how loaded the machine is).
 *
 * ONIONMC_ADV_CONFIG=key=value,... adds node config keys to every case (see harness.ts);
 * ONIONMC_ADV_NODE_ARGS adds node flags (space-separated), ONIONMC_ADV_KEEP keeps each case's
 * folder (its config and node.log).
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { CASES, CI_SIZES, FULL_SIZES, type CaseResult } from './cases.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    strict: { type: 'boolean', default: false },
    only: { type: 'string' },
  },
});
const sizes = values.quick ? CI_SIZES : FULL_SIZES;
const only = values.only?.split(',').map((s) => s.trim());
const selected = CASES.filter((c) => only === undefined || only.includes(c.key));
if (selected.length === 0) {
  process.stderr.write(`no case matches --only; cases: ${CASES.map((c) => c.key).join(', ')}\n`);
  process.exit(2);
}

const fmt = (n: number | undefined, digits = 1): string =>
  n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits);

function pad(text: string, width: number): string {
  return text.length >= width ? text : text + ' '.repeat(width - text.length);
}

function row(r: CaseResult): string[] {
  const failed = r.checks.filter((c) => !c.pass).length;
  return [
    r.name,
    fmt(r.quiet?.p99),
    fmt(r.attack?.p99),
    String(r.figures['p99 ratio'] ?? '-'),
    r.attackActive === undefined
      ? '-'
      : `${fmt(r.attackActive.max)} / ${String(r.attackActiveMs ?? '-')}`,
    String(r.pairLost),
    `${fmt(r.startRssMb, 0)}/${fmt(r.peakRssMb, 0)}/${fmt(r.finalRssMb, 0)}`,
    r.limitedAfterMs === undefined ? 'no' : `${r.limitedAfterMs} ms`,
    r.nodeAlive ? r.nodeExit : `DOWN (${r.nodeExit})`,
    failed === 0 ? 'PASS' : `FAIL (${failed}/${r.checks.length})`,
  ];
}

const header = [
  'case',
  'quiet p99 ms',
  'attack p99 ms',
  'x quiet',
  'worst while active ms / active ms',
  'lost',
  'RSS start/peak/final MB',
  'limited',
  'node exit',
  'targets',
];

const started = Date.now();
process.stdout.write(
  `onionmc adversarial suite: ${selected.length} case(s), ${values.quick ? 'CI' : 'full'} sizes, ` +
    `${os.cpus().length} CPUs, load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}\n`,
);
const results: CaseResult[] = [];
for (const c of selected) {
  process.stdout.write(`running ${c.key} ...\n`);
  const r = await c.run(sizes);
  results.push(r);
  for (const check of r.checks)
    process.stdout.write(`  [${check.pass ? 'PASS' : 'FAIL'}] ${check.target}: ${check.value}\n`);
  for (const a of r.attackers) process.stdout.write(`  attacker: ${a}\n`);
  for (const [k, v] of Object.entries(r.figures)) process.stdout.write(`  ${k}: ${v}\n`);
  if (r.error !== undefined || !r.nodeAlive)
    process.stdout.write(`  node log tail:\n${r.nodeLogTail.replace(/^/gm, '    ')}\n`);
}

const rows = [header, ...results.map(row)];
const widths = header.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
process.stdout.write('\n');
for (const [i, r] of rows.entries()) {
  process.stdout.write(`${r.map((cell, j) => pad(cell, widths[j] ?? 0)).join(' | ')}\n`);
  if (i === 0) process.stdout.write(`${widths.map((w) => '-'.repeat(w)).join('-|-')}\n`);
}
const controlResult = results.find((r) => r.name.startsWith('control'));
if (controlResult !== undefined)
  process.stdout.write(
    `\ncontrol: with no attacker the pair's p99 ratio was x${String(controlResult.figures['p99 ratio'] ?? '-')} ` +
      `(two quiet windows: this machine's own noise, to read the other ratios against)\n`,
  );
const failed = results.filter((r) => r.checks.some((c) => !c.pass));
const broken = results.filter((r) => r.error !== undefined);
process.stdout.write(
  `\n${results.length - failed.length}/${results.length} cases meet every target; ` +
    `${Math.round((Date.now() - started) / 1000)} s in all` +
    `${values.strict ? '' : ' (without --strict, failed targets do not fail the run)'}\n`,
);
process.exit(broken.length > 0 || (values.strict && failed.length > 0) ? 1 : 0);
