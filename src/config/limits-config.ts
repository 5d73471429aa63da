/**
 * The `[MESSAGING:onion]` keys of a directory node's limits (docs/limits.md): rate limits, caps on
 * connections and queued bytes. Read by {@link parseConfig} (config.ts) like its other keys: a bad
 * value is a problem naming the key, a missing one takes the default.
 */
import { DEFAULT_DIRECTORY_LIMITS, type DirectoryLimitsPolicy } from '../node/directory-limits.js';
import {
  DEFAULT_MAX_PEERS,
  DEFAULT_MAX_PENDING_HANDSHAKES,
  DIRECTORY_HANDSHAKE_TIMEOUT_MS,
} from '../node/directory-types.js';
import { MAX_QUEUED_BYTES_PER_PEER } from '../peer/connection.js';
import { DEFAULT_LISTEN_BACKLOG } from '../peer/transport.js';
import { MAX_RECEIVE_LINE_BYTES } from '../wire/framing.js';

/** The limit keys (all onionmc's own). */
export const LIMIT_KEYS = [
  'limit_message_rate',
  'limit_message_burst',
  'limit_read_rate',
  'limit_read_burst',
  'limit_fanout_rate',
  'limit_fanout_burst',
  'limit_orderbook_interval',
  'limit_orderbook_burst',
  'limit_getpeerlist_interval',
  'limit_getpeerlist_burst',
  'limit_node_fanout_rate',
  'limit_node_fanout_burst',
  'limit_offence_rate',
  'limit_offence_burst',
  'limit_ban',
  'max_peers',
  'max_pending_handshakes',
  'handshake_timeout',
  'max_queued_bytes',
  'listen_backlog',
  'api_event_buffer_bytes',
] as const;

/** A directory node's limits as configured. */
export interface LimitsConfig {
  readonly policy: DirectoryLimitsPolicy;
  readonly maxPeers: number;
  readonly maxPendingHandshakes: number;
  readonly handshakeTimeoutMs: number;
  readonly maxQueuedBytes: number;
  readonly listenBacklog: number;
  readonly apiEventBufferBytes: number;
}

/** The limit defaults. */
export const DEFAULT_LIMITS_CONFIG: LimitsConfig = {
  policy: DEFAULT_DIRECTORY_LIMITS,
  maxPeers: DEFAULT_MAX_PEERS,
  maxPendingHandshakes: DEFAULT_MAX_PENDING_HANDSHAKES,
  handshakeTimeoutMs: DIRECTORY_HANDSHAKE_TIMEOUT_MS,
  maxQueuedBytes: MAX_QUEUED_BYTES_PER_PEER,
  listenBacklog: DEFAULT_LISTEN_BACKLOG,
  /** `API_MAX_EVENT_BUFFER_BYTES` of src/api/server.ts (not imported: config stays free of the API). */
  apiEventBufferBytes: 1024 * 1024,
};

/** What {@link readLimits} needs of config.ts's section reader. */
export interface LimitsReader {
  /** An integer in [min, max], or `fallback` (a problem is recorded for a bad value). */
  integer(key: string, fallback: number, min: number, max: number): number;
  /** Seconds in the file, returned in ms, or `fallbackMs`. */
  seconds(key: string, fallbackMs: number): number;
}

const MAX_COUNT = 100_000_000;
const MAX_BYTES = 1024 * 1024 * 1024;

/** Reads every limit key (docs/limits.md). */
export function readLimits(r: LimitsReader): LimitsConfig {
  const d = DEFAULT_DIRECTORY_LIMITS;
  const count = (key: string, fallback: number): number => r.integer(key, fallback, 1, MAX_COUNT);
  const perInterval = (key: string, fallbackRate: number): number =>
    1000 / r.seconds(key, 1000 / fallbackRate);
  const D = DEFAULT_LIMITS_CONFIG;
  return {
    policy: {
      messages: {
        ratePerSecond: count('limit_message_rate', d.messages.ratePerSecond),
        burst: count('limit_message_burst', d.messages.burst),
      },
      readBytes: {
        ratePerSecond: r.integer('limit_read_rate', d.readBytes.ratePerSecond, 1024, MAX_BYTES),
        // At least the longest line a peer may send (docs/protocol.md §1.3): a full bucket then
        // pays for any one line at once.
        burst: r.integer('limit_read_burst', d.readBytes.burst, MAX_RECEIVE_LINE_BYTES, MAX_BYTES),
      },
      deliveries: {
        ratePerSecond: count('limit_fanout_rate', d.deliveries.ratePerSecond),
        burst: count('limit_fanout_burst', d.deliveries.burst),
      },
      orderbook: {
        ratePerSecond: perInterval('limit_orderbook_interval', d.orderbook.ratePerSecond),
        burst: count('limit_orderbook_burst', d.orderbook.burst),
      },
      getpeerlist: {
        ratePerSecond: perInterval('limit_getpeerlist_interval', d.getpeerlist.ratePerSecond),
        burst: count('limit_getpeerlist_burst', d.getpeerlist.burst),
      },
      globalDeliveries: {
        ratePerSecond: count('limit_node_fanout_rate', d.globalDeliveries.ratePerSecond),
        burst: count('limit_node_fanout_burst', d.globalDeliveries.burst),
      },
      offences: {
        ratePerSecond: count('limit_offence_rate', d.offences.ratePerSecond),
        burst: count('limit_offence_burst', d.offences.burst),
      },
      banMs: r.seconds('limit_ban', d.banMs),
    },
    maxPeers: count('max_peers', D.maxPeers),
    maxPendingHandshakes: count('max_pending_handshakes', D.maxPendingHandshakes),
    handshakeTimeoutMs: r.seconds('handshake_timeout', D.handshakeTimeoutMs),
    maxQueuedBytes: r.integer('max_queued_bytes', D.maxQueuedBytes, 65_536, MAX_BYTES),
    listenBacklog: r.integer('listen_backlog', D.listenBacklog, 1, 65_535),
    apiEventBufferBytes: r.integer(
      'api_event_buffer_bytes',
      D.apiEventBufferBytes,
      4096,
      MAX_BYTES,
    ),
  };
}
