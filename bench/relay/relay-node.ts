/**
 * Child process of the relay benchmark: runs ONE relay under test (onionmc's directory node or the
 * baseline) and answers the orchestrator over IPC with its own CPU time and RSS, so nothing the
 * load generator does is charged to it.
 *
 *   node dist-bench/bench/relay/relay-node.js --kind onionmc|baseline --port N --listen-fd 4
 *        [--limits bench|default]
 *
 * The orchestrator binds port N (port 0, read back) and hands the listening socket as fd 4.
 *
 * IPC: sends `{ ready: true }` once listening; answers each `{ stats: id, gc? }` (gc: run a full
 * collection first, when started with --expose-gc) with
 * `{ stats: id, cpuUs, rssBytes, writes, peers, counters, loopDelayP99Ms, loopDelayMaxMs }`
 * (process.cpuUsage user + system; process.memoryUsage().rss; the write system calls the process
 * made so far, `syscw` of /proc/self/io, -1 where it cannot be read; handshaked peers; the
 * relay's counters; its event-loop delay since the previous stats request);
 * exits on `{ exit: true }` or when the IPC channel closes.
 */
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { RunningRelay } from './directory-adapter.js';

const { values } = parseArgs({
  options: {
    kind: { type: 'string' },
    port: { type: 'string' },
    'listen-fd': { type: 'string' },
    limits: { type: 'string', default: 'bench' },
  },
});
const port = Number(values.port);
const fd = Number(values['listen-fd']);
if (!Number.isSafeInteger(fd) || fd < 3) throw new Error('--listen-fd must be a file descriptor');
const profile = values.limits;
if (profile !== 'bench' && profile !== 'default')
  throw new Error(`--limits must be bench or default, not ${profile}`);
let relay: RunningRelay;
// Imported on demand: the baseline's process loads none of onionmc's modules.
if (values.kind === 'onionmc')
  relay = await (await import('./directory-adapter.js')).startOnionmcDirectory(port, fd, profile);
else if (values.kind === 'baseline')
  relay = await (await import('./baseline-relay.js')).startBaselineRelay(port, fd);
else throw new Error(`--kind must be onionmc or baseline, not ${String(values.kind)}`);

const gc = (globalThis as { gc?: () => void }).gc;
/** Event-loop delay since the previous stats request (1 ms resolution): the relay's own stalls. */
const loopDelay = monitorEventLoopDelay({ resolution: 1 });
loopDelay.enable();

/**
 * Write system calls (write, writev, ...) this process has made, from Linux's /proc/self/io; -1
 * without it. Socket writes are nearly all of them: how many a relayed message costs is what
 * coalescing saves (issue 8, item 1).
 */
function writeSyscalls(): number {
  try {
    const match = /^syscw: (\d+)$/m.exec(readFileSync('/proc/self/io', 'latin1'));
    return match === null ? -1 : Number(match[1]);
  } catch {
    return -1;
  }
}

process.on('message', (message: { stats?: number; gc?: boolean; exit?: boolean }) => {
  if (message.exit === true) {
    void relay.close();
    process.exit(0);
  }
  if (message.stats !== undefined) {
    // A full collection first when asked (started with --expose-gc), so RSS compares like with like.
    if (message.gc === true) gc?.();
    const cpu = process.cpuUsage();
    process.send?.({
      stats: message.stats,
      cpuUs: cpu.user + cpu.system,
      rssBytes: process.memoryUsage().rss,
      writes: writeSyscalls(),
      peers: relay.handshakedPeers(),
      counters: relay.counters(),
      loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
      loopDelayMaxMs: loopDelay.max / 1e6,
    });
    loopDelay.reset();
  }
});
process.on('disconnect', () => {
  process.exit(0);
});
process.send?.({ ready: true, ownEntry: relay.ownEntry });
