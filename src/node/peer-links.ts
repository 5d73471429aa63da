/**
 * Direct links between makers and takers (docs/protocol.md §2.5, §4.3 step 4, §4.5): accepting
 * inbound links (a maker serves), dialing a nick whose location a peerlist told us, with redial
 * backoff, and the 793 handshake both ways. Privmsgs on a handshaked link go to the router
 * through {@link PeerLinkHooks.onChannelMessage}.
 */
import type net from 'node:net';
import { OpenSockets } from '../net/open-sockets.js';
import { PeerConnection } from '../peer/connection.js';
import type { Envelope } from '../wire/envelope.js';
import {
  evaluateClientHandshake,
  featuresOf,
  isValidNick,
  parseClientHandshake,
} from '../wire/handshake.js';
import { NOT_SERVING_ONION, parseLocation } from '../wire/location.js';
import { MessageType } from '../wire/message-types.js';
import type { BackoffOptions } from './backoff.js';
import {
  clientHandshakeLine,
  PeerLink,
  type ClientContext,
  type KnownPeer,
} from './client-context.js';
import { dropCounter } from './counters.js';
import { LINK_HANDSHAKE_TIMEOUT_MS } from './directory-links.js';

/** After a failed direct dial, wait at least this long before dialing that peer again. */
export const PEER_REDIAL_MIN_MS = 2_000;
/** ... and at most this long (ng: 2 s × 2ⁿ, exponent capped at 5, docs/protocol.md §4.5). */
export const PEER_REDIAL_MAX_MS = 64_000;

/** Redial backoff of direct dials: 2 s, 4 s, ... 64 s, plus up to 0.5 s of jitter. */
export const PEER_REDIAL_BACKOFF: BackoffOptions = {
  initialMs: PEER_REDIAL_MIN_MS / 2,
  factor: 2,
  maxMs: PEER_REDIAL_MAX_MS,
  jitterMs: [0, 500],
  stableMs: 0,
};

/**
 * Most inbound direct links a maker holds at once, handshaked or not (a maker negotiates with a
 * few takers at a time), a link we closed counting until the peer closes its end too; a
 * connection beyond it is closed at once, nothing read (`refused.peer-links-full`). Without it a
 * peer could hold any number of connections, each handshaked under a nick of its choosing.
 */
export const MAX_INBOUND_PEER_LINKS = 256;

/** What the peer links tell the rest of the node. */
export interface PeerLinkHooks {
  /** A 687 on a handshaked direct link. */
  onChannelMessage(type: number, line: string, link: PeerLink): void;
  /** A 799 arrived (the privmsg confirmations match it, client-confirmations.ts). */
  onPong(conn: PeerConnection): void;
  /** A link's connection closed. */
  onClosed(conn: PeerConnection): void;
}

/** Every direct link, inbound and outbound. */
export class PeerLinks {
  readonly #ctx: ClientContext;
  readonly #hooks: PeerLinkHooks;
  readonly #links = new Set<PeerLink>();
  /** Inbound sockets not yet closed: the links', and those we closed whose other end stays open. */
  readonly #inbound = new OpenSockets();

  constructor(ctx: ClientContext, hooks: PeerLinkHooks) {
    this.#ctx = ctx;
    this.#hooks = hooks;
  }

  /** Closes every link and aborts pending dials. */
  stop(): void {
    this.#ctx.peers.abortDials();
    for (const link of [...this.#links]) link.conn.close('stopping');
  }

  /** Handshaked direct links, for status output. */
  status(): { nick: string; direction: string; location: string | undefined }[] {
    return [...this.#links]
      .filter((l) => l.state === 'handshaked' && l.nick !== undefined)
      .map((l) => ({ nick: l.nick ?? '', direction: l.conn.direction, location: l.location }));
  }

  /** Takes an inbound socket (a maker's server). */
  accept(socket: net.Socket): void {
    if (this.#inbound.size >= MAX_INBOUND_PEER_LINKS) {
      this.#ctx.counters.add('refused.peer-links-full');
      socket.destroy();
      return;
    }
    this.#inbound.add(socket);
    const conn = new PeerConnection(socket, {
      direction: 'inbound',
      logger: this.#ctx.logger,
      now: this.#ctx.now,
    });
    this.#startLink(conn, undefined);
  }

  /** Opportunistic direct dial to a nick whose location a peerlist told us (docs/protocol.md §4.3 step 4). */
  maybeDial(nick: string, known: KnownPeer): void {
    const ctx = this.#ctx;
    if (!ctx.running || known.link !== undefined || known.dialing !== undefined) return;
    if (known.location === undefined || ctx.now() < known.nextDialAt) return;
    let location;
    try {
      location = parseLocation(known.location);
    } catch {
      return;
    }
    if (location.kind !== 'hostport') return;
    const abort = new AbortController();
    known.dialing = abort;
    const signal = AbortSignal.any([abort.signal, ctx.signal]);
    ctx.options.dialer.dial({ host: location.host, port: location.port }, 'peer', signal).then(
      (socket) => {
        known.dialing = undefined;
        if (!ctx.running) {
          socket.destroy();
          return;
        }
        const conn = new PeerConnection(socket, {
          direction: 'outbound',
          logger: ctx.logger.child({ dialed: nick }),
          now: ctx.now,
        });
        this.#startLink(conn, nick);
      },
      (err: unknown) => {
        known.dialing = undefined;
        const delay = known.redial.next();
        known.nextDialAt = ctx.now() + delay;
        ctx.logger.info(
          {
            peerNick: nick,
            reason: err instanceof Error ? err.message : String(err),
            retryInMs: delay,
          },
          'direct dial failed',
        );
      },
    );
  }

  #startLink(conn: PeerConnection, expectedNick: string | undefined): PeerLink {
    const link = new PeerLink(conn, expectedNick);
    this.#links.add(link);
    conn.start({
      onEnvelope: (envelope) => {
        this.#handleEnvelope(link, envelope);
      },
      onClose: () => {
        this.#handleClose(link);
        this.#hooks.onClosed(conn);
      },
    });
    // A reference non-directory node sends its 793 as soon as a connection exists, in either
    // direction (docs/protocol.md §2.3); reference takers treat us as handshaked only once they
    // get it.
    conn.send(MessageType.HANDSHAKE, clientHandshakeLine(this.#ctx));
    conn.armHandshakeDeadline(
      this.#ctx.options.handshakeTimeoutMs ?? LINK_HANDSHAKE_TIMEOUT_MS,
      () => {
        conn.logger.info('peer sent no handshake in time; disconnecting');
        conn.destroy('handshake-timeout');
      },
    );
    return link;
  }

  #handleEnvelope(link: PeerLink, envelope: Envelope): void {
    switch (envelope.type) {
      case MessageType.HANDSHAKE:
        this.#handleHandshake(link, envelope.line);
        return;
      case MessageType.PRIVMSG:
        if (link.state !== 'handshaked') {
          this.#ctx.counters.add(dropCounter('not-handshaked'));
          return;
        }
        this.#hooks.onChannelMessage(envelope.type, envelope.line, link);
        return;
      case MessageType.PING:
        if (link.features.has('ping')) link.conn.send(MessageType.PONG, '');
        return;
      case MessageType.PONG:
        if (link.state === 'handshaked') this.#hooks.onPong(link.conn);
        return;
      default:
        // Pubmsgs and peerlists come only from directories; 795 from a peer is a protocol slip
        // that the reference logs and ignores (docs/protocol.md §2.5, ng CHANGELOG).
        this.#ctx.counters.add('ignored.type');
    }
  }

  #handleHandshake(link: PeerLink, line: string): void {
    if (link.state !== 'handshaking') return;
    const ctx = this.#ctx;
    const handshake = parseClientHandshake(line);
    const verdict =
      handshake === undefined
        ? undefined
        : evaluateClientHandshake(handshake, { network: ctx.options.network });
    let reason: string | undefined;
    if (handshake === undefined || verdict === undefined) reason = 'malformed handshake';
    else if (!verdict.accepted) reason = verdict.reason;
    else if (!isValidNick(handshake.nick) || handshake.nick === ctx.nick) reason = 'unusable nick';
    else if (link.expectedNick !== undefined && handshake.nick !== link.expectedNick)
      reason = `dialed ${link.expectedNick} but ${handshake.nick} answered`;
    if (reason !== undefined || handshake === undefined) {
      link.conn.logger.warn({ reason }, 'peer handshake refused; disconnecting');
      ctx.counters.add('disconnected.bad-peer-handshake');
      link.conn.destroy('rejected');
      return;
    }
    link.conn.handshakeDone();
    link.state = 'handshaked';
    link.nick = handshake.nick;
    link.location = handshake.locationString;
    link.features = featuresOf(handshake.features);
    const known = ctx.peers.ensure(handshake.nick);
    const previous = known.link;
    known.link = link;
    known.redial.reset();
    if (handshake.locationString !== NOT_SERVING_ONION && known.location === undefined)
      known.location = handshake.locationString;
    if (previous !== undefined && previous !== link) previous.conn.close('replaced');
    link.conn.logger.info({ peerNick: link.nick }, 'direct peer link handshaked');
    ctx.events.emit('peer', { nick: handshake.nick, up: true, direction: link.conn.direction });
  }

  #handleClose(link: PeerLink): void {
    this.#links.delete(link);
    const wasUp = link.state === 'handshaked';
    link.state = 'closed';
    if (!wasUp || link.nick === undefined) return;
    const known = this.#ctx.peers.get(link.nick);
    if (known?.link === link) {
      known.link = undefined;
      this.#ctx.events.emit('peer', { nick: link.nick, up: false, direction: link.conn.direction });
    }
  }
}
