/**
 * Directory node relay benchmark: onionmc's directory node against a minimal baseline relay
 * (bench/relay/baseline-relay.ts), in one run, with the same load generator in the same process
 * layout: the relay under test in one process (pinned to core 0 with `taskset` where it exists),
 * the load generator in another (core 1), this orchestrator idle in a third. Each relay in turn:
 *
 * 1. PEERS peers connect and handshake (793/795, docs/protocol.md §2.3-§2.4): RSS per connected peer;
 * 2. flood: SENDERS peers send privmsgs as fast as the relay takes them (≤ 20,000 in flight):
 *    relayed privmsgs/s at saturation, and the relay's CPU µs per relayed privmsg;
 * 3. latency: RATE privmsgs/s offered: p50/p99 send-to-receive time;
 * 4. fan-out: FANOUT_SENDERS peers send pubmsgs: deliveries/s to the other peers.
 *
 * The relay reports its own CPU (process.cpuUsage) and RSS over IPC; the generator reports its own
 * CPU so it is not charged to the relay. Prints one row per relay and their ratios.
 *
 *   npm run bench -- [--peers 500] [--senders 250] [--rate 1000] [--seconds 10]
 *                    [--fanout-senders 4] [--relays baseline,onionmc]
 *
 * docs/performance.md has the figures and how to reproduce them.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { listeningFd, listenOnFreePort, portOf } from '../src/demo/cluster.js';
import type { GeneratorCommand, GeneratorReport } from './relay/load-generator.js';

const { values } = parseArgs({
  options: {
    peers: { type: 'string', default: '500' },
    senders: { type: 'string' },
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '10' },
    'fanout-senders': { type: 'string', default: '4' },
    relays: { type: 'string', default: 'baseline,onionmc' },
  },
});

function intOption(name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) {
    process.stderr.write(`--${name} must be an integer in [${min}, ${max}], not ${text}\n`);
    process.exit(2);
  }
  return n;
}

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
const RELAYS = values.relays.split(',').filter((r) => r === 'baseline' || r === 'onionmc');
const PHASE_TIMEOUT_MS = SECONDS * 3000 + 60_000;

const PIN =
  os.availableParallelism() >= 2 && spawnSync('taskset', ['-c', '0', 'true']).status === 0;
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

interface Row {
  readonly relay: string;
  readonly privmsgsPerS: number;
  readonly cpuUsPerPrivmsg: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly fanoutPerS: number;
  readonly cpuUsPerDelivery: number;
  readonly rssPerPeerKiB: number;
  readonly rssMiB: number;
}

async function measure(kind: string): Promise<Row> {
  // We bind the relay's port (0, read back) and hand it the listening socket as its fd 4.
  const listener = await listenOnFreePort();
  const port = portOf(listener);
  const relay = spawnChild(
    './relay/relay-node.js',
    ['--kind', kind, '--port', String(port), '--listen-fd', '4'],
    0,
    ['--expose-gc'],
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

    const f0 = await relayStats(relay);
    const flood = await runPhase(generator, { phase: 'flood', seconds: SECONDS, senders: SENDERS });
    const f1 = await relayStats(relay);
    const privmsgsPerS = flood.receivedInWindow / flood.elapsedS;
    const cpuUsPerPrivmsg = (f1.cpuUs - f0.cpuUs) / Math.max(1, flood.receivedTotal);
    say(
      `flood: ${SENDERS} senders, ${flood.sent} sent, ${flood.receivedInWindow} relayed in ${flood.elapsedS.toFixed(1)} s, ${flood.receivedTotal} in total (${flood.sent - flood.receivedTotal} lost); relay CPU ${((f1.cpuUs - f0.cpuUs) / 1e6).toFixed(2)} s, generator CPU ${((100 * flood.cpuUs) / 1e6 / flood.elapsedS).toFixed(0)}% of a core; RSS ${(f1.rssBytes / 2 ** 20).toFixed(0)} MiB`,
    );

    const lat = await runPhase(generator, {
      phase: 'latency',
      seconds: SECONDS,
      senders: SENDERS,
      rate: RATE,
    });
    say(
      `latency at ${RATE} privmsgs/s offered: ${lat.sent} sent, ${lat.receivedTotal} received; p50 ${((lat.p50Us ?? 0) / 1000).toFixed(2)} ms, p99 ${((lat.p99Us ?? 0) / 1000).toFixed(2)} ms, max ${((lat.maxUs ?? 0) / 1000).toFixed(1)} ms`,
    );

    const p0 = await relayStats(relay);
    const fan = await runPhase(generator, {
      phase: 'fanout',
      seconds: SECONDS,
      senders: FANOUT_SENDERS,
    });
    const p1 = await relayStats(relay);
    const fanoutPerS = fan.receivedInWindow / fan.elapsedS;
    const cpuUsPerDelivery = (p1.cpuUs - p0.cpuUs) / Math.max(1, fan.receivedTotal);
    say(
      `fan-out: ${FANOUT_SENDERS} senders, ${fan.receivedInWindow} deliveries in ${fan.elapsedS.toFixed(1)} s, ${fan.receivedTotal} of ${fan.sent} in total; relay CPU ${((p1.cpuUs - p0.cpuUs) / 1e6).toFixed(2)} s (${cpuUsPerDelivery.toFixed(2)} µs/delivery), generator CPU ${((100 * fan.cpuUs) / 1e6 / fan.elapsedS).toFixed(0)}% of a core; RSS ${(p1.rssBytes / 2 ** 20).toFixed(0)} MiB`,
    );
    return {
      relay: kind,
      privmsgsPerS,
      cpuUsPerPrivmsg,
      p50Ms: (lat.p50Us ?? 0) / 1000,
      p99Ms: (lat.p99Us ?? 0) / 1000,
      fanoutPerS,
      cpuUsPerDelivery,
      rssPerPeerKiB,
      rssMiB: withPeers.rssBytes / 2 ** 20,
    };
  } finally {
    generator.kill('SIGTERM');
    relay.kill('SIGTERM');
  }
}

function formatRow(cells: string[]): string {
  const widths = [10, 12, 14, 9, 9, 16, 13, 13];
  return cells
    .map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 10) : c.padStart(widths[i] ?? 10)))
    .join(' ');
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');

process.stdout.write(
  `relay benchmark: ${PEERS} peers, ${SENDERS} senders, ${RATE} privmsgs/s offered for latency, ${SECONDS} s per phase, ${FANOUT_SENDERS} pubmsg senders; ${PIN ? 'relay pinned to core 0, generator to core 1' : 'not pinned (no taskset or one core)'}; ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} × ${os.availableParallelism()}, load average ${os.loadavg()[0]?.toFixed(2) ?? '?'}\n`,
);
const rows: Row[] = [];
for (const kind of RELAYS) rows.push(await measure(kind));
process.stdout.write(
  `\n${formatRow(['relay', 'privmsg/s', 'CPU µs/privmsg', 'p50 ms', 'p99 ms', 'fan-out deliv/s', 'RSS KiB/peer', 'RSS MiB'])}\n`,
);
for (const r of rows) {
  process.stdout.write(
    `${formatRow([r.relay, int(r.privmsgsPerS), r.cpuUsPerPrivmsg.toFixed(1), r.p50Ms.toFixed(2), r.p99Ms.toFixed(2), int(r.fanoutPerS), r.rssPerPeerKiB.toFixed(1), r.rssMiB.toFixed(0)])}\n`,
  );
}
const base = rows.find((r) => r.relay === 'baseline');
const ours = rows.find((r) => r.relay === 'onionmc');
if (base !== undefined && ours !== undefined) {
  const ratio = (a: number, b: number): string => (b > 0 ? `${(a / b).toFixed(2)}×` : '-');
  process.stdout.write(
    `${formatRow(['ratio', ratio(ours.privmsgsPerS, base.privmsgsPerS), ratio(ours.cpuUsPerPrivmsg, base.cpuUsPerPrivmsg), ratio(ours.p50Ms, base.p50Ms), ratio(ours.p99Ms, base.p99Ms), ratio(ours.fanoutPerS, base.fanoutPerS), ratio(ours.rssPerPeerKiB, base.rssPerPeerKiB), ratio(ours.rssMiB, base.rssMiB)])}\n`,
  );
  process.stdout.write(
    `(ratio = onionmc / baseline; targets: privmsg/s ≥ 0.95×, CPU/privmsg ≤ 1.1×, fan-out ≥ 2×, p99 ≤ 5 ms at 1,000/s with 500 peers)\n`,
  );
}
