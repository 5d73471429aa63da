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
import type { PrivmsgOptions, SendResult, Via } from './client-types.js';
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
  readonly #dedup: DuplicateFilter;
  #pendingVerifications = 0;

  constructor(
    ctx: ClientContext,
    parts: { directories: DirectoryLinks; peerLinks: PeerLinks; endToEnd: EndToEnd },
    hooks: RouterHooks,
  ) {
    this.#ctx = ctx;
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
    if (!message.startsWith('!')) throw new OnionmcError('ERR_API', 'a pubmsg must start with "!"');
    const frame = encodeLine(
      encodeEnvelope(MessageType.PUBMSG, formatPubmsgLine(this.#ctx.nick, message)),
    );
    let sent = 0;
    for (const link of this.#directories.links) {
      if (link.state === 'handshaked' && link.conn?.sendEncoded(frame) === true) sent++;
    }
    if (sent === 0) throw new OnionmcError('ERR_NOT_ROUTABLE', 'no directory node is connected');
    return sent;
  }

  /**
   * Signs and sends a privmsg; see {@link ClientNode.privmsg} for the rules.
   * @throws OnionmcError `ERR_NOT_ROUTABLE`, `ERR_CRYPTO`, `ERR_API`; ProtocolError.
   */
  privmsg(to: string, cmd: string, body: string, options: PrivmsgOptions = {}): SendResult {
    const wireBody = this.#seal(to, cmd, body);
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
    return this.#send(to, cmd, wireBody, signature, options);
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
    const wireBody = this.#seal(to, cmd, body);
    const signature = await this.#ctx.signer.signPrivmsg({
      to,
      cmd,
      body: wireBody,
      hostid: HOSTID_ONION,
    });
    if (!this.#ctx.running) throw new OnionmcError('ERR_CLOSED', 'the node stopped');
    return this.#send(to, cmd, wireBody, signature, options);
  }

  /** Checks a privmsg request and returns its wire body (keys inserted, encrypted). */
  #seal(to: string, cmd: string, body: string): string {
    const ctx = this.#ctx;
    if (to === ctx.nick)
      throw new OnionmcError('ERR_NOT_ROUTABLE', 'a privmsg to our own nick is not sent');
    if (!isValidNick(to)) throw new OnionmcError('ERR_API', `"${to}" is not a JoinMarket nick`);
    // Receivers drop a privmsg whose first command is in neither list (docs/protocol.md §5.2).
    if (!isPrivmsgCommandAllowed(cmd))
      throw new OnionmcError('ERR_API', `"${cmd}" is not a command a privmsg may start with`);
    const wireBody = this.#endToEnd.seal(to, cmd, body);
    checkPrivmsgParts(ctx.nick, to, cmd, wireBody);
    return wireBody;
  }

  #send(
    to: string,
    cmd: string,
    wireBody: string,
    signature: NickSignature,
    options: PrivmsgOptions,
  ): SendResult {
    const ctx = this.#ctx;
    const line = formatSignedPrivmsgLine(
      ctx.nick,
      to,
      cmd,
      wireBody,
      signature.publicKeyHex,
      signature.signature,
    );
    const frame = encodeLine(encodeEnvelope(MessageType.PRIVMSG, line));
    const known = ctx.peers.get(to);
    // ng makers ignore an `!hp2` arriving over a direct link (docs/protocol.md §13.2).
    const directOk = options.route !== 'directory' && cmd !== 'hp2';
    if (known !== undefined && directOk) this.#peerLinks.maybeDial(to, known);
    const direct = directOk ? known?.link : undefined;
    if (direct?.state === 'handshaked' && direct.conn.sendEncoded(frame)) {
      ctx.counters.add('sent.privmsg.direct');
      return { kind: 'direct' };
    }
    const candidates = [...(known?.directories ?? [])].filter((d) => d.isUp);
    const chosen =
      candidates.find((d) => d.location === options.directory) ??
      candidates[Math.floor(ctx.random() * candidates.length)];
    if (chosen?.conn?.sendEncoded(frame) === true) {
      ctx.counters.add('sent.privmsg.directory');
      return { kind: 'directory', location: chosen.location };
    }
    throw new OnionmcError(
      'ERR_NOT_ROUTABLE',
      `no route to ${to}: no direct link, and no connected directory node has carried its messages`,
    );
  }
}
