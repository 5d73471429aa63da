/**
 * The links of a maker or taker to its directory nodes (docs/protocol.md §2.3-§2.8, §3, §4.6,
 * §4.7, §9.6): dial, 793/795 handshake, nick authentication (directory-nick-auth.ts),
 * reconnect with backoff, keepalive probing, and the peerlists a directory sends. Channel messages (685/687) are handed to the
 * router through {@link DirectoryLinkHooks.onChannelMessage}.
 */
import type net from 'node:net';
import { OnionmcError } from '../errors.js';
import { PeerConnection, type CloseReason, type LivenessPolicy } from '../peer/connection.js';
import type { Envelope } from '../wire/envelope.js';
import {
  evaluateDirectoryHandshake,
  featuresOf,
  parseDirectoryHandshake,
} from '../wire/handshake.js';
import { NOT_SERVING_ONION, parseLocation } from '../wire/location.js';
import { MessageType } from '../wire/message-types.js';
import { decodePeerlist } from '../wire/peerlist.js';
import { Backoff, DEFAULT_DIRECTORY_BACKOFF } from './backoff.js';
import { clientHandshakeLine, DirectoryLink, type ClientContext } from './client-context.js';
import { dropCounter } from './counters.js';
import {
  acceptNickAuthResult,
  answerNickAuthChallenge,
  inferDirectoryRefusal,
} from './directory-nick-auth.js';

/** How long we wait for the other side's handshake on any link (reference startup wait, docs/protocol.md §2.8). */
export const LINK_HANDSHAKE_TIMEOUT_MS = 60_000;
/** A directory link silent this long is probed with 798, when the directory advertised `ping`. */
export const DIRECTORY_PROBE_IDLE_MS = 120_000;
/** A probed directory link that stays silent this long is dropped and redialed (ng: 30 s, docs/protocol.md §4.7). */
export const DIRECTORY_PROBE_TIMEOUT_MS = 30_000;
/** How often directory links are checked. */
export const DIRECTORY_PROBE_INTERVAL_MS = 15_000;

/** Keepalive of directory links, for {@link PeerConnection.liveness}. */
const DIRECTORY_LIVENESS: LivenessPolicy = {
  probeIdleMs: DIRECTORY_PROBE_IDLE_MS,
  pongTimeoutMs: DIRECTORY_PROBE_TIMEOUT_MS,
  evictIdleMs: Infinity,
};

/** What the directory links tell the rest of the node. */
export interface DirectoryLinkHooks {
  /** A 685/687 on a handshaked link. */
  onChannelMessage(type: number, line: string, link: DirectoryLink): void;
  /** A link completed its handshake (and nick authentication when negotiated). */
  onUp(link: DirectoryLink): void;
  /**
   * Sends a 798 on the link's connection; the privmsg confirmations (client-confirmations.ts)
   * match its 799. Used for keepalive probes when the link can confirm privmsgs.
   */
  ping(conn: PeerConnection): void;
  /** A 799 arrived. */
  onPong(conn: PeerConnection): void;
  /** A link's connection closed (after the link forgot the nicks only it carried). */
  onClosed(conn: PeerConnection): void;
}

/** One directory link, for status output. */
export interface DirectoryStatus {
  location: string;
  /** The directory node's nick, once it handshaked. */
  nick: string | undefined;
  state: string;
  /** Features it advertised, sorted. */
  features: string[];
}

/** Links to every configured directory node. */
export class DirectoryLinks {
  readonly links: readonly DirectoryLink[];
  readonly #ctx: ClientContext;
  readonly #hooks: DirectoryLinkHooks;
  #probeTimer: NodeJS.Timeout | undefined;

  /** @throws OnionmcError `ERR_CONFIG` when a directory location is not `host:port`. */
  constructor(ctx: ClientContext, hooks: DirectoryLinkHooks) {
    this.#ctx = ctx;
    this.#hooks = hooks;
    this.links = ctx.options.directories.map((location) => {
      const parsed = parseLocation(location);
      if (parsed.kind !== 'hostport')
        throw new OnionmcError('ERR_CONFIG', `directory "${location}" is not host:port`);
      return new DirectoryLink(
        location,
        parsed.host,
        parsed.port,
        new Backoff(ctx.options.backoff ?? DEFAULT_DIRECTORY_BACKOFF, ctx.random),
      );
    });
  }

  /** Starts dialing every directory and the probe timer. */
  start(): void {
    this.#probeTimer = setInterval(() => {
      this.probe();
    }, DIRECTORY_PROBE_INTERVAL_MS);
    this.#probeTimer.unref();
    for (const link of this.links) {
      link.state = 'idle';
      this.#connect(link);
    }
  }

  /** Closes every link, aborts pending dials and stops reconnecting. */
  stop(): void {
    clearInterval(this.#probeTimer);
    this.#probeTimer = undefined;
    for (const link of this.links) {
      link.state = 'stopped';
      clearTimeout(link.timer);
      link.timer = undefined;
      link.abort?.abort();
      link.conn?.close('stopping');
    }
  }

  /** Re-handshakes every directory under our new location (docs/protocol.md §2.3). */
  relocate(): void {
    for (const link of this.links) {
      // Not a failure: reconnect at once, and start the backoff over.
      link.backoff.reset();
      link.reconnectNow = true;
      if (
        link.state === 'handshaked' ||
        link.state === 'handshaking' ||
        link.state === 'authenticating'
      )
        link.conn?.close();
      else if (link.state === 'idle') {
        clearTimeout(link.timer);
        link.reconnectNow = false;
        this.#connect(link);
      }
    }
  }

  /** Every link, for status output. */
  status(): DirectoryStatus[] {
    return this.links.map((d) => ({
      location: d.location,
      nick: d.nick,
      state: d.state,
      features: [...d.features].sort(),
    }));
  }

  /** Handshaked links. */
  up(): DirectoryLink[] {
    return this.links.filter((l) => l.isUp);
  }

  /**
   * Liveness of directory links: a Tor circuit can die without the stream closing for a minute or
   * more. A handshaked link silent for {@link DIRECTORY_PROBE_IDLE_MS} gets a 798 ping if the
   * directory advertised `ping` (docs/protocol.md §4.7; reference directories are never sent
   * one); if nothing at all arrives within {@link DIRECTORY_PROBE_TIMEOUT_MS}, the link is
   * dropped and redialed. Run by a timer; public for tests.
   */
  probe(): void {
    const now = this.#ctx.now();
    for (const link of this.links) {
      const conn = link.conn;
      if (link.state !== 'handshaked' || conn === undefined || !link.features.has('ping')) continue;
      const liveness = conn.liveness(now, DIRECTORY_LIVENESS);
      if (liveness === 'dead') {
        conn.logger.warn(
          { directory: link.location },
          'directory node did not answer a ping; reconnecting',
        );
        this.#ctx.counters.add('directory.probe-timeout');
        conn.destroy('probe-timeout');
      } else if (liveness === 'probe') {
        conn.markProbed(now);
        // Through the confirmations when its 799 will come, so pongs stay matched to pings.
        if (this.#ctx.options.features?.ping === true) this.#hooks.ping(conn);
        else conn.send(MessageType.PING, '');
        this.#ctx.counters.add('directory.probe');
      }
    }
  }

  #connect(link: DirectoryLink): void {
    const ctx = this.#ctx;
    if (!ctx.running || link.state === 'stopped') return;
    link.state = 'connecting';
    link.abort = new AbortController();
    const signal = AbortSignal.any([link.abort.signal, ctx.signal]);
    const target = { host: link.host, port: link.port };
    ctx.options.dialer.dial(target, 'directory', signal).then(
      (socket) => {
        if (!ctx.running || link.state === 'stopped') {
          socket.destroy();
          return;
        }
        this.#startLink(link, socket);
      },
      (err: unknown) => {
        ctx.logger.warn(
          { directory: link.location, reason: err instanceof Error ? err.message : String(err) },
          'cannot reach directory node',
        );
        this.#scheduleReconnect(link);
      },
    );
  }

  #startLink(link: DirectoryLink, socket: net.Socket): void {
    const ctx = this.#ctx;
    const conn = new PeerConnection(socket, {
      direction: 'outbound',
      logger: ctx.logger.child({ directory: link.location }),
      now: ctx.now,
    });
    link.conn = conn;
    link.state = 'handshaking';
    conn.start({
      onEnvelope: (envelope) => {
        this.#handleEnvelope(link, envelope);
      },
      onClose: (err, reason) => {
        this.#handleClose(link, conn, err, reason);
        this.#hooks.onClosed(conn);
      },
    });
    // The connecting side sends 793 at once (docs/protocol.md §2.3).
    link.handshakeLine = clientHandshakeLine(ctx);
    link.offeredNickAuth =
      ctx.options.features?.nick_auth === true && ctx.signer.publicKeyHex !== undefined;
    conn.send(MessageType.HANDSHAKE, link.handshakeLine);
    conn.armHandshakeDeadline(ctx.options.handshakeTimeoutMs ?? LINK_HANDSHAKE_TIMEOUT_MS, () => {
      conn.logger.warn('directory sent no handshake reply in time');
      conn.destroy('handshake-timeout');
    });
  }

  #handleClose(
    link: DirectoryLink,
    conn: PeerConnection,
    err: Error | undefined,
    reason: CloseReason,
  ): void {
    if (link.conn !== conn) return;
    const ctx = this.#ctx;
    const wasUp = link.state === 'handshaked';
    link.conn = undefined;
    if (
      reason === 'remote-closed' &&
      (link.state === 'handshaking' || link.state === 'authenticating')
    ) {
      // ng refuses by closing without a 795 (or, during nick authentication, without an 807).
      const refusal = inferDirectoryRefusal(ctx, link);
      ctx.counters.add('directory.closed-without-reply');
      ctx.logger.warn(
        { directory: link.location, state: link.state, reason: refusal },
        link.state === 'handshaking'
          ? 'directory node closed the connection without a 795'
          : 'directory node closed the connection during nick authentication',
      );
    }
    if (wasUp) {
      if (ctx.now() - link.handshakedAt >= link.backoff.options.stableMs) link.backoff.reset();
      ctx.logger.warn({ directory: link.location, reason: err?.message }, 'lost directory node');
      ctx.events.emit('directory', { location: link.location, nick: link.nick, up: false });
      // Nicks only this directory carried are gone for us (docs/protocol.md §3.2).
      for (const nick of ctx.peers.nicks()) ctx.peers.forgetDirectory(nick, link);
    }
    if (link.state === 'stopped' || !ctx.running) return;
    this.#scheduleReconnect(link);
  }

  #scheduleReconnect(link: DirectoryLink): void {
    const ctx = this.#ctx;
    if (link.state === 'stopped' || !ctx.running) return;
    link.state = 'idle';
    const delayMs = link.reconnectNow ? 0 : link.backoff.next();
    link.reconnectNow = false;
    ctx.logger.info({ directory: link.location, delayMs }, 'will reconnect to directory node');
    link.timer = setTimeout(() => {
      link.timer = undefined;
      this.#connect(link);
    }, delayMs);
  }

  #handleEnvelope(link: DirectoryLink, envelope: Envelope): void {
    switch (envelope.type) {
      case MessageType.DN_HANDSHAKE:
        this.#handleHandshake(link, envelope.line);
        return;
      case MessageType.PRIVMSG:
      case MessageType.PUBMSG:
        if (link.state !== 'handshaked') {
          this.#ctx.counters.add(dropCounter('not-handshaked'));
          return;
        }
        this.#hooks.onChannelMessage(envelope.type, envelope.line, link);
        return;
      case MessageType.PEERLIST:
        if (link.state === 'handshaked') this.#handlePeerlist(link, envelope.line);
        return;
      case MessageType.PING:
        // ng sends 798 only to peers that advertised `ping`; 799 goes only to a peer that
        // advertised it too (docs/protocol.md §1.4, §4.7).
        if (link.features.has('ping')) link.conn?.send(MessageType.PONG, '');
        return;
      case MessageType.PONG:
        // The answer to a probe (that it arrived is all the keepalive needs) or to a ping that
        // confirms privmsgs.
        if (link.conn !== undefined) this.#hooks.onPong(link.conn);
        return;
      case MessageType.NICK_AUTH_CHALLENGE:
        answerNickAuthChallenge(this.#ctx, link, envelope.line);
        return;
      case MessageType.NICK_AUTH_RESULT:
        if (acceptNickAuthResult(link, envelope.line)) this.#linkUp(link);
        return;
      default:
        this.#ctx.counters.add('ignored.type');
    }
  }

  #handleHandshake(link: DirectoryLink, line: string): void {
    const conn = link.conn;
    if (conn === undefined || link.state !== 'handshaking') return;
    const handshake = parseDirectoryHandshake(line);
    if (handshake === undefined) {
      this.#ctx.counters.add('ignored.malformed-handshake');
      return;
    }
    const verdict = evaluateDirectoryHandshake(handshake, { network: this.#ctx.options.network });
    if (!verdict.ok) {
      conn.logger.warn(
        { reason: verdict.reason, motd: handshake.motd },
        'directory refused or unsuitable',
      );
      // accepted:false, wrong app or version: hang up. Network mismatch: the reference ignores it.
      if (verdict.disconnect) conn.destroy('rejected');
      return;
    }
    link.nick = handshake.nick;
    link.motd = handshake.motd;
    link.features = featuresOf(handshake.features);
    // Both sides offered nick_auth: the directory challenges next (docs/protocol.md §9.6).
    if (link.features.has('nick_auth') && link.offeredNickAuth) {
      link.state = 'authenticating';
      return;
    }
    this.#linkUp(link);
  }

  #linkUp(link: DirectoryLink): void {
    const conn = link.conn;
    if (conn === undefined) return;
    conn.handshakeDone();
    conn.resetProbe();
    link.state = 'handshaked';
    link.handshakedAt = this.#ctx.now();
    conn.logger.info({ dnNick: link.nick, motd: link.motd }, 'directory node handshaked');
    this.#ctx.events.emit('directory', {
      location: link.location,
      nick: link.nick,
      up: true,
      ...(link.motd !== undefined ? { motd: link.motd } : {}),
    });
    // ng directories answer getpeerlist (docs/protocol.md §3.4); reference ones only log it, so
    // ask only those that advertise peerlist_features and stay indistinguishable to the others.
    if (link.features.has('peerlist_features')) conn.send(MessageType.GETPEERLIST, '');
    this.#hooks.onUp(link);
  }

  #handlePeerlist(link: DirectoryLink, line: string): void {
    const ctx = this.#ctx;
    let joined = 0;
    let left = 0;
    for (const entry of decodePeerlist(line)) {
      if (entry.nick === ctx.nick) continue;
      if (entry.nick === link.nick) continue;
      if (entry.disconnected) {
        left++;
        ctx.peers.forgetDirectory(entry.nick, link);
        continue;
      }
      if (entry.location === NOT_SERVING_ONION) continue;
      let location;
      try {
        location = parseLocation(entry.location);
      } catch {
        continue;
      }
      if (location.kind !== 'hostport') continue;
      ctx.peers.ensure(entry.nick).location = entry.location;
      joined++;
    }
    ctx.events.emit('peerlist', { directory: link.location, joined, left });
  }
}
