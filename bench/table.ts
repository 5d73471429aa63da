/**
 * One command for the relay table of docs/performance.md: runs bench/relay.ts (baseline,
 * onionmc with the `bench` limits, onionmc with the default limits) at each peer count, one after
 * the other, and prints the markdown table, the ratios and each target of issues 8 and 12 as
 * PASS/FAIL. Every run is bounded (`--seconds` per phase); the default set takes about 4-5
 * minutes per round on a 2-core machine.
 *
 *   npm run bench:table -- [--peers 100,500,1000,10000] [--seconds 5] [--repeat 1]
 *
 * `--repeat N`: each peer count runs N rounds (bench/relay.ts `--repeat`): medians.
 * The targets are ratios to the baseline relay in the same run, so they hold up on a busy
 * machine better than the absolute figures; re-run on a quiet machine for the published table.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { benchOptions } from './options.js';

const USAGE = `
npm run bench:table -- [--peers 100,500,1000,10000] [--seconds 5] [--repeat 1]

Runs npm run bench at each peer count and prints the table of docs/performance.md, the ratios
and each target as PASS/FAIL.
  --peers LIST   peer counts (2-10000 each)
  --seconds N    length of each measured phase (1-60)
  --repeat N     rounds per peer count (1-20); each figure is the median`;

const values = benchOptions('npm run bench:table', USAGE, {
  peers: { type: 'string', default: '100,500,1000,10000' },
  seconds: { type: 'string', default: '5' },
  repeat: { type: 'string', default: '1' },
});
const PEER_COUNTS = values.peers.split(',').map(Number);
if (PEER_COUNTS.some((n) => !Number.isInteger(n) || n < 2 || n > 10_000)) {
  process.stderr.write(`--peers takes integers in [2, 10000], not ${values.peers}\n`);
  process.exit(2);
}
const SECONDS = Number(values.seconds);
if (!Number.isInteger(SECONDS) || SECONDS < 1 || SECONDS > 60) {
  process.stderr.write(`--seconds takes an integer in [1, 60], not ${values.seconds}\n`);
  process.exit(2);
}
const REPEAT = Number(values.repeat);
if (!Number.isInteger(REPEAT) || REPEAT < 1 || REPEAT > 20) {
  process.stderr.write(`--repeat takes an integer in [1, 20], not ${values.repeat}\n`);
  process.exit(2);
}

/** A phase as bench/relay.ts reports it in its JSON line. */
interface Phase {
  readonly perS: number;
  readonly cpuUsPerMessage: number;
  readonly sent: number;
  readonly lost: number;
  readonly peersLost: number;
}
interface Row {
  readonly relay: 'baseline' | 'onionmc' | 'onionmc-default';
  readonly flood?: Phase;
  readonly wellBehaved?: Phase;
  readonly p50Ms?: number;
  readonly p99Ms?: number;
  readonly latencyLost?: number;
  readonly relayLoopDelayP99Ms?: number;
  readonly generatorLoopDelayP99Ms?: number;
  readonly fanout?: Phase;
  readonly rssPerPeerKiB: number;
  readonly rssMiB: number;
}
interface Run {
  readonly peers: number;
  readonly loadAverage: number;
  readonly rows: Row[];
}

/** Runs bench/relay.js once, its output passed through; resolves with its JSON line. */
function runRelayBench(peers: number): Promise<Run> {
  const script = fileURLToPath(new URL('./relay.js', import.meta.url));
  const child = spawn(
    process.execPath,
    [
      script,
      '--peers',
      String(peers),
      '--seconds',
      String(SECONDS),
      '--repeat',
      String(REPEAT),
      '--json',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    out += chunk;
    for (const line of chunk.split('\n'))
      if (line !== '' && !line.startsWith('JSON ')) process.stderr.write(`  ${line}\n`);
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('JSON '));
      if (code !== 0 || line === undefined) {
        reject(new Error(`the ${peers}-peer run failed (exit ${String(code)})`));
        return;
      }
      resolve(JSON.parse(line.slice(5)) as Run);
    });
  });
}

const int = (n: number | undefined): string =>
  n === undefined ? '-' : Math.round(n).toLocaleString('en-US');
const dec = (n: number | undefined, digits: number): string =>
  n === undefined ? '-' : n.toFixed(digits);
const ratioOf = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined || b === undefined || b <= 0 ? undefined : a / b;
const x = (r: number | undefined): string => (r === undefined ? '-' : `${r.toFixed(2)}×`);

function lostOf(r: Row): number {
  return (
    (r.flood?.lost ?? 0) + (r.wellBehaved?.lost ?? 0) + (r.latencyLost ?? 0) + (r.fanout?.lost ?? 0)
  );
}

const runs: Run[] = [];
const started = Date.now();
for (const peers of PEER_COUNTS) {
  process.stderr.write(`relay benchmark with ${peers} peers, ${SECONDS} s per phase\n`);
  runs.push(await runRelayBench(peers));
}

const label = {
  baseline: 'baseline',
  onionmc: 'onionmc',
  'onionmc-default': 'onionmc, default limits',
};
const lines: string[] = [
  '| peers | relay | privmsg/s | CPU µs / privmsg | well-behaved privmsg/s | well-behaved CPU µs / privmsg | p50 ms | p99 ms | fan-out deliveries/s | RSS KiB / peer | RSS MiB | lost |',
  '| ----- | ----- | --------: | ---------------: | ---------------------: | ----------------------------: | -----: | -----: | -------------------: | -------------: | ------: | ---: |',
];
interface Check {
  readonly what: string;
  readonly value: string;
  readonly pass: boolean | undefined;
}
const checks: Check[] = [];
const check = (
  what: string,
  value: number | undefined,
  pass: (v: number) => boolean,
  shown: (v: number) => string,
): void => {
  checks.push({
    what,
    value: value === undefined ? '-' : shown(value),
    pass: value === undefined ? undefined : pass(value),
  });
};

for (const run of runs) {
  const p = int(run.peers);
  const base = run.rows.find((r) => r.relay === 'baseline');
  const ours = run.rows.find((r) => r.relay === 'onionmc');
  const limited = run.rows.find((r) => r.relay === 'onionmc-default');
  for (const r of run.rows) {
    lines.push(
      `| ${p} | ${label[r.relay]} | ${int(r.flood?.perS)} | ${dec(r.flood?.cpuUsPerMessage, 1)} | ${int(r.wellBehaved?.perS)} | ${dec(r.wellBehaved?.cpuUsPerMessage, 1)} | ${dec(r.p50Ms, 2)} | ${dec(r.p99Ms, 2)} | ${int(r.fanout?.perS)} | ${dec(r.rssPerPeerKiB, 1)} | ${dec(r.rssMiB, 0)} | ${int(lostOf(r))} |`,
    );
  }
  if (base !== undefined && ours !== undefined)
    lines.push(
      `| ${p} | onionmc / baseline | ${x(ratioOf(ours.flood?.perS, base.flood?.perS))} | ${x(ratioOf(ours.flood?.cpuUsPerMessage, base.flood?.cpuUsPerMessage))} | - | - | ${x(ratioOf(ours.p50Ms, base.p50Ms))} | ${x(ratioOf(ours.p99Ms, base.p99Ms))} | ${x(ratioOf(ours.fanout?.perS, base.fanout?.perS))} | ${x(ratioOf(ours.rssPerPeerKiB, base.rssPerPeerKiB))} | ${x(ratioOf(ours.rssMiB, base.rssMiB))} | |`,
    );
  if (ours !== undefined && limited !== undefined)
    lines.push(
      `| ${p} | default / bench limits | - | - | ${x(ratioOf(limited.wellBehaved?.perS, ours.wellBehaved?.perS))} | ${x(ratioOf(limited.wellBehaved?.cpuUsPerMessage, ours.wellBehaved?.cpuUsPerMessage))} | ${x(ratioOf(limited.p50Ms, ours.p50Ms))} | ${x(ratioOf(limited.p99Ms, ours.p99Ms))} | ${x(ratioOf(limited.fanout?.perS, ours.fanout?.perS))} | | | |`,
    );

  // Targets (issue 8 at 500 and 10,000 peers; throughput, limits' cost and losses at every count).
  if (base !== undefined && ours !== undefined) {
    const cpu = ratioOf(ours.flood?.cpuUsPerMessage, base.flood?.cpuUsPerMessage);
    if (run.peers === 500 || run.peers === 10_000)
      check(`${p} peers: CPU per relayed privmsg ≤ 1.1× baseline`, cpu, (v) => v <= 1.1, x);
    check(
      `${p} peers: relay throughput ≥ 0.95× baseline`,
      ratioOf(ours.flood?.perS, base.flood?.perS),
      (v) => v >= 0.95,
      x,
    );
    if (run.peers === 500) {
      check(
        `${p} peers: pubmsg fan-out ≥ 2× baseline`,
        ratioOf(ours.fanout?.perS, base.fanout?.perS),
        (v) => v >= 2,
        x,
      );
      check(
        `${p} peers: pubmsg fan-out ≥ 250,000 deliveries/s (aim)`,
        ours.fanout?.perS,
        (v) => v >= 250_000,
        (v) => `${int(v)}/s`,
      );
    }
  }
  if (run.peers === 500 && ours !== undefined)
    check(
      `${p} peers: p99 ≤ 5 ms at 1,000 privmsgs/s (onionmc; baseline ${dec(base?.p99Ms, 2)} ms in the same run)`,
      ours.p99Ms,
      (v) => v <= 5,
      (v) => `${v.toFixed(2)} ms`,
    );
  if (run.peers === 10_000) {
    const rss = Math.max(ours?.rssMiB ?? 0, limited?.rssMiB ?? 0) * 2 ** 20;
    check(
      `${p} handshaked peers ≤ 250 MB RSS (onionmc, after a full GC)`,
      rss > 0 ? rss : undefined,
      (v) => v <= 250e6,
      (v) => `${(v / 1e6).toFixed(0)} MB`,
    );
  }
  if (ours !== undefined && limited !== undefined)
    check(
      `${p} peers: well-behaved relay throughput with default limits ≥ 0.95× raised limits (issue 12)`,
      ratioOf(limited.wellBehaved?.perS, ours.wellBehaved?.perS),
      (v) => v >= 0.95,
      x,
    );
  for (const r of [ours, limited])
    if (r !== undefined)
      check(
        `${p} peers: ${label[r.relay]} loses nothing`,
        lostOf(r),
        (v) => v === 0,
        (v) => `${int(v)} lost`,
      );
}

const loads = runs.map((r) => r.loadAverage.toFixed(1)).join(', ');
process.stdout.write(
  `\n${lines.join('\n')}\n\n${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} × ${os.availableParallelism()}; ${SECONDS} s per phase; load average at the start of each run: ${loads}; ${((Date.now() - started) / 1000).toFixed(0)} s in all\n\n`,
);
for (const c of checks)
  process.stdout.write(
    `${c.pass === undefined ? 'n/a ' : c.pass ? 'PASS' : 'FAIL'}  ${c.what}: ${c.value}\n`,
  );
