/**
 * Routing of a maker's or taker's channel messages (docs/protocol.md §4.1-§4.3, §5.6): checks
 * what arrives (sender, addressee, signature, duplicates across directories) and chooses how
 * what we send goes out (a handshaked direct link, else a directory that carried the recipient's
 * traffic).
 */
import { OnionmcError } from '../errors.js';
import { isPrivmsgCommandAllowed } from '../message/commands.js';
import {
  formatPubmsgLine,
  parseChannelLine,
  PUBLIC_NICK,
  signPrivmsg,
  verifyPrivmsg,
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
import type { PeerLinks } from './peer-links.js';

/** Where verified messages go. */
export interface RouterHooks {
  /** A pubmsg from a directory, first copy only. */
  onPubmsg(from: string, message: string, via: Via): void;
  /** A privmsg for us whose signature verified, first copy only; `body` as on the wire. */
  onPrivmsg(from: string, cmd: string, body: string, via: Via): void;
}

/** Checks incoming channel messages and routes outgoing ones. */
export class Router {
  readonly #ctx: ClientContext;
  readonly #directories: DirectoryLinks;
  readonly #peerLinks: PeerLinks;
  readonly #endToEnd: EndToEnd;
  readonly #hooks: RouterHooks;
  readonly #dedup: DuplicateFilter;

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
    const verified = verifyPrivmsg(from, message);
    if (!verified.ok) {
      ctx.drop(from, 'bad-signature', verified.reason);
      return;
    }
    // Only a message that verified teaches us a route to its sender (docs/protocol.md §4.1, §4.3).
    const known = ctx.peers.ensure(from);
    if (directory !== undefined) known.directories.add(directory);
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
    const ctx = this.#ctx;
    if (to === ctx.nick)
      throw new OnionmcError('ERR_NOT_ROUTABLE', 'a privmsg to our own nick is not sent');
    if (!isValidNick(to)) throw new OnionmcError('ERR_API', `"${to}" is not a JoinMarket nick`);
    // Receivers drop a privmsg whose first command is in neither list (docs/protocol.md §5.2).
    if (!isPrivmsgCommandAllowed(cmd))
      throw new OnionmcError('ERR_API', `"${cmd}" is not a command a privmsg may start with`);
    const wireBody = this.#endToEnd.seal(to, cmd, body);
    const line = signPrivmsg(ctx.options.identity, to, cmd, wireBody);
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
