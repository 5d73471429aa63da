/**
 * What the parts of a maker or taker node share: the options, clock, counters, event emitter,
 * the lifecycle signal, the two link kinds and the table of other nicks ({@link KnownPeers}).
 * Each part (directory-links.ts, peer-links.ts, router.ts, end-to-end.ts, offers-part.ts) gets
 * one {@link ClientContext} and nothing else, so each can be built and tested alone.
 */
import type { Logger } from '../log.js';
import type { PeerConnection } from '../peer/connection.js';
import { encodeClientHandshake, JM_APP_NAME, JM_PROTOCOL_VERSION } from '../wire/handshake.js';
import type { Backoff } from './backoff.js';
import { Counters, dropCounter, type DropReason } from './counters.js';
import type { ClientNodeEvents, ClientNodeOptions } from './client-types.js';
import type { NickSigner, NickVerifier } from './nick-signer.js';

type Listener<K extends keyof ClientNodeEvents> = (event: ClientNodeEvents[K]) => void;

/** A typed event emitter; a listener that throws is logged and does not stop the others. */
export class ClientEvents {
  readonly #listeners = new Map<keyof ClientNodeEvents, Set<Listener<never>>>();
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** Subscribes; returns the function that unsubscribes. */
  on<K extends keyof ClientNodeEvents>(event: K, listener: Listener<K>): () => void {
    let set = this.#listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener);
    return () => set.delete(listener);
  }

  emit<K extends keyof ClientNodeEvents>(event: K, payload: ClientNodeEvents[K]): void {
    const set = this.#listeners.get(event);
    if (set === undefined) return;
    for (const listener of set) {
      try {
        (listener as Listener<K>)(payload);
      } catch (err) {
        this.#logger.error({ err, event }, 'event listener failed');
      }
    }
  }
}

/** A link to one configured directory node. */
export class DirectoryLink {
  state: 'idle' | 'connecting' | 'handshaking' | 'authenticating' | 'handshaked' | 'stopped' =
    'idle';
  /** The exact 793 line sent on the current connection (nick-auth signs its hash, docs/protocol.md §9.6). */
  handshakeLine = '';
  /** Our 793 on the current connection offered nick_auth. */
  offeredNickAuth = false;
  conn: PeerConnection | undefined;
  nick: string | undefined;
  motd: string | undefined;
  features: ReadonlySet<string> = new Set();
  handshakedAt = 0;
  /** The reconnect timer. */
  timer: NodeJS.Timeout | undefined;
  abort: AbortController | undefined;
  /** Set by relocate(): the next reconnect happens without delay. */
  reconnectNow = false;

  constructor(
    readonly location: string,
    readonly host: string,
    readonly port: number,
    readonly backoff: Backoff,
  ) {}

  /** True when messages can be sent on this link. */
  get isUp(): boolean {
    return this.state === 'handshaked' && this.conn !== undefined;
  }
}

/** A direct link to another maker or taker. */
export class PeerLink {
  state: 'handshaking' | 'handshaked' | 'closed' = 'handshaking';
  nick: string | undefined;
  location: string | undefined;
  features: ReadonlySet<string> = new Set();

  constructor(
    readonly conn: PeerConnection,
    /** For outbound links: the nick we dialed. */
    readonly expectedNick: string | undefined,
  ) {}
}

/** What we know of another nick. */
export interface KnownPeer {
  location: string | undefined;
  /** Directories that delivered messages from this nick (docs/protocol.md §4.3). */
  readonly directories: Set<DirectoryLink>;
  /** Handshaked direct link, if any. */
  link: PeerLink | undefined;
  /** The pending direct dial, if any. */
  dialing: AbortController | undefined;
  /** Redial backoff of direct dials (docs/protocol.md §4.5). */
  readonly redial: Backoff;
  nextDialAt: number;
  lastOrderbookReplyAt: number;
  /** The directory location this nick's last `!orderbook` came through (our answer goes back there). */
  orderbookRequestDirectory: string | undefined;
}

/**
 * Most nicks a maker or taker remembers (ng's directory node admits 10,000 peers). A reference
 * directory node relays pubmsgs under any sender nick (docs/protocol.md §4.1) and announces no
 * departure for nicks that never connected, and a direct link may handshake under any nick: past
 * the cap the least recently heard nick without a direct link is forgotten as if it had left (its
 * offers go, `nickLeave`), counted `evicted.known-nick`.
 */
export const MAX_KNOWN_NICKS = 10_000;

/** The table of other nicks: their locations, the directories carrying them, direct links. */
export class KnownPeers {
  readonly #known = new Map<string, KnownPeer>();
  readonly #newBackoff: () => Backoff;
  readonly #onLeft: (nick: string) => void;
  readonly #onEvicted: (() => void) | undefined;

  /** @param onEvicted called for each nick forgotten past {@link MAX_KNOWN_NICKS}. */
  constructor(newBackoff: () => Backoff, onLeft: (nick: string) => void, onEvicted?: () => void) {
    this.#newBackoff = newBackoff;
    this.#onLeft = onLeft;
    this.#onEvicted = onEvicted;
  }

  get(nick: string): KnownPeer | undefined {
    return this.#known.get(nick);
  }

  /** Number of known nicks. */
  get size(): number {
    return this.#known.size;
  }

  /**
   * The entry of `nick`, created when missing (forgetting the least recently heard nick without
   * a direct link when {@link MAX_KNOWN_NICKS} are known); `nick` becomes the most recently heard.
   */
  ensure(nick: string): KnownPeer {
    let known = this.#known.get(nick);
    if (known !== undefined) {
      this.#known.delete(nick);
      this.#known.set(nick, known);
    } else {
      if (this.#known.size >= MAX_KNOWN_NICKS) this.#evictOne();
      known = {
        location: undefined,
        directories: new Set(),
        link: undefined,
        dialing: undefined,
        redial: this.#newBackoff(),
        nextDialAt: 0,
        lastOrderbookReplyAt: -Infinity,
        orderbookRequestDirectory: undefined,
      };
      this.#known.set(nick, known);
    }
    return known;
  }

  /**
   * `directory` no longer carries `nick`; when nothing else does (no other directory, no direct
   * link), the nick has left (docs/protocol.md §3.2).
   */
  forgetDirectory(nick: string, directory: DirectoryLink): void {
    const known = this.#known.get(nick);
    if (
      known !== undefined &&
      known.directories.delete(directory) &&
      known.directories.size === 0 &&
      known.link === undefined
    ) {
      this.#known.delete(nick);
      this.#onLeft(nick);
    }
  }

  /** Forgets the least recently heard nick that has no direct link nor a dial under way. */
  #evictOne(): void {
    for (const [nick, known] of this.#known) {
      if (known.link !== undefined || known.dialing !== undefined) continue;
      this.#known.delete(nick);
      this.#onEvicted?.();
      this.#onLeft(nick);
      return;
    }
  }

  /** Every known nick. */
  nicks(): string[] {
    return [...this.#known.keys()];
  }

  /** Aborts every pending direct dial. */
  abortDials(): void {
    for (const known of this.#known.values()) known.dialing?.abort();
  }
}

/** What every part of a client node gets. */
export interface ClientContext {
  readonly options: ClientNodeOptions;
  readonly logger: Logger;
  readonly now: () => number;
  readonly random: () => number;
  readonly counters: Counters;
  readonly events: ClientEvents;
  readonly peers: KnownPeers;
  /** Our nick. */
  readonly nick: string;
  /** Signs as our nick (privmsgs, nick-auth proofs). */
  readonly signer: NickSigner;
  /** Checks the nick signature of received privmsgs. */
  readonly verifier: NickVerifier;
  /** Our current location string (relocate() changes it). */
  readonly location: string;
  /** True between a successful start() and stop(). */
  readonly running: boolean;
  /** Aborted by stop(): pending dials and waits end at once. */
  readonly signal: AbortSignal;
  /** Counts and reports a dropped message (one counter per reason). */
  drop(from: string | undefined, reason: DropReason, detail?: string): void;
}

/** Our 793 under the current location (docs/protocol.md §2.3). */
export function clientHandshakeLine(ctx: ClientContext): string {
  const features = { ...ctx.options.features };
  // Nick authentication signs a text holding our public key (docs/protocol.md §9.6): not offered
  // while the signer does not know it.
  if (ctx.signer.publicKeyHex === undefined) delete features.nick_auth;
  return encodeClientHandshake({
    appName: JM_APP_NAME,
    directory: false,
    locationString: ctx.location,
    protoVer: JM_PROTOCOL_VERSION,
    features,
    nick: ctx.nick,
    network: ctx.options.network,
  });
}

/** The standard {@link ClientContext.drop}. */
export function reportDrop(
  ctx: Pick<ClientContext, 'counters' | 'logger' | 'events'>,
  from: string | undefined,
  reason: DropReason,
  detail?: string,
): void {
  ctx.counters.add(dropCounter(reason));
  const full = detail === undefined ? reason : `${reason}: ${detail}`;
  ctx.logger.info({ from, reason: full }, 'message dropped');
  ctx.events.emit('dropped', { from, reason: full });
}
