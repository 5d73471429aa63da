/**
 * Routing of a maker's or taker's channel messages (docs/protocol.md §4.1-§4.3, §5.6): checks
 * what arrives (sender, addressee, signature, duplicates across directories) and chooses how
 * what we send goes out (a handshaked direct link, else a directory that carried the recipient's
 * traffic).
 */
import { OnionmcError } from '../errors.js';
import { isPrivmsgCommandAllowed } from '../message/commands.js';
import {
  checkPrivmsgParts,
  formatPubmsgLine,
  formatSignedPrivmsgLine,
  HOSTID_ONION,
  parseChannelLine,
  PUBLIC_NICK,
} from '../message/privmsg.js';
import { encodeEnvelope } from '../wire/envelope.js';
import { encodeLine } from '../wire/framing.js';
import { isValidNick } from '../wire/handshake.js';
import { MessageType } from '../wire/message-types.js';
import type { ClientContext, DirectoryLink, PeerLink } from './client-context.js';
import type { PeerConnection } from '../peer/connection.js';
import type {
  PendingConfirmation,
  PrivmsgConfirmations,
  RouteFailure,
} from './client-confirmations.js';
import type { Delivery, PrivmsgOptions, SendResult, Via } from './client-types.js';
import { dropCounter } from './counters.js';
import { DuplicateFilter } from './dedup.js';
import type { DirectoryLinks } from './directory-links.js';
import type { EndToEnd } from './end-to-end.js';
import { isPromise, type NickSignature, type PrivmsgVerdict } from './nick-signer.js';
import type { PeerLinks } from './peer-links.js';

/** Where verified messages go. */
export interface RouterHooks {
  /** A pubmsg from a directory, first copy only. */
  onPubmsg(from: string, message: string, via: Via): void;
  /** A privmsg for us whose signature verified, first copy only; `body` as on the wire. */
  onPrivmsg(from: string, cmd: string, body: string, via: Via): void;
}

/**
 * At most this many received privmsgs wait for an asynchronous {@link NickVerifier} at once;
 * beyond it they are dropped (`overloaded`), so a peer cannot make us queue without bound.
 */
export const MAX_PENDING_VERIFICATIONS = 1024;

/** Checks incoming channel messages and routes outgoing ones. */
export class Router {
  readonly #ctx: ClientContext;
  readonly #directories: DirectoryLinks;
  readonly #peerLinks: PeerLinks;
  readonly #endToEnd: EndToEnd;
  readonly #hooks: RouterHooks;
  readonly #confirmations: PrivmsgConfirmations;
  readonly #dedup: DuplicateFilter;
  #pendingVerifications = 0;

  constructor(
    ctx: ClientContext,
    parts: {
      directories: DirectoryLinks;
      peerLinks: PeerLinks;
      endToEnd: EndToEnd;
      confirmations: PrivmsgConfirmations;
    },
    hooks: RouterHooks,
  ) {
    this.#ctx = ctx;
    this.#confirmations = parts.confirmations;
    this.#directories = parts.directories;
    this.#peerLinks = parts.peerLinks;
    this.#endToEnd = parts.endToEnd;
    this.#hooks = hooks;
    this.#dedup = new DuplicateFilter({ now: ctx.now });
  }

  /** A 687 on a handshaked direct link. */
  fromPeer(type: number, line: string, link: PeerLink): void {
    this.#receive(type, line, { kind: 'direct' }, undefined, link);
  }

  /**
   * True when a privmsg to `nick` has a route now: a handshaked direct link, or a connected
   * directory node that has carried its messages (jmdaemon's `active_channels`).
   */
  canReach(nick: string): boolean {
    const known = this.#ctx.peers.get(nick);
    if (known === undefined) return false;
    if (known.link?.state === 'handshaked') return true;
    return [...known.directories].some((d) => d.isUp);
  }

  /** A 685/687 on a handshaked directory link. */
  fromDirectory(type: number, line: string, link: DirectoryLink): void {
    this.#receive(type, line, { kind: 'directory', location: link.location }, link, undefined);
  }

  #receive(
    type: number,
    line: string,
    via: Via,
    directory: DirectoryLink | undefined,
    link: PeerLink | undefined,
  ): void {
    const ctx = this.#ctx;
    const parsed = parseChannelLine(line);
    if (parsed === undefined) {
      ctx.drop(undefined, 'malformed');
      return;
    }
    const { from, to, message } = parsed;
    if (from === ctx.nick) return; // our own pubmsg coming back
    if (link !== undefined && from !== link.nick) {
      ctx.drop(from, 'spoofed-sender');
      return;
    }
    if (type === MessageType.PUBMSG) {
      if (to !== PUBLIC_NICK || directory === undefined) {
        ctx.drop(from, 'pubmsg-not-public');
        return;
      }
      if (!isValidNick(from)) {
        ctx.drop(from, 'bad-nick');
        return;
      }
      ctx.peers.ensure(from).directories.add(directory);
      if (!this.#dedup.isFirst(`P${from}\n${message}`)) {
        ctx.counters.add(dropCounter('duplicate'));
        return;
      }
      ctx.counters.add('received.pubmsg');
      this.#hooks.onPubmsg(from, message, via);
      return;
    }
    if (to !== ctx.nick) {
      ctx.drop(from, 'not-for-us');
      return;
    }
    const verdict = ctx.verifier.verifyPrivmsg(from, message, HOSTID_ONION);
    if (!isPromise(verdict)) {
      this.#accept(from, line, verdict, via, directory);
      return;
    }
    // An outside verifier (docs/joinmarketd.md): the sender waits for its answer, capped.
    if (this.#pendingVerifications >= MAX_PENDING_VERIFICATIONS) {
      ctx.drop(from, 'overloaded', 'too many privmsgs waiting for signature verification');
      return;
    }
    this.#pendingVerifications++;
    verdict.then(
      (result) => {
        this.#pendingVerifications--;
        if (ctx.running) this.#accept(from, line, result, via, directory);
      },
      (err: unknown) => {
        this.#pendingVerifications--;
        ctx.drop(from, 'bad-signature', err instanceof Error ? err.message : String(err));
      },
    );
  }

  #accept(
    from: string,
    line: string,
    verified: PrivmsgVerdict,
    via: Via,
    directory: DirectoryLink | undefined,
  ): void {
    const ctx = this.#ctx;
    if (!verified.ok) {
      ctx.drop(from, 'bad-signature', verified.reason);
      return;
    }
    // Only a message that verified teaches us a route to its sender (docs/protocol.md §4.1, §4.3).
    const known = ctx.peers.ensure(from);
    if (directory !== undefined && directory.isUp) known.directories.add(directory);
    if (!this.#dedup.isFirst(`M${line}`)) {
      ctx.counters.add(dropCounter('duplicate'));
      return;
    }
    ctx.counters.add('received.privmsg');
    this.#hooks.onPrivmsg(from, verified.cmd, verified.body, via);
  }

  /**
   * Sends a pubmsg to every handshaked directory (docs/protocol.md §4.2); encoded once.
   * @returns the number of directories it went to.
   * @throws OnionmcError `ERR_API` when `message` does not start with `!`; `ERR_NOT_ROUTABLE`
   *   when no directory is handshaked; ProtocolError when the line would exceed 40,000 bytes.
   */
  pubmsg(message: string): number {
    return this.#writePubmsg(message).length;
  }

  /**
   * {@link pubmsg} for the application: resolves once one of the directory nodes it went to has
   * handled it (the ping of docs/protocol.md §13.2 "Confirmed privmsgs"; that node relays it to
   * everyone it has), or at once with `confirmed: false` when none of them can confirm (none
   * advertised `ping`, or we did not).
   * @returns how many directory nodes it was written to, and whether one confirmed it.
   * @throws as {@link pubmsg}; OnionmcError `ERR_BUSY` when too many messages wait for
   *   confirmation; `ERR_NOT_DELIVERED` when every directory node that could confirm it closed
   *   first; `ERR_TIMEOUT` when the last of them did not confirm it in time.
   */
  async pubmsgConfirmed(message: string): Promise<{ directories: number; confirmed: boolean }> {
    this.#confirmations.reserve();
    try {
      const written = this.#writePubmsg(message);
      const confirmable = written.filter((link) => this.#canConfirm(link));
      if (confirmable.length === 0) return { directories: written.length, confirmed: false };
      await new Promise<void>((resolve, reject) => {
        let settled = false;
        let failed = 0;
        for (const link of confirmable) {
          const pending: PendingConfirmation = {
            conn: undefined,
            timer: undefined,
            onConfirmed: () => {
              if (settled) return;
              settled = true;
              this.#ctx.counters.add('pubmsg.confirmed');
              resolve();
            },
            onRouteFailed: (reason) => {
              if (settled || ++failed < confirmable.length) return;
              settled = true;
              this.#ctx.counters.add(`pubmsg.unconfirmed.${reason}`);
              reject(
                new OnionmcError(
                  reason === 'timeout' ? 'ERR_TIMEOUT' : 'ERR_NOT_DELIVERED',
                  `pubmsg not confirmed: every directory node it went to ${reason === 'timeout' ? `did not confirm it within ${this.#confirmations.timeoutMs} ms` : 'closed before confirming it'} (it may or may not have been relayed)`,
                ),
              );
            },
          };
          this.#confirmations.track(pending, link.conn);
        }
      });
      return { directories: written.length, confirmed: true };
    } finally {
      this.#confirmations.release();
    }
  }

  /**
   * Writes a pubmsg to every handshaked directory node, encoded once (docs/protocol.md §4.2).
   * @returns the links it was written to.
   * @throws as {@link pubmsg}.
   */
  #writePubmsg(message: string): { conn: PeerConnection; features: ReadonlySet<string> }[] {
    if (!message.startsWith('!')) throw new OnionmcError('ERR_API', 'a pubmsg must start with "!"');
    const frame = encodeLine(
      encodeEnvelope(MessageType.PUBMSG, formatPubmsgLine(this.#ctx.nick, message)),
    );
    const written: { conn: PeerConnection; features: ReadonlySet<string> }[] = [];
    for (const link of this.#directories.links) {
      const conn = link.conn;
      if (link.state === 'handshaked' && conn?.sendEncoded(frame) === true)
        written.push({ conn, features: link.features });
    }
    if (written.length === 0)
      throw new OnionmcError('ERR_NOT_ROUTABLE', 'no directory node is connected');
    return written;
  }

  /**
   * Signs and sends a privmsg; see {@link ClientNode.privmsg} for the rules.
   * @throws OnionmcError `ERR_NOT_ROUTABLE`, `ERR_CRYPTO`, `ERR_API`; ProtocolError.
   */
  privmsg(to: string, cmd: string, body: string, options: PrivmsgOptions = {}): SendResult {
    const wireBody = this.#seal(to, cmd, body, options);
    try {
      const signature = this.#ctx.signer.signPrivmsg({
        to,
        cmd,
        body: wireBody,
        hostid: HOSTID_ONION,
      });
      if (isPromise(signature)) {
        signature.catch(() => undefined);
        throw new OnionmcError(
          'ERR_API',
          'the nick signer answers asynchronously: send with privmsgAsync',
        );
      }
      return this.#send(to, cmd, this.#frame(to, cmd, wireBody, signature), options);
    } catch (err) {
      this.#abandon(to, cmd, wireBody);
      throw err;
    }
  }

  /**
   * As {@link privmsg}, for a signer that may answer asynchronously (docs/joinmarketd.md): the
   * route is chosen once the signature is there.
   * @throws OnionmcError as {@link privmsg}; `ERR_CLOSED` when the node stopped meanwhile; the
   *   signer's error when it did not sign.
   */
  async privmsgAsync(
    to: string,
    cmd: string,
    body: string,
    options: PrivmsgOptions = {},
  ): Promise<SendResult> {
    const wireBody = this.#seal(to, cmd, body, options);
    try {
      return this.#send(to, cmd, await this.#signedFrame(to, cmd, wireBody), options);
    } catch (err) {
      this.#abandon(to, cmd, wireBody);
      throw err;
    }
  }

  /**
   * Signs a sealed privmsg (docs/protocol.md §5.6) and frames it, once the signer answers.
   * @throws OnionmcError `ERR_CLOSED` when the node stopped meanwhile; the signer's error.
   */
  async #signedFrame(to: string, cmd: string, wireBody: string): Promise<Uint8Array> {
    const signature = await this.#ctx.signer.signPrivmsg({
      to,
      cmd,
      body: wireBody,
      hostid: HOSTID_ONION,
    });
    if (!this.#ctx.running) throw new OnionmcError('ERR_CLOSED', 'the node stopped');
    return this.#frame(to, cmd, wireBody, signature);
  }

  /**
   * As {@link privmsgAsync}, and answers once the route has handled the privmsg (the pong to a
   * 798 sent after it, docs/protocol.md §13.2 "Confirmed privmsgs"; client-confirmations.ts). A
   * route that closes or does not confirm within the deadline is replaced by another one when
   * one exists (the same signed line: every route signs with the hostid `onion-network`,
   * docs/protocol.md §5.6); a route that cannot confirm (no `ping` on either side) answers at once
   * with `confirmed: false`.
   * @throws OnionmcError as {@link privmsgAsync}; `ERR_BUSY` when too many privmsgs wait for
   *   confirmation; `ERR_NOT_DELIVERED` when every route closed before confirming it;
   *   `ERR_TIMEOUT` when the last route tried did not confirm it in time; `ERR_CLOSED` when the
   *   node stopped first.
   */
  async privmsgConfirmed(
    to: string,
    cmd: string,
    body: string,
    options: PrivmsgOptions = {},
  ): Promise<Delivery> {
    this.#confirmations.reserve();
    try {
      const wireBody = this.#seal(to, cmd, body, options);
      try {
        return await this.#deliver(to, cmd, await this.#signedFrame(to, cmd, wireBody), options);
      } catch (err) {
        this.#abandon(to, cmd, wireBody);
        throw err;
      }
    } finally {
      this.#confirmations.release();
    }
  }

  /**
   * Checks a privmsg request and returns its wire body (keys inserted, encrypted). A `!fill`
   * without a route fails before a NaCl session is started for it.
   */
  #seal(to: string, cmd: string, body: string, options: PrivmsgOptions): string {
    const ctx = this.#ctx;
    if (to === ctx.nick)
      throw new OnionmcError('ERR_NOT_ROUTABLE', 'a privmsg to our own nick is not sent');
    if (!isValidNick(to)) throw new OnionmcError('ERR_API', `"${to}" is not a JoinMarket nick`);
    // Receivers drop a privmsg whose first command is in neither list (docs/protocol.md §5.2).
    if (!isPrivmsgCommandAllowed(cmd))
      throw new OnionmcError('ERR_API', `"${cmd}" is not a command a privmsg may start with`);
    if (cmd === 'fill' && !this.#hasRoute(to, cmd, options)) throw notRoutable(to);
    const wireBody = this.#endToEnd.seal(to, cmd, body);
    try {
      checkPrivmsgParts(ctx.nick, to, cmd, wireBody);
    } catch (err) {
      this.#abandon(to, cmd, wireBody);
      throw err;
    }
    return wireBody;
  }

  /** A `!fill` that was not sent (or not confirmed) leaves no NaCl session behind. */
  #abandon(to: string, cmd: string, wireBody: string): void {
    if (cmd === 'fill') this.#endToEnd.abandonFill(to, wireBody);
  }

  /**
   * True when {@link #write} would find a route now (without writing); starts a direct dial when
   * one is due, as {@link #write} does.
   */
  #hasRoute(to: string, cmd: string, options: PrivmsgOptions): boolean {
    const known = this.#ctx.peers.get(to);
    if (known === undefined) return false;
    const directOk = mayGoDirect(cmd, options);
    if (directOk) this.#peerLinks.maybeDial(to, known);
    if (directOk && known.link?.state === 'handshaked') return true;
    return [...known.directories].some((d) => d.isUp);
  }

  /** The framed 685 line (docs/protocol.md §4.1, §5.6). */
  #frame(to: string, cmd: string, wireBody: string, signature: NickSignature): Uint8Array {
    const line = formatSignedPrivmsgLine(
      this.#ctx.nick,
      to,
      cmd,
      wireBody,
      signature.publicKeyHex,
      signature.signature,
    );
    return encodeLine(encodeEnvelope(MessageType.PRIVMSG, line));
  }

  #send(to: string, cmd: string, frame: Uint8Array, options: PrivmsgOptions): SendResult {
    const written = this.#write(to, cmd, frame, options, undefined);
    if (written === undefined) throw notRoutable(to);
    return written.via;
  }

  /**
   * Writes `frame` for {@link privmsgConfirmed} and waits for the route's confirmation, trying
   * the other routes when one fails.
   */
  #deliver(to: string, cmd: string, frame: Uint8Array, options: PrivmsgOptions): Promise<Delivery> {
    const ctx = this.#ctx;
    return new Promise((resolve, reject) => {
      const tried = new Set<PeerConnection>();
      let attempts = 0;
      let via: Via | undefined;
      const attempt = (failure: RouteFailure | undefined): void => {
        if (!ctx.running) {
          reject(
            new OnionmcError('ERR_CLOSED', 'the node stopped before the privmsg was confirmed'),
          );
          return;
        }
        const written = this.#write(to, cmd, frame, options, tried);
        if (written === undefined) {
          if (failure === undefined) reject(notRoutable(to));
          else {
            ctx.counters.add(`privmsg.unconfirmed.${failure}`);
            reject(
              new OnionmcError(
                failure === 'timeout' ? 'ERR_TIMEOUT' : 'ERR_NOT_DELIVERED',
                `privmsg to ${to} not confirmed: ${describeVia(via)} ${failure === 'timeout' ? `did not confirm it within ${this.#confirmations.timeoutMs} ms` : 'closed before confirming it'}, and no other route is left (it may or may not have been delivered)`,
              ),
            );
          }
          return;
        }
        attempts++;
        tried.add(written.conn);
        via = written.via;
        if (failure !== undefined) ctx.counters.add('privmsg.resent');
        if (!written.canConfirm) {
          resolve({ via: written.via, confirmed: false, attempts });
          return;
        }
        this.#confirmations.track(pending, written.conn);
      };
      const pending: PendingConfirmation = {
        conn: undefined,
        timer: undefined,
        onConfirmed: () => {
          ctx.counters.add('privmsg.confirmed');
          resolve({ via: via ?? { kind: 'direct' }, confirmed: true, attempts });
        },
        onRouteFailed: (reason) => {
          attempt(reason);
        },
      };
      attempt(undefined);
    });
  }

  /**
   * Writes `frame` to the route of docs/protocol.md §4.3 (a handshaked direct link, else a random
   * connected directory node that carried `to`'s messages, the one in `options.directory` when
   * it qualifies), skipping connections in `exclude`; starts a direct dial when one is due.
   * @returns the route, or undefined when none took the frame.
   */
  #write(
    to: string,
    cmd: string,
    frame: Uint8Array,
    options: PrivmsgOptions,
    exclude: ReadonlySet<PeerConnection> | undefined,
  ): { via: Via; conn: PeerConnection; canConfirm: boolean } | undefined {
    const ctx = this.#ctx;
    const known = ctx.peers.get(to);
    const directOk = mayGoDirect(cmd, options);
    if (known !== undefined && directOk) this.#peerLinks.maybeDial(to, known);
    const direct = directOk ? known?.link : undefined;
    if (
      direct?.state === 'handshaked' &&
      exclude?.has(direct.conn) !== true &&
      direct.conn.sendEncoded(frame)
    ) {
      ctx.counters.add('sent.privmsg.direct');
      return { via: { kind: 'direct' }, conn: direct.conn, canConfirm: this.#canConfirm(direct) };
    }
    const candidates = [...(known?.directories ?? [])].filter(
      (d) => d.isUp && (d.conn === undefined || exclude?.has(d.conn) !== true),
    );
    const chosen =
      candidates.find((d) => d.location === options.directory) ??
      candidates[Math.floor(ctx.random() * candidates.length)];
    const conn = chosen?.conn;
    if (chosen !== undefined && conn?.sendEncoded(frame) === true) {
      ctx.counters.add('sent.privmsg.directory');
      return {
        via: { kind: 'directory', location: chosen.location },
        conn,
        canConfirm: this.#canConfirm(chosen),
      };
    }
    return undefined;
  }

  /**
   * True when a 798 on this link will be answered: the other side advertised `ping` and so did
   * we (an onionmc or ng node answers only then, docs/protocol.md §4.7); a reference node never.
   */
  #canConfirm(link: { features: ReadonlySet<string> }): boolean {
    return link.features.has('ping') && this.#ctx.options.features?.ping === true;
  }
}

/**
 * Whether a privmsg may take a direct link: not when the caller asked for a directory node, and
 * never for `!hp2`, which ng makers ignore on a direct link (docs/protocol.md §13.2).
 */
function mayGoDirect(cmd: string, options: PrivmsgOptions): boolean {
  return options.route !== 'directory' && cmd !== 'hp2';
}

function notRoutable(to: string): OnionmcError {
  return new OnionmcError(
    'ERR_NOT_ROUTABLE',
    `no route to ${to}: no direct link, and no connected directory node has carried its messages`,
  );
}

function describeVia(via: Via | undefined): string {
  if (via === undefined) return 'the route';
  return via.kind === 'direct' ? 'the direct link' : `the directory node at ${via.location}`;
}
