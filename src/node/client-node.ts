/**
 * A JoinMarket maker or taker on the onion message channel (docs/protocol.md §2.3-§2.8, §4,
 * §10 "Maker role", "Taker role"). This file is the facade; each job is a part with its own file:
 *
 * | part                 | file                 | job                                                       |
 * | -------------------- | -------------------- | --------------------------------------------------------- |
 * | {@link DirectoryLinks} | directory-links.ts | dial, handshake, reconnect, probe directories; nick-auth  |
 * | {@link PeerLinks}    | peer-links.ts        | direct links: accept, dial with redial backoff, handshake |
 * | {@link Router}       | router.ts            | checks incoming (signature, dedup), routes outgoing       |
 * | {@link EndToEnd}     | end-to-end.ts        | NaCl keys in `!fill`/`!pubkey`, encrypted commands        |
 * | offers               | offers-part.ts       | orderbook collection; the maker's announce and answers    |
 * | {@link PrivmsgDelivery} | privmsg-delivery.ts | incoming privmsgs to the application; sends by any signer |
 *
 * Role differences live in the parts: only a maker gets a {@link MakerResponder}. Applications
 * talk to it through {@link ClientNode.pubmsg}, {@link ClientNode.privmsg} and
 * {@link ClientNode.on}.
 */
import { OnionmcError } from '../errors.js';
import type { Logger } from '../log.js';
import { flushAllConnections } from '../peer/connection.js';
import { Backoff } from './backoff.js';
import {
  ClientEvents,
  KnownPeers,
  reportDrop,
  type ClientContext,
  type DirectoryLink,
} from './client-context.js';
import type {
  ClientNodeEvents,
  ClientNodeOptions,
  ClientRole,
  Delivery,
  PrivmsgOptions,
  SendResult,
} from './client-types.js';
import { PrivmsgConfirmations } from './client-confirmations.js';
import { Counters, type DropReason } from './counters.js';
import { DirectoryLinks, type DirectoryStatus } from './directory-links.js';
import { EndToEnd } from './end-to-end.js';
import { Orderbook, type Offer } from './offers.js';
import { MakerResponder, OfferAnnouncer, OrderbookCollector } from './offers-part.js';
import { identitySigner, LOCAL_VERIFIER, type NickSigner } from './nick-signer.js';
import { PEER_REDIAL_BACKOFF, PeerLinks } from './peer-links.js';
import { PrivmsgDelivery } from './privmsg-delivery.js';
import { Router } from './router.js';

export type {
  ClientNodeEvents,
  ClientNodeOptions,
  ClientRole,
  Delivery,
  PrivmsgOptions,
  SendResult,
  Via,
} from './client-types.js';
export type { DirectoryStatus } from './directory-links.js';
export { MAX_PENDING_CONFIRMATIONS, PRIVMSG_CONFIRM_TIMEOUT_MS } from './client-confirmations.js';
export {
  DIRECTORY_PROBE_IDLE_MS,
  DIRECTORY_PROBE_INTERVAL_MS,
  DIRECTORY_PROBE_TIMEOUT_MS,
  LINK_HANDSHAKE_TIMEOUT_MS,
} from './directory-links.js';
export type {
  NickSignature,
  NickSigner,
  NickVerifier,
  PrivmsgSignRequest,
  PrivmsgVerdict,
} from './nick-signer.js';
export { identitySigner, LOCAL_VERIFIER } from './nick-signer.js';
export { PEER_REDIAL_MAX_MS, PEER_REDIAL_MIN_MS } from './peer-links.js';
export { ORDERBOOK_REPLY_INTERVAL_MS } from './offers-part.js';

/** How long {@link ClientNode.stop} waits for the maker's listener to close. */
export const CLIENT_STOP_DEADLINE_MS = 5_000;
/** How often expired end-to-end sessions are dropped. */
const SESSION_SWEEP_INTERVAL_MS = 60_000;

/** A JoinMarket maker or taker on the onion message channel. */
export class ClientNode {
  readonly orderbook = new Orderbook();
  readonly counters = new Counters();
  readonly #options: ClientNodeOptions;
  readonly #logger: Logger;
  readonly #events: ClientEvents;
  readonly #peers: KnownPeers;
  readonly #directories: DirectoryLinks;
  readonly #peerLinks: PeerLinks;
  readonly #router: Router;
  readonly #endToEnd: EndToEnd;
  readonly #collector: OrderbookCollector;
  readonly #announcer: OfferAnnouncer;
  readonly #maker: MakerResponder | undefined;
  readonly #signer: NickSigner;
  readonly #confirmations: PrivmsgConfirmations;
  #ownLocation: string;
  #running = false;
  #lifecycle = new AbortController();
  #sweepTimer: NodeJS.Timeout | undefined;

  /**
   * @throws OnionmcError `ERR_CONFIG` when a directory location is not `host:port`, or neither
   *   `identity` nor `signer` is given.
   */
  constructor(options: ClientNodeOptions) {
    this.#options = options;
    this.#ownLocation = options.ownLocation;
    const now = options.now ?? Date.now;
    const random = options.random ?? Math.random;
    const signer =
      options.signer ??
      (options.identity !== undefined ? identitySigner(options.identity) : undefined);
    if (signer === undefined)
      throw new OnionmcError('ERR_CONFIG', 'a client node needs an identity or a signer');
    this.#signer = signer;
    this.#logger = options.logger.child({ role: options.role, nick: signer.nick });
    this.#events = new ClientEvents(this.#logger);
    const peers = (this.#peers = new KnownPeers(
      () => new Backoff(PEER_REDIAL_BACKOFF, random),
      (nick) => {
        this.orderbook.removeNick(nick);
        this.#events.emit('nickLeave', { nick });
      },
      () => {
        this.counters.add('evicted.known-nick');
      },
    ));
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const node = this;
    const ctx: ClientContext = {
      options,
      logger: this.#logger,
      now,
      random,
      counters: this.counters,
      events: this.#events,
      peers,
      nick: signer.nick,
      signer,
      verifier: options.verifier ?? LOCAL_VERIFIER,
      get location() {
        return node.#ownLocation;
      },
      get running() {
        return node.#running;
      },
      get signal() {
        return node.#lifecycle.signal;
      },
      drop: (from: string | undefined, reason: DropReason, detail?: string) => {
        reportDrop(ctx, from, reason, detail);
      },
    };
    this.#endToEnd = new EndToEnd({ enabled: options.endToEnd !== false, now });
    this.#collector = new OrderbookCollector(this.orderbook);
    this.#announcer = new OfferAnnouncer(ctx);
    const delivery = new PrivmsgDelivery(
      ctx,
      { router: () => this.#router, endToEnd: this.#endToEnd, collector: this.#collector },
      options.signer !== undefined,
    );
    this.#maker =
      options.role === 'maker'
        ? new MakerResponder(ctx, this.#announcer, (to, cmd, body, sendOptions) =>
            delivery.send(to, cmd, body, sendOptions),
          )
        : undefined;
    const confirmations = (this.#confirmations = new PrivmsgConfirmations({
      now,
      ...(options.privmsgConfirmTimeoutMs !== undefined
        ? { timeoutMs: options.privmsgConfirmTimeoutMs }
        : {}),
      ...(options.maxPendingConfirmations !== undefined
        ? { maxPending: options.maxPendingConfirmations }
        : {}),
    }));
    this.#directories = new DirectoryLinks(ctx, {
      onChannelMessage: (type, line, link) => {
        this.#router.fromDirectory(type, line, link);
      },
      onUp: (link: DirectoryLink) => {
        this.#maker?.onDirectoryUp(link);
      },
      ping: (conn) => {
        confirmations.ping(conn);
      },
      onPong: (conn) => {
        confirmations.onPong(conn);
      },
      onClosed: (conn) => {
        confirmations.onClose(conn);
      },
    });
    this.#peerLinks = new PeerLinks(ctx, {
      onChannelMessage: (type, line, link) => {
        this.#router.fromPeer(type, line, link);
      },
      onPong: (conn) => {
        confirmations.onPong(conn);
      },
      onClosed: (conn) => {
        confirmations.onClose(conn);
      },
    });
    this.#router = new Router(
      ctx,
      {
        directories: this.#directories,
        peerLinks: this.#peerLinks,
        endToEnd: this.#endToEnd,
        confirmations,
      },
      {
        onPubmsg: (from, message, via) => {
          const commands = this.#collector.onPubmsg(from, message);
          this.#maker?.onPubmsg(from, commands, via);
          this.#events.emit('pubmsg', { from, message, via });
        },
        onPrivmsg: (from, cmd, body, via) => {
          delivery.deliver(from, cmd, body, via);
        },
      },
    );
    // `channel` follows the directory links: up with the first handshaked, down with the last.
    let channelUp = false;
    this.#events.on('directory', () => {
      if (this.hasDirectory === channelUp) return;
      channelUp = this.hasDirectory;
      this.#events.emit('channel', { up: channelUp });
    });
  }

  /** Our nick. */
  get nick(): string {
    return this.#signer.nick;
  }

  get role(): ClientRole {
    return this.#options.role;
  }

  /** Our location string. */
  get location(): string {
    return this.#ownLocation;
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof ClientNodeEvents>(
    event: K,
    listener: (event: ClientNodeEvents[K]) => void,
  ): () => void {
    return this.#events.on(event, listener);
  }

  /**
   * Starts serving (maker) and dialing every directory. Idempotent while running. A start that
   * fails (the listener cannot bind) is undone and may be retried.
   * @throws ListenError `ERR_LISTEN` when the maker's listener cannot bind.
   */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#lifecycle = new AbortController();
    try {
      await this.#options.server?.listen((socket) => {
        this.#peerLinks.accept(socket);
      });
    } catch (err) {
      this.#running = false;
      this.#lifecycle.abort();
      throw err;
    }
    this.#sweepTimer = setInterval(() => {
      this.#endToEnd.sweep();
    }, SESSION_SWEEP_INTERVAL_MS);
    this.#sweepTimer.unref();
    this.#logger.info(
      { location: this.#ownLocation, directories: this.#directories.links.length },
      'node starting',
    );
    this.#directories.start();
  }

  /**
   * Closes every link, aborts pending dials (directory and direct, SOCKS included) and stops
   * reconnecting; returns once the maker's listener closed or `deadlineMs` passed. Idempotent.
   */
  async stop(deadlineMs = CLIENT_STOP_DEADLINE_MS): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#lifecycle.abort();
    clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
    this.#endToEnd.clear();
    this.#directories.stop();
    this.#peerLinks.stop();
    flushAllConnections();
    const server = this.#options.server;
    if (server === undefined) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      server.close(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, deadlineMs);
      }),
    ]);
    clearTimeout(timer);
  }

  /**
   * Changes our location (e.g. a new onion after tor restarted) and re-handshakes every directory
   * under it (docs/protocol.md §2.3: the location travels only in the handshake).
   */
  relocate(location: string): void {
    this.#ownLocation = location;
    this.#directories.relocate();
  }

  /** Directory links, for status output. */
  directoryStatus(): DirectoryStatus[] {
    return this.#directories.status();
  }

  /** Handshaked direct links, for status output. */
  peerStatus(): { nick: string; direction: string; location: string | undefined }[] {
    return this.#peerLinks.status();
  }

  /** True when at least one directory link is handshaked. */
  get hasDirectory(): boolean {
    return this.#directories.links.some((d) => d.state === 'handshaked');
  }

  /** True when a handshaked direct link to `nick` exists. */
  hasDirectLink(nick: string): boolean {
    return this.#peers.get(nick)?.link?.state === 'handshaked';
  }

  /**
   * True when a privmsg to `nick` has a route now: a handshaked direct link, or a connected
   * directory node that has carried its messages (jmdaemon's `active_channels`).
   */
  canReach(nick: string): boolean {
    return this.#router.canReach(nick);
  }

  /**
   * Our NaCl session public keys with `nick` (64 hex each; `peer` undefined before its key
   * arrived), or undefined without a live session (docs/protocol.md §7). The same keys ride on
   * the `privmsg` events as `ownKeyHex` / `peerKeyHex`.
   */
  sessionKeys(nick: string): { own: string; peer: string | undefined } | undefined {
    return this.#endToEnd.keysOf(nick);
  }

  /**
   * Maker: answers an `!orderbook` from `to` with our offers, one privmsg per offer, each carrying
   * `!tbond <fidelityBond>` when given (a proof made for `to`'s nick), through the directory node
   * the request came through (docs/protocol.md §13.2). For applications that set
   * `answerOrderbook: false` or that add a bond; see the `orderbookRequest` event.
   * @returns how many privmsgs were sent.
   * @throws OnionmcError `ERR_API` when we are not a maker, have no offers or the proof is not
   *   base64; `ERR_NOT_ROUTABLE` when no directory node carries `to`.
   */
  answerOrderbook(to: string, fidelityBond?: string): number {
    if (this.#maker === undefined) throw new OnionmcError('ERR_API', 'only a maker has offers');
    return this.#maker.answer(to, fidelityBond);
  }

  /** Liveness probing of directory links; see {@link DirectoryLinks.probe}. Public for tests. */
  probeDirectories(): void {
    this.#directories.probe();
  }

  /**
   * Sets the maker's offers and announces them by pubmsg, one per offer, to every handshaked
   * directory (docs/protocol.md §4.2, §6 step 2). A maker answers later `!orderbook` requests
   * with them.
   * @returns the number of directories they were sent to.
   */
  setOffers(offers: readonly Offer[]): number {
    return this.#announcer.set(offers, this.#directories.links);
  }

  /** The offers set by {@link setOffers}. */
  get offers(): readonly Offer[] {
    return this.#announcer.offers;
  }

  /**
   * Sends a pubmsg (`message` starts with `!`) to every handshaked directory (docs/protocol.md §4.2).
   * @returns the number of directories it went to.
   * @throws OnionmcError `ERR_NOT_ROUTABLE` when no directory is handshaked; ProtocolError when
   *   the line would exceed 40,000 bytes.
   */
  pubmsg(message: string): number {
    return this.#router.pubmsg(message);
  }

  /**
   * {@link pubmsg}, resolved once one directory node it went to has handled it (the ping of
   * {@link privmsgConfirmed}), or at once with `confirmed: false` when none can confirm. The
   * local API answers POST /v1/pubmsg with this.
   * @throws OnionmcError as {@link pubmsg}; `ERR_BUSY`, `ERR_NOT_DELIVERED`, `ERR_TIMEOUT` as
   *   {@link privmsgConfirmed}.
   */
  pubmsgConfirmed(message: string): Promise<{ directories: number; confirmed: boolean }> {
    return this.#router.pubmsgConfirmed(message);
  }

  /**
   * Signs and sends a privmsg `cmd body` to `to` (docs/protocol.md §4.3, §5.6): over a handshaked
   * direct link when one exists, otherwise through a random handshaked directory that has carried
   * `to`'s traffic. Also starts a direct dial when `to`'s location is known (§4.3 step 4).
   *
   * The daemon owns end-to-end encryption (docs/protocol.md §7): for `fill` the application gives
   * `oid amount commitment` and the daemon inserts a fresh NaCl public key as the third argument;
   * for `pubkey` the application gives what follows the key (usually nothing) and the daemon puts
   * its key first; `auth`, `ioauth`, `tx` and `sig` bodies are plaintext, encrypted here.
   * @returns how it was sent.
   * @throws OnionmcError `ERR_NOT_ROUTABLE` when there is no route (the reference drops such a
   *   message silently; we say so); `ERR_CRYPTO` for an encrypted command before the key exchange;
   *   `ERR_API` for a malformed request; ProtocolError when the line would exceed 40,000 bytes.
   */
  privmsg(to: string, cmd: string, body: string, options: PrivmsgOptions = {}): SendResult {
    return this.#router.privmsg(to, cmd, body, options);
  }

  /**
   * As {@link privmsg}, for a node whose {@link NickSigner} answers asynchronously (a jmclient
   * wallet holds the nick key, docs/joinmarketd.md); works with the in-process key too.
   * @throws OnionmcError as {@link privmsg}; `ERR_CLOSED` when the node stopped while the
   *   signature was awaited; the signer's error when it did not sign.
   */
  privmsgAsync(
    to: string,
    cmd: string,
    body: string,
    options: PrivmsgOptions = {},
  ): Promise<SendResult> {
    return this.#router.privmsgAsync(to, cmd, body, options);
  }

  /**
   * As {@link privmsgAsync}, and resolves only once the route has handled the privmsg: the
   * directory node relayed it, or the peer of a direct link received it, as shown by its 799
   * answer to a 798 sent after the privmsg on the same connection (docs/protocol.md §13.2
   * "Confirmed privmsgs"). When that connection closes, or no answer comes within
   * `privmsgConfirmTimeoutMs`, the same signed line is sent through another route (another
   * directory node that carried `to`, or a direct link) and confirmed there; with no route left
   * it fails. A route that cannot confirm (a reference directory node: no `ping`) resolves at
   * once with `confirmed: false`. The local API answers POST /v1/privmsg with this.
   * @throws OnionmcError as {@link privmsgAsync}; `ERR_BUSY` when `maxPendingConfirmations`
   *   privmsgs already wait; `ERR_NOT_DELIVERED` when every route tried closed before confirming;
   *   `ERR_TIMEOUT` when the last one did not confirm in time (in both cases the message may or
   *   may not have arrived); `ERR_CLOSED` when the node stopped first.
   */
  privmsgConfirmed(
    to: string,
    cmd: string,
    body: string,
    options: PrivmsgOptions = {},
  ): Promise<Delivery> {
    return this.#router.privmsgConfirmed(to, cmd, body, options);
  }

  /** Privmsgs waiting for confirmation now (see {@link privmsgConfirmed}). */
  get pendingConfirmations(): number {
    return this.#confirmations.pending;
  }
}
