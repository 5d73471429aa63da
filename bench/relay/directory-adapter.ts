/**
 * The one place the benchmark touches onionmc's directory node API: starts a DirectoryNode on
 * loopback in testing-mode shape (docs/protocol.md §8.4), nick-auth disabled, logging silenced,
 * as `onionmc run` would for a directory in testing mode. Its limits come from a
 * `[MESSAGING:onion]` section parsed by the product's own config loader (src/config/config.ts), so
 * the benchmark's profiles are exactly what an operator would write in joinmarket.cfg
 * (docs/limits.md). When the DirectoryNode constructor or its transport changes, only this file
 * changes.
 */
import { parseConfig } from '../../src/config/config.js';
import { applyDaemonV8Flags } from '../../src/daemon/heap-tuning.js';
import { silentLogger } from '../../src/log.js';
import { createNickIdentity } from '../../src/message/nick.js';
import { DirectoryNode } from '../../src/node/directory-node.js';
import { TcpServerTransport } from '../../src/peer/transport.js';

/** A running relay under test. */
export interface RunningRelay {
  /** The loopback TCP port it listens on. */
  readonly port: number;
  /** The 789 entry it puts first in relay peerlists (`nick;host:port`). */
  readonly ownEntry: string;
  /** Handshaked peers connected now. */
  handshakedPeers(): number;
  /** The relay's counters (onionmc's `GET /v1/info` counters; the baseline has none). */
  counters(): Record<string, number>;
  close(): Promise<void>;
}

/** The limit profiles of the benchmark (docs/limits.md, docs/performance.md). */
export type LimitsProfile = 'default' | 'bench';

/**
 * The `bench` profile: joinmarket.cfg keys that raise every fairness limit out of the way, so the
 * benchmark measures capacity (how much the node can relay), not the per-peer budgets; the
 * `default` profile sets no key. Documented in docs/limits.md and joinmarket.cfg.example.
 */
export const BENCH_LIMIT_KEYS: Readonly<Record<string, number>> = {
  limit_message_rate: 100_000_000,
  limit_message_burst: 100_000_000,
  limit_read_rate: 1_000_000_000,
  limit_read_burst: 1_000_000_000,
  limit_fanout_rate: 100_000_000,
  limit_fanout_burst: 100_000_000,
  limit_node_fanout_rate: 100_000_000,
  limit_node_fanout_burst: 100_000_000,
  limit_offence_rate: 100_000_000,
  limit_offence_burst: 100_000_000,
  max_queued_bytes: 64 * 1024 * 1024,
};

/** The joinmarket.cfg text of a profile (what an operator would write). */
export function benchConfigText(profile: LimitsProfile): string {
  const keys =
    profile === 'bench'
      ? Object.entries(BENCH_LIMIT_KEYS).map(([k, v]) => `${k} = ${String(v)}\n`)
      : [];
  return `[BLOCKCHAIN]\nnetwork = testnet\n\n[MESSAGING:onion]\ntype = onion\n${keys.join('')}`;
}

/**
 * Starts onionmc's directory node at 127.0.0.1:`port`, accepting on the listening socket `fd`
 * that the caller bound there (its location names the port, so the caller binds first), with the
 * limits of `profile`.
 * @throws ConfigError when the profile's configuration does not parse (a bug of this file).
 */
export async function startOnionmcDirectory(
  port: number,
  fd: number,
  profile: LimitsProfile,
): Promise<RunningRelay> {
  // The V8 heap flags `onionmc run` sets for its process.
  applyDaemonV8Flags();
  const config = parseConfig(benchConfigText(profile), `bench-${profile}.cfg`, {
    requireDirectoryNodes: false,
  });
  const identity = createNickIdentity();
  const ownLocation = `127.0.0.1:${port}`;
  const server = new TcpServerTransport('127.0.0.1', port, config.limits.listenBacklog, fd);
  const node = new DirectoryNode({
    identity,
    network: 'testnet',
    ownLocation,
    motd: 'onionmc relay benchmark',
    server,
    logger: silentLogger(),
    features: {},
    nickAuth: { mode: 'disabled', directoryId: ownLocation },
    limits: config.limits.policy,
    maxPeers: config.limits.maxPeers,
    maxPendingHandshakes: config.limits.maxPendingHandshakes,
    handshakeTimeoutMs: config.limits.handshakeTimeoutMs,
    maxQueuedBytes: config.limits.maxQueuedBytes,
  });
  await node.start();
  return {
    port,
    ownEntry: `${identity.nick};${ownLocation}`,
    handshakedPeers: () => node.stats().handshaked,
    counters: () => node.counters.snapshot(),
    close: () => server.close(),
  };
}
