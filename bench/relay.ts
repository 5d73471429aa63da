/**
 * Directory node relay benchmark: onionmc's directory node against a minimal baseline relay
 * (bench/relay/baseline-relay.ts), in one run, with the same load generator in the same process
 * layout: the relay under test in one process (pinned to core 0 with `taskset` where it exists),
 * the load generator in another (core 1), this orchestrator idle in a third.
 *
 * Three relays, each in a fresh process (`--relays` picks some):
 * - `baseline`: the minimal relay;
 * - `onionmc`: onionmc's directory node with the `bench` limit profile (every fairness limit
 *   raised out of the way, bench/relay/directory-adapter.ts): its capacity;
 * - `onionmc-default`: the same node with the default limits (docs/limits.md), driven by
 *   well-behaved peers (each below its limits): what the limits cost.
 *
 * Phases, each bounded in time and count:
 * 1. connect: PEERS peers connect and handshake (793/795, docs/protocol.md §2.3-§2.4): RSS per
 *    peer; then a warm-up, not measured: a well-behaved flood (as 3.) for up to 3 s, so that the
 *    measured phases run on optimised code;
 * 2. flood: SENDERS peers send privmsgs as fast as the relay takes them (≤ 20,000 in flight):
 *    relayed privmsgs/s at saturation and the relay's CPU µs per relayed privmsg (not for
 *    onionmc-default: flooding is what its limits stop);
 * 3. well-behaved flood (onionmc and onionmc-default): up to WB_SENDERS peers, each paced to 95% of
 *    the default message limit (475 privmsgs/s): throughput with the limits vs without them;
 * 4. latency: RATE privmsgs/s offered: p50/p99 send-to-receive time;
 * 5. fan-out: FANOUT_SENDERS peers send pubmsgs: deliveries/s to the other peers (onionmc-default:
 *    each sender paced to 95% of its share of the fan-out budgets).
 *
 * Every phase reports what was lost (sent − received once in-flight messages arrived), the relay's
 * drop and eviction counters that moved, and peers that were disconnected. The relay reports its
 * own CPU (process.cpuUsage), RSS and write system calls (Linux's /proc/self/io) over IPC, printed
 * per message relayed: what coalescing saves; the generator reports its own CPU so it is not
 * charged to the relay. Prints one row per relay and their ratios; with `--json`, a last line
 * `JSON {...}` for bench/table.ts.
 *
 *   npm run bench -- [--peers 500] [--senders 250] [--rate 1000] [--seconds 10]
 *                    [--fanout-senders 4] [--relays baseline,onionmc,onionmc-default]
 *                    [--phases flood,well-behaved,latency,fanout] [--cpu-prof DIR] [--json]
 *                    [--repeat 1]
 *
 * `--repeat N`: N rounds, the relays taking turns; the table holds each figure's median over the
 * rounds (losses summed), and a line gives the rounds' onionmc/baseline ratios one by one.
 * `--cpu-prof DIR`: each relay process writes a V8 CPU profile to DIR when it exits, named
 * `<relay>-<ms since 1970>.cpuprofile`.
 * `ONIONMC_BENCH_NODE_ARGS` adds node flags (space-separated) to the relay processes, e.g.
 * `--trace-gc`, whose lines they print.
 *
 * docs/performance.md has the figures and how to reproduce them.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { listeningFd, listenOnFreePort, portOf } from '../src/demo/cluster.js';
import { DEFAULT_DIRECTORY_LIMITS } from '../src/node/directory-limits.js';
import { benchOptions } from './options.js';
import type { GeneratorCommand, GeneratorReport } from './relay/load-generator.js';

const USAGE = `
npm run bench -- [--peers 500] [--senders 250] [--rate 1000] [--seconds 10]
                 [--fanout-senders 4] [--relays baseline,onionmc,onionmc-default]
                 [--phases flood,well-behaved,latency,fanout] [--cpu-prof DIR] [--json]
                 [--repeat 1]

onionmc's directory node against a minimal baseline relay, with the same load generator.
  --peers N            connected, handshaked peers (2-10000)
  --senders N          flooding senders (default: half the peers, at most 250)
  --rate N             privmsgs/s offered in the latency phase
  --seconds N          length of each measured phase
  --fanout-senders N   pubmsg senders in the fan-out phase
  --relays LIST        which relays, in this order
  --phases LIST        which phases
  --cpu-prof DIR       each relay process writes a V8 CPU profile to DIR
  --json               a last line JSON {...} (for bench/table.ts)
  --repeat N           rounds, the relays taking turns; the table holds medians
docs/performance.md has the figures and how to reproduce them.`;

const values = benchOptions('npm run bench', USAGE, {
  peers: { type: 'string', default: '500' },
  senders: { type: 'string' },
  rate: { type: 'string', default: '1000' },
  seconds: { type: 'string', default: '10' },
  'fanout-senders': { type: 'string', default: '4' },
  relays: { type: 'string', default: 'baseline,onionmc,onionmc-default' },
  phases: { type: 'string', default: 'flood,well-behaved,latency,fanout' },
  json: { type: 'boolean', default: false },
  'cpu-prof': { type: 'string' },
  repeat: { type: 'string', default: '1' },
});

function intOption(name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) {
    process.stderr.write(`--${name} must be an integer in [${min}, ${max}], not ${text}\n`);
    process.exit(2);
  }
  return n;
}

const RELAY_KINDS = ['baseline', 'onionmc', 'onionmc-default'] as const;
type RelayKind = (typeof RELAY_KINDS)[number];

const PEERS = intOption('peers', values.peers, 2, 10_000);
const SENDERS = intOption(
  'senders',
  values.senders ?? String(Math.min(250, Math.floor(PEERS / 2))),
  1,
  PEERS,
);
const RATE = intOption('rate', values.rate, 1, 100_000);
const SECONDS = intOption('seconds', values.seconds, 1, 300);
const FANOUT_SENDERS = intOption('fanout-senders', values['fanout-senders'], 1, PEERS);
const REPEAT = intOption('repeat', values.repeat, 1, 20);
const RELAYS: RelayKind[] = [];
for (const r of values.relays.split(',')) {
  if (!(RELAY_KINDS as readonly string[]).includes(r)) {
    process.stderr.write(`--relays takes ${RELAY_KINDS.join(', ')}, not ${r}\n`);
    process.exit(2);
  }
  RELAYS.push(r as RelayKind);
}
const PHASE_NAMES = ['flood', 'well-behaved', 'latency', 'fanout'] as const;
const PHASES = new Set<string>(values.phases.split(','));
for (const p of PHASES) {
  if (!(PHASE_NAMES as readonly string[]).includes(p)) {
    process.stderr.write(`--phases takes ${PHASE_NAMES.join(', ')}, not ${p}\n`);
    process.exit(2);
  }
}
const PHASE_TIMEOUT_MS = SECONDS * 3000 + 60_000;
/** Seconds of the unmeasured warm-up phase. */
const WARMUP_SECONDS = Math.min(3, SECONDS);
/** Well-behaved peers: 95% of the default per-connection message rate (500/s, docs/limits.md). */
const WB_RATE = 0.95 * DEFAULT_DIRECTORY_LIMITS.messages.ratePerSecond;
/** Senders of the well-behaved flood: every peer, at most 2,000 (offered ≥ 950,000/s then). */
const WB_SENDERS = Math.min(PEERS, 2_000);
/**
 * Pubmsgs/s per fan-out sender that stays at 95% of its message limit and of its share of both
 * default fan-out budgets (docs/limits.md).
 */
const WB_FANOUT_RATE = Math.min(
  WB_RATE,
  (0.95 *
    Math.min(
      DEFAULT_DIRECTORY_LIMITS.deliveries.ratePerSecond,
      DEFAULT_DIRECTORY_LIMITS.globalDeliveries.ratePerSecond / FANOUT_SENDERS,
    )) /
    Math.max(1, PEERS - 1),
);

const PIN =
  os.availableParallelism() >= 2 && spawnSync('taskset', ['-c', '0', 'true']).status === 0;
/** Node flags for the relay processes, from `ONIONMC_BENCH_NODE_ARGS` (space-separated). */
const EXTRA_NODE_ARGS = (process.env.ONIONMC_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
/** File descriptors each child may need: one per peer, plus slack. */
const FD_LIMIT = PEERS + 1024;

function spawnChild(
  script: string,
  args: string[],
  core: number,
  nodeFlags: string[] = [],
  listenFd?: number,
): ChildProcess {
  const file = fileURLToPath(new URL(script, import.meta.url));
  const command = [
    ...(PIN ? ['taskset', '-c', String(core)] : []),
    process.execPath,
    ...nodeFlags,
    file,
    ...args,
  ];
  // Through sh to raise the soft fd limit where the hard limit allows (10,000 peers).
  return spawn(
    '/bin/sh',
    ['-c', `ulimit -n ${FD_LIMIT} 2>/dev/null; exec "$@"`, 'sh', ...command],
    {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc', ...(listenFd !== undefined ? [listenFd] : [])],
    },
  );
}

/** Waits for the first IPC message of `child` that `match` accepts (bounded by `timeoutMs`). */
function nextMessage<T>(
  child: ChildProcess,
  match: (message: unknown) => T | undefined,
  timeoutMs: number,
  what: string,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const onMessage = (message: unknown): void => {
      const value = match(message);
      if (value === undefined) return;
      cleanup();
      resolve(value);
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`${what}: the child exited (${String(code)})`));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

interface Stats {
  readonly cpuUs: number;
  readonly rssBytes: number;
  /** Write system calls of the relay process so far; -1 where /proc/self/io cannot be read. */
  readonly writes: number;
  readonly peers: number;
  readonly counters: Record<string, number>;
  /** The relay's event-loop delay since the previous stats request, ms. */
  readonly loopDelayP99Ms: number;
  readonly loopDelayMaxMs: number;
}
let statsId = 0;
async function relayStats(relay: ChildProcess, gc = false): Promise<Stats> {
  const id = ++statsId;
  const reply = nextMessage(
    relay,
    (m) => ((m as { stats?: number }).stats === id ? (m as Stats) : undefined),
    10_000,
    'relay stats',
  );
  relay.send({ stats: id, gc });
  return reply;
}

async function runPhase(
  generator: ChildProcess,
  command: GeneratorCommand,
): Promise<GeneratorReport> {
  const reply = nextMessage(
    generator,
    (m) => {
      const r = m as { report?: GeneratorReport; error?: string };
      if (r.error !== undefined) return { error: r.error };
      return r.report !== undefined ? { report: r.report } : undefined;
    },
    PHASE_TIMEOUT_MS,
    `the ${command.phase} phase`,
  );
  generator.send(command);
  const result = await reply;
  if ('error' in result) throw new Error(`${command.phase}: ${result.error}`);
  return result.report;
}

/** A phase's figures: rate in the window, relay CPU per message, and what was lost and why. */
interface PhaseResult {
  readonly perS: number;
  readonly cpuUsPerMessage: number;
  /** The relay's write system calls per message received (undefined: not counted here). */
  readonly writesPerMessage: number | undefined;
  readonly sent: number;
  readonly lost: number;
  readonly generatorCpuPct: number;
  /** The relay's drop/eviction/disconnection counters that moved during the phase. */
  readonly drops: Record<string, number>;
  readonly peersLost: number;
}

/** Counters that say why something was not delivered. */
const LOSS_COUNTER = /^(dropped|evicted|disconnected|refused)\./;

function lossCounters(before: Stats, after: Stats): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, value] of Object.entries(after.counters)) {
    const delta = value - (before.counters[name] ?? 0);
    if (delta > 0 && LOSS_COUNTER.test(name)) out[name] = delta;
  }
  return out;
}

function describeLoss(r: PhaseResult): string {
  const why = Object.entries(r.drops).map(([k, v]) => `${k} ${int(v)}`);
  if (r.peersLost > 0) why.push(`${int(r.peersLost)} peers disconnected`);
  return `${int(r.lost)} lost${why.length > 0 ? ` (${why.join(', ')})` : ''}`;
}

async function measuredPhase(
  relay: ChildProcess,
  generator: ChildProcess,
  command: GeneratorCommand,
): Promise<{ result: PhaseResult; report: GeneratorReport; after: Stats }> {
  const before = await relayStats(relay);
  const report = await runPhase(generator, command);
  const after = await relayStats(relay);
  const cpuUs = after.cpuUs - before.cpuUs;
  return {
    result: {
      perS: report.receivedInWindow / report.elapsedS,
      cpuUsPerMessage: cpuUs / Math.max(1, report.receivedTotal),
      writesPerMessage:
        before.writes < 0 || after.writes < 0
          ? undefined
          : (after.writes - before.writes) / Math.max(1, report.receivedTotal),
      sent: report.sent,
      lost: Math.max(0, report.sent - report.receivedTotal),
      generatorCpuPct: (100 * report.cpuUs) / 1e6 / report.elapsedS,
      drops: lossCounters(before, after),
      peersLost: before.peers - after.peers,
    },
    report,
    after,
  };
}

/** One relay's row. Undefined figures were not measured for that relay. */
interface Row {
  readonly relay: RelayKind;
  readonly flood?: PhaseResult;
  readonly wellBehaved?: PhaseResult;
  readonly p50Ms?: number;
  readonly p99Ms?: number;
  readonly latencyLost?: number;
  /** Event-loop delay p99 during the latency phase, ms: the relay's, the generator's. */
  readonly relayLoopDelayP99Ms?: number;
  readonly generatorLoopDelayP99Ms?: number;
  readonly fanout?: PhaseResult;
  readonly rssPerPeerKiB: number;
  readonly rssMiB: number;
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');

/** `, N.NN writes/<unit>` when the relay's writes were counted, else nothing. */
const writesPer = (r: PhaseResult, unit: string): string =>
  r.writesPerMessage === undefined ? '' : `, ${r.writesPerMessage.toFixed(2)} writes/${unit}`;

async function measure(kind: RelayKind): Promise<Row> {
  // We bind the relay's port (0, read back) and hand it the listening socket as its fd 4.
  const listener = await listenOnFreePort();
  const port = portOf(listener);
  const profile = kind === 'onionmc-default' ? 'default' : 'bench';
  const cpuProf =
    values['cpu-prof'] !== undefined
      ? [
          '--cpu-prof',
          '--cpu-prof-dir',
          values['cpu-prof'],
          '--cpu-prof-name',
          `${kind}-${String(Date.now())}.cpuprofile`,
        ]
      : [];
  const relay = spawnChild(
    './relay/relay-node.js',
    [
      '--kind',
      kind === 'baseline' ? 'baseline' : 'onionmc',
      '--limits',
      profile,
      '--port',
      String(port),
      '--listen-fd',
      '4',
    ],
    0,
    ['--expose-gc', ...EXTRA_NODE_ARGS, ...cpuProf],
    listeningFd(listener),
  );
  listener.close();
  const generator = spawnChild('./relay/load-generator.js', [], 1);
  const say = (text: string): void => {
    process.stdout.write(`[${kind}] ${text}\n`);
  };
  try {
    await nextMessage(
      relay,
      (m) => ((m as { ready?: boolean }).ready === true ? true : undefined),
      30_000,
      'the relay to listen',
    );
    await nextMessage(
      generator,
      (m) => ((m as { ready?: boolean }).ready === true ? true : undefined),
      30_000,
      'the generator',
    );
    const empty = await relayStats(relay, true);
    const connect = await runPhase(generator, { phase: 'connect', port, peers: PEERS });
    const withPeers = await relayStats(relay, true);
    const rssPerPeerKiB = (withPeers.rssBytes - empty.rssBytes) / 1024 / PEERS;
    say(
      `${PEERS} peers handshaked in ${connect.elapsedS.toFixed(1)} s; RSS after a full GC ${(empty.rssBytes / 2 ** 20).toFixed(1)} MiB empty, ${(withPeers.rssBytes / 2 ** 20).toFixed(1)} MiB with peers (${rssPerPeerKiB.toFixed(1)} KiB/peer)`,
    );

    // Warm-up, not measured: a short well-behaved flood, so that every relay's measured phases run
    // on optimised code (the first seconds of a fresh process run interpreted code), in the same
    // order for all.
    const warm = await runPhase(generator, {
      phase: 'flood',
      seconds: WARMUP_SECONDS,
      senders: WB_SENDERS,
      perSenderRate: WB_RATE,
    });
    say(`warm-up: ${int(warm.receivedTotal)} privmsgs relayed in ${warm.elapsedS.toFixed(1)} s`);

    let flood: PhaseResult | undefined;
    if (kind !== 'onionmc-default' && PHASES.has('flood')) {
      const f = await measuredPhase(relay, generator, {
        phase: 'flood',
        seconds: SECONDS,
        senders: SENDERS,
      });
      flood = f.result;
      say(
        `flood: ${SENDERS} senders, ${int(f.report.sent)} sent, ${int(f.report.receivedInWindow)} relayed in ${f.report.elapsedS.toFixed(1)} s (${int(flood.perS)}/s), ${describeLoss(flood)}; relay CPU ${flood.cpuUsPerMessage.toFixed(1)} µs/privmsg${writesPer(flood, 'privmsg')}, generator CPU ${flood.generatorCpuPct.toFixed(0)}% of a core; RSS ${(f.after.rssBytes / 2 ** 20).toFixed(0)} MiB`,
      );
    }

    let wellBehaved: PhaseResult | undefined;
    if (kind !== 'baseline' && PHASES.has('well-behaved')) {
      const w = await measuredPhase(relay, generator, {
        phase: 'flood',
        seconds: SECONDS,
        senders: WB_SENDERS,
        perSenderRate: WB_RATE,
      });
      wellBehaved = w.result;
      say(
        `well-behaved flood: ${WB_SENDERS} senders at ≤ ${WB_RATE}/s each, ${int(w.report.sent)} sent, ${int(w.report.receivedInWindow)} relayed in ${w.report.elapsedS.toFixed(1)} s (${int(wellBehaved.perS)}/s), ${describeLoss(wellBehaved)}; relay CPU ${wellBehaved.cpuUsPerMessage.toFixed(1)} µs/privmsg${writesPer(wellBehaved, 'privmsg')}, generator CPU ${wellBehaved.generatorCpuPct.toFixed(0)}% of a core`,
      );
    }

    let latency: { lat: GeneratorReport; lost: number; relayLoopP99Ms: number } | undefined;
    if (PHASES.has('latency')) {
      const l = await measuredPhase(relay, generator, {
        phase: 'latency',
        seconds: SECONDS,
        senders: SENDERS,
        rate: RATE,
      });
      const lat = l.report;
      say(
        `latency at ${int(RATE)} privmsgs/s offered: ${int(lat.sent)} sent, ${describeLoss(l.result)}; p50 ${((lat.p50Us ?? 0) / 1000).toFixed(2)} ms, p99 ${((lat.p99Us ?? 0) / 1000).toFixed(2)} ms, max ${((lat.maxUs ?? 0) / 1000).toFixed(1)} ms; event-loop delay p99/max: relay ${l.after.loopDelayP99Ms.toFixed(1)}/${l.after.loopDelayMaxMs.toFixed(1)} ms, generator ${(lat.loopDelayP99Ms ?? 0).toFixed(1)}/${(lat.loopDelayMaxMs ?? 0).toFixed(1)} ms; generator CPU ${l.result.generatorCpuPct.toFixed(0)}% of a core`,
      );
      latency = { lat, lost: l.result.lost, relayLoopP99Ms: l.after.loopDelayP99Ms };
    }

    let fanout: PhaseResult | undefined;
    if (PHASES.has('fanout')) {
      const paced = kind === 'onionmc-default';
      const p = await measuredPhase(relay, generator, {
        phase: 'fanout',
        seconds: SECONDS,
        senders: FANOUT_SENDERS,
        ...(paced ? { perSenderRate: WB_FANOUT_RATE } : {}),
      });
      fanout = p.result;
      say(
        `fan-out: ${FANOUT_SENDERS} senders${paced ? ` at ≤ ${WB_FANOUT_RATE.toFixed(1)} pubmsgs/s each` : ''}, ${int(p.report.receivedInWindow)} deliveries in ${p.report.elapsedS.toFixed(1)} s (${int(fanout.perS)}/s), ${describeLoss(fanout)}; relay CPU ${fanout.cpuUsPerMessage.toFixed(2)} µs/delivery${writesPer(fanout, 'delivery')}, generator CPU ${fanout.generatorCpuPct.toFixed(0)}% of a core; RSS ${(p.after.rssBytes / 2 ** 20).toFixed(0)} MiB`,
      );
    }
    return {
      relay: kind,
      ...(flood !== undefined ? { flood } : {}),
      ...(wellBehaved !== undefined ? { wellBehaved } : {}),
      ...(latency !== undefined
        ? {
            p50Ms: (latency.lat.p50Us ?? 0) / 1000,
            p99Ms: (latency.lat.p99Us ?? 0) / 1000,
            latencyLost: latency.lost,
            relayLoopDelayP99Ms: latency.relayLoopP99Ms,
            generatorLoopDelayP99Ms: latency.lat.loopDelayP99Ms ?? 0,
          }
        : {}),
      ...(fanout !== undefined ? { fanout } : {}),
      rssPerPeerKiB,
      rssMiB: withPeers.rssBytes / 2 ** 20,
    };
  } finally {
    generator.kill('SIGTERM');
    // An orderly exit, so that --cpu-prof writes its profile.
    const exited = new Promise<void>((resolve) => {
      if (relay.exitCode !== null) resolve();
      else
        relay.once('exit', () => {
          resolve();
        });
    });
    if (relay.connected) relay.send({ exit: true });
    const timer = setTimeout(() => relay.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

/** The median of `xs` (not empty). */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** The median of the figures that are there, or undefined when none is. */
function medianOf(xs: (number | undefined)[]): number | undefined {
  const got = xs.filter((x): x is number => x !== undefined);
  return got.length === 0 ? undefined : median(got);
}

/** A phase over several rounds: rate, CPU, writes, generator CPU the medians; losses summed. */
function medianPhase(ps: (PhaseResult | undefined)[]): PhaseResult | undefined {
  const got = ps.filter((p): p is PhaseResult => p !== undefined);
  if (got.length === 0) return undefined;
  const drops: Record<string, number> = {};
  for (const p of got) for (const [k, v] of Object.entries(p.drops)) drops[k] = (drops[k] ?? 0) + v;
  const sum = (f: (p: PhaseResult) => number): number => got.reduce((a, p) => a + f(p), 0);
  return {
    perS: median(got.map((p) => p.perS)),
    cpuUsPerMessage: median(got.map((p) => p.cpuUsPerMessage)),
    writesPerMessage: medianOf(got.map((p) => p.writesPerMessage)),
    sent: sum((p) => p.sent),
    lost: sum((p) => p.lost),
    generatorCpuPct: median(got.map((p) => p.generatorCpuPct)),
    drops,
    peersLost: sum((p) => p.peersLost),
  };
}

/** One relay's row over several rounds (see {@link medianPhase}); one round's row as it is. */
function medianRow(rs: Row[]): Row {
  if (rs.length === 1) return rs[0] as Row;
  const opt = <K extends string, V>(key: K, value: V | undefined): { [k in K]?: V } =>
    (value === undefined ? {} : { [key]: value }) as { [k in K]?: V };
  const lost = rs.map((r) => r.latencyLost).filter((x): x is number => x !== undefined);
  return {
    relay: (rs[0] as Row).relay,
    ...opt('flood', medianPhase(rs.map((r) => r.flood))),
    ...opt('wellBehaved', medianPhase(rs.map((r) => r.wellBehaved))),
    ...opt('p50Ms', medianOf(rs.map((r) => r.p50Ms))),
    ...opt('p99Ms', medianOf(rs.map((r) => r.p99Ms))),
    ...opt('latencyLost', lost.length === 0 ? undefined : lost.reduce((a, b) => a + b, 0)),
    ...opt('relayLoopDelayP99Ms', medianOf(rs.map((r) => r.relayLoopDelayP99Ms))),
    ...opt('generatorLoopDelayP99Ms', medianOf(rs.map((r) => r.generatorLoopDelayP99Ms))),
    ...opt('fanout', medianPhase(rs.map((r) => r.fanout))),
    rssPerPeerKiB: median(rs.map((r) => r.rssPerPeerKiB)),
    rssMiB: median(rs.map((r) => r.rssMiB)),
  };
}

const fmt = (n: number | undefined, digits = 0): string =>
  n === undefined ? '-' : digits === 0 ? int(n) : n.toFixed(digits);
const ratio = (a: number | undefined, b: number | undefined): string =>
  a === undefined || b === undefined || b <= 0 ? '-' : `${(a / b).toFixed(2)}×`;

function formatRow(cells: string[]): string {
  const widths = [16, 10, 15, 15, 13, 8, 8, 16, 13, 8];
  return cells
    .map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 10) : c.padStart(widths[i] ?? 10)))
    .join(' ');
}

process.stdout.write(
  `relay benchmark: ${PEERS} peers, ${SENDERS} senders, ${RATE} privmsgs/s offered for latency, ${SECONDS} s per phase, ${FANOUT_SENDERS} pubmsg senders; ${PIN ? 'relay pinned to core 0, generator to core 1' : 'not pinned (no taskset or one core)'}; ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} × ${os.availableParallelism()}, load average ${os.loadavg()[0]?.toFixed(2) ?? '?'}\n`,
);
// With --repeat, the relays take turns (the order reversed every other round, so that a drift of
// the machine's speed over the run weighs on all alike) and each figure is the median of its rounds:
// on a shared or virtual machine one run's figures move by tens of percent (docs/performance.md).
const rounds: Row[][] = [];
for (let round = 0; round < REPEAT; round++) {
  if (REPEAT > 1) process.stdout.write(`round ${round + 1} of ${REPEAT}\n`);
  const order = round % 2 === 0 ? RELAYS : [...RELAYS].reverse();
  const measured: Row[] = [];
  for (const kind of order) measured.push(await measure(kind));
  rounds.push(RELAYS.map((kind) => measured.find((r) => r.relay === kind) as Row));
}
const rows: Row[] = RELAYS.map((_, i) => medianRow(rounds.map((round) => round[i] as Row)));
if (REPEAT > 1) {
  const roundRatios = (of: (r: Row) => number | undefined): string =>
    rounds
      .map((round) => {
        const b = round.find((r) => r.relay === 'baseline');
        const o = round.find((r) => r.relay === 'onionmc');
        return b !== undefined && o !== undefined ? ratio(of(o), of(b)) : '-';
      })
      .join(' ');
  process.stdout.write(
    `\nonionmc/baseline by round: privmsg/s ${roundRatios((r) => r.flood?.perS)}; CPU µs/privmsg ${roundRatios((r) => r.flood?.cpuUsPerMessage)}; fan-out ${roundRatios((r) => r.fanout?.perS)}\n`,
  );
}

process.stdout.write(
  `${REPEAT > 1 ? `\nmedians of ${REPEAT} rounds:` : ''}\n${formatRow(['relay', 'privmsg/s', 'CPU µs/privmsg', 'well-behaved/s', 'w-b CPU µs', 'p50 ms', 'p99 ms', 'fan-out deliv/s', 'RSS KiB/peer', 'RSS MiB'])}\n`,
);
for (const r of rows) {
  process.stdout.write(
    `${formatRow([r.relay, fmt(r.flood?.perS), fmt(r.flood?.cpuUsPerMessage, 1), fmt(r.wellBehaved?.perS), fmt(r.wellBehaved?.cpuUsPerMessage, 1), fmt(r.p50Ms, 2), fmt(r.p99Ms, 2), fmt(r.fanout?.perS), r.rssPerPeerKiB.toFixed(1), r.rssMiB.toFixed(0)])}\n`,
  );
}
const base = rows.find((r) => r.relay === 'baseline');
const ours = rows.find((r) => r.relay === 'onionmc');
const limited = rows.find((r) => r.relay === 'onionmc-default');
if (base !== undefined && ours !== undefined) {
  process.stdout.write(
    `${formatRow(['onionmc/baseline', ratio(ours.flood?.perS, base.flood?.perS), ratio(ours.flood?.cpuUsPerMessage, base.flood?.cpuUsPerMessage), '-', '-', ratio(ours.p50Ms, base.p50Ms), ratio(ours.p99Ms, base.p99Ms), ratio(ours.fanout?.perS, base.fanout?.perS), ratio(ours.rssPerPeerKiB, base.rssPerPeerKiB), ratio(ours.rssMiB, base.rssMiB)])}\n`,
  );
}
if (ours !== undefined && limited !== undefined) {
  process.stdout.write(
    `${formatRow(['default/bench', '-', '-', ratio(limited.wellBehaved?.perS, ours.wellBehaved?.perS), ratio(limited.wellBehaved?.cpuUsPerMessage, ours.wellBehaved?.cpuUsPerMessage), ratio(limited.p50Ms, ours.p50Ms), ratio(limited.p99Ms, ours.p99Ms), ratio(limited.fanout?.perS, ours.fanout?.perS), '-', '-'])}\n`,
  );
}
process.stdout.write(
  `(onionmc = bench limits, onionmc-default = default limits with well-behaved peers; privmsg/s and CPU µs/privmsg: the flood; well-behaved/s and w-b CPU µs: the well-behaved flood.\n targets: onionmc/baseline privmsg/s ≥ 0.95×, CPU/privmsg ≤ 1.1×, fan-out ≥ 2×; p99 ≤ 5 ms at 1,000/s with 500 peers; 10,000 peers ≤ 250 MB RSS; default/bench well-behaved/s ≥ 0.95×)\n`,
);
const lossLines: string[] = [];
for (const r of rows) {
  const phases: [string, PhaseResult | undefined][] = [
    ['flood', r.flood],
    ['well-behaved', r.wellBehaved],
    ['fan-out', r.fanout],
  ];
  for (const [name, p] of phases)
    if (p !== undefined && (p.lost > 0 || p.peersLost > 0))
      lossLines.push(`${r.relay} ${name}: ${describeLoss(p)} of ${int(p.sent)}`);
  if (r.latencyLost !== undefined && r.latencyLost > 0)
    lossLines.push(`${r.relay} latency: ${int(r.latencyLost)} lost`);
}
process.stdout.write(
  lossLines.length === 0 ? 'nothing lost in any phase\n' : `LOST: ${lossLines.join('; ')}\n`,
);
if (values.json)
  process.stdout.write(
    `JSON ${JSON.stringify({ peers: PEERS, senders: SENDERS, rate: RATE, seconds: SECONDS, repeat: REPEAT, loadAverage: os.loadavg()[0], rows })}\n`,
  );
