/**
 * Options, constants and per-peer state of a {@link DirectoryNode} (directory-node.ts), kept
 * apart so the node's parts share them.
 */
import type { Logger } from '../log.js';
import type { NickAuthChallenge } from '../message/nick-auth.js';
import type { NickIdentity } from '../message/nick.js';
import type { PeerConnection } from '../peer/connection.js';
import type { ServerTransport } from '../peer/transport.js';
import { NOT_SERVING_ONION, type Location } from '../wire/location.js';
import type { DirectoryLimitsPolicy, PeerBuckets } from './directory-limits.js';

/** ng closes a connection whose first line does not arrive within 30 s (docs/protocol.md §2.5, ng directory). */
export const DIRECTORY_HANDSHAKE_TIMEOUT_MS = 30_000;
/** ng's `max_peers`: handshakes beyond it get `accepted:false` "Maximum peers reached" (docs/protocol.md §9.2). */
export const DEFAULT_MAX_PEERS = 10_000;
/**
 * Connections not yet handshaked that we hold at once; a connection beyond it is closed at accept.
 * Room for a 2,000-handshake reconnect storm (docs/limits.md).
 */
export const DEFAULT_MAX_PENDING_HANDSHAKES = 3_000;

/** How long {@link DirectoryNode.stop} waits for the listener to close. */
export const DIRECTORY_STOP_DEADLINE_MS = 5_000;
/** ng answers getpeerlist in chunks of 20 entries (docs/protocol.md §3.4). */
export const GETPEERLIST_CHUNK_ENTRIES = 20;

/**
 * A coalesced departure peerlist stays below this many characters (all ASCII), leaving room for the
 * envelope under the 40,000-byte send limit (docs/protocol.md §1.3).
 */
export const DEPARTURE_LINE_MAX_CHARS = 39_000;

/** ng: a peer has 30 s to answer a nick-auth challenge (docs/protocol.md §9.6, `nick_auth_timeout`). */
export const NICK_AUTH_TIMEOUT_MS = 30_000;

/** Heartbeat timers in ms (docs/protocol.md §4.7: ng sweeps every 60 s, probes after 600 s idle, waits 30 s, evicts after 1,500 s). */
export interface HeartbeatOptions {
  readonly sweepIntervalMs: number;
  readonly probeIdleMs: number;
  readonly pongTimeoutMs: number;
  readonly evictIdleMs: number;
}

/** ng's heartbeat defaults (docs/protocol.md §4.7). */
export const DEFAULT_HEARTBEAT: HeartbeatOptions = {
  sweepIntervalMs: 60_000,
  probeIdleMs: 600_000,
  pongTimeoutMs: 30_000,
  evictIdleMs: 1_500_000,
};

/** Nick authentication policy (JMP-0005, docs/protocol.md §9.6). */
export interface NickAuthPolicy {
  readonly mode: 'prefer_verified' | 'require_verified' | 'disabled';
  /** Our directory-id, bound into every proof: by default our own location, lower-cased. */
  readonly directoryId: string;
}

/** A relayed message, as reported to local observers (the operator's API). */
export interface RelayEvent {
  readonly kind: 'privmsg' | 'pubmsg';
  readonly from: string;
  readonly to: string;
  /** The command word (first token after `!`). */
  readonly cmd: string;
  /** The `line` relayed, exactly as sent on. */
  readonly line: string;
}

/** Options of a {@link DirectoryNode}. */
export interface DirectoryNodeOptions {
  readonly identity: NickIdentity;
  /** The handshake network name (docs/protocol.md §2.2). */
  readonly network: string;
  /** Our own location string: `<onion>:5222`, or `127.0.0.1:<port>` in testing mode (docs/protocol.md §2.2). */
  readonly ownLocation: string;
  /** The motd sent in every 795 (docs/protocol.md §2.4). */
  readonly motd: string;
  readonly server: ServerTransport;
  readonly logger: Logger;
  /**
   * Which advertised peer locations we admit (a policy, answered with `accepted:false`). Default:
   * any location that parses. On Tor, the daemon admits only v3 onions and NOT-SERVING-ONION, as
   * ng does (docs/protocol.md §2.1).
   */
  readonly acceptLocation?: (location: Location) => boolean;
  /** See {@link DIRECTORY_HANDSHAKE_TIMEOUT_MS}. */
  readonly handshakeTimeoutMs?: number;
  /**
   * Features advertised in our 795 (docs/protocol.md §9.1); the reference sends `{}`. `nick_auth` is set or
   * removed according to {@link DirectoryNodeOptions.nickAuth} (docs/protocol.md §9.6).
   */
  readonly features?: Readonly<Record<string, boolean>>;
  /** Idle-peer probing and eviction (docs/protocol.md §4.7); default {@link DEFAULT_HEARTBEAT}. */
  readonly heartbeat?: HeartbeatOptions;
  /** Nick authentication; default disabled (the reference has none). */
  readonly nickAuth?: NickAuthPolicy;
  /** Clock in ms; default `Date.now`. */
  readonly now?: () => number;
  /** Rate limits (docs/limits.md); default `DEFAULT_DIRECTORY_LIMITS` (directory-limits.ts). */
  readonly limits?: DirectoryLimitsPolicy;
  /** See {@link DEFAULT_MAX_PEERS}. */
  readonly maxPeers?: number;
  /** See {@link DEFAULT_MAX_PENDING_HANDSHAKES}. */
  readonly maxPendingHandshakes?: number;
  /** Per-peer cap on queued outbound bytes; default `MAX_QUEUED_BYTES_PER_PEER` (1 MiB). */
  readonly maxQueuedBytes?: number;
}

/** Sizes of what a directory node holds (for tests and the API); all 0 once every peer left. */
export interface DirectoryNodeStats {
  /** Open connections, handshaked or not. */
  readonly connections: number;
  /** Connections that have not completed their handshake (nick authentication included). */
  readonly pendingHandshakes: number;
  readonly handshaked: number;
  /** Entries of the nick -> peer map. */
  readonly nicks: number;
  /** Entries of the nick -> connection map that privmsgs are relayed through. */
  readonly relayTargets: number;
  /** Nicks refused after flooding (not per connection: they expire). */
  readonly bannedNicks: number;
}

/** What the directory node knows of one connected peer. */
export interface DirectoryPeerInfo {
  readonly connectionId: number;
  readonly nick: string | undefined;
  readonly location: string | undefined;
  readonly state: 'connected' | 'authenticating' | 'handshaked';
  readonly verified: boolean;
  readonly features: readonly string[];
  readonly remote: string;
}

/** The features of a peer that announced none: one shared empty set, not one per connection. */
const NO_FEATURES: ReadonlySet<string> = new Set();
/** The peerlist frame of a peer not yet handshaked. */
const NO_FRAME = new Uint8Array();

/** What the directory node keeps per connection. */
export class DirectoryPeer {
  // Relaying a privmsg reads none of this of its recipient, only its connection (the directory
  // node's relay targets; `conn.wantsPeerlistFeatures`): at 10,000 peers each object touched is a
  // cache miss (docs/performance.md "Where the time goes").
  state: 'connected' | 'authenticating' | 'handshaked' | 'closed' = 'connected';
  nick: string | undefined;
  location: string | undefined;
  features: ReadonlySet<string> = NO_FEATURES;
  /** True once the peer proved it holds its nick's key (docs/protocol.md §9.6). */
  verified = false;
  /** The compressed pubkey (hex) the peer proved, once {@link verified}. */
  verifiedKey: string | undefined;
  /**
   * The 789 frames sent after relaying this peer's privmsgs (docs/protocol.md §3.3 case 1), encoded once at
   * registration: plain, and with `;F:` for recipients that advertised peerlist_features (the
   * same Buffer when the peer has no features). Empty before.
   */
  relayPeerlistFrame: Uint8Array = NO_FRAME;
  relayPeerlistFrameWithFeatures: Uint8Array = NO_FRAME;
  /** The exact 793 line and the challenge we sent, during nick authentication. */
  handshakeLine = '';
  challenge: NickAuthChallenge | undefined;

  constructor(
    readonly conn: PeerConnection,
    /** This connection's rate-limit buckets (directory-limits.ts). */
    readonly buckets: PeerBuckets,
  ) {}

  get isServing(): boolean {
    return this.location !== undefined && this.location !== NOT_SERVING_ONION;
  }
}
