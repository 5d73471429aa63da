/**
 * The offer behaviour of jmdaemon (docs/protocol.md §4.2, §5.2, §6): every node keeps the
 * orderbook it hears ({@link OrderbookCollector}); a maker also announces its offers when a
 * directory link comes up and answers `!orderbook` ({@link MakerResponder}).
 */
import { OFFER_TYPES, splitCommands } from '../message/commands.js';
import { formatPubmsgLine } from '../message/privmsg.js';
import { isValidNick } from '../wire/handshake.js';
import { MessageType } from '../wire/message-types.js';
import type { ClientContext, DirectoryLink } from './client-context.js';
import { formatOfferArgs, type Orderbook, parseOffer, type Offer } from './offers.js';

/** A maker answers `!orderbook` from one nick at most this often (ng maker, docs/protocol.md §9.3). */
export const ORDERBOOK_REPLY_INTERVAL_MS = 10_000;

/** Fills the orderbook from the offers and cancels we hear. */
export class OrderbookCollector {
  readonly #orderbook: Orderbook;

  constructor(orderbook: Orderbook) {
    this.#orderbook = orderbook;
  }

  /** Offers and `!cancel`s of a pubmsg; returns its commands. */
  onPubmsg(from: string, message: string): string[] {
    const commands = splitCommands(message);
    for (const command of commands) {
      const offer = parseOffer(command);
      if (offer !== undefined) this.#orderbook.add(from, offer, 'pubmsg');
      else if (command.startsWith('cancel ')) {
        const oid = Number(command.slice('cancel '.length));
        if (Number.isSafeInteger(oid)) this.#orderbook.cancel(from, oid);
      }
    }
    return commands;
  }

  /** Offers sent to us by privmsg (an answer to our `!orderbook`). */
  onPrivmsg(from: string, cmd: string, body: string): void {
    if (!OFFER_TYPES.has(cmd)) return;
    for (const segment of splitCommands(`!${cmd} ${body}`)) {
      const offer = parseOffer(segment);
      if (offer !== undefined) this.#orderbook.add(from, offer, 'privmsg');
    }
  }
}

/** Our own offers: set by the application, announced by pubmsg to directories. */
export class OfferAnnouncer {
  readonly #ctx: ClientContext;
  #offers: readonly Offer[] = [];

  constructor(ctx: ClientContext) {
    this.#ctx = ctx;
  }

  get offers(): readonly Offer[] {
    return this.#offers;
  }

  /** Sets the offers and announces them; returns the number of directories they went to. */
  set(offers: readonly Offer[], directories: readonly DirectoryLink[]): number {
    this.#offers = [...offers];
    return this.announce(directories);
  }

  /** Sends one pubmsg per offer to each handshaked directory of `directories`. */
  announce(directories: readonly DirectoryLink[]): number {
    let sent = 0;
    for (const link of directories) {
      if (!link.isUp || link.conn === undefined) continue;
      for (const offer of this.#offers) {
        link.conn.send(
          MessageType.PUBMSG,
          formatPubmsgLine(this.#ctx.nick, `!${offer.type} ${formatOfferArgs(offer)}`),
        );
      }
      sent++;
    }
    return sent;
  }
}

/**
 * The maker's part: re-announces the offers on every directory that comes up, and answers a
 * pubmsg `!orderbook` with a privmsg holding every offer, at most once per
 * {@link ORDERBOOK_REPLY_INTERVAL_MS} per nick.
 */
export class MakerResponder {
  readonly #ctx: ClientContext;
  readonly #announcer: OfferAnnouncer;
  readonly #privmsg: (to: string, cmd: string, body: string) => void;

  constructor(
    ctx: ClientContext,
    announcer: OfferAnnouncer,
    privmsg: (to: string, cmd: string, body: string) => void,
  ) {
    this.#ctx = ctx;
    this.#announcer = announcer;
    this.#privmsg = privmsg;
  }

  /** A directory link came up. */
  onDirectoryUp(link: DirectoryLink): void {
    this.#announcer.announce([link]);
  }

  /** A pubmsg's commands; a pubmsg holding more than one orderbook request is ignored (docs/protocol.md §5.2, DoS rule #298). */
  onPubmsg(from: string, commands: readonly string[]): void {
    if (commands.length === 1 && commands[0] === 'orderbook') this.#answer(from);
  }

  #answer(from: string): void {
    const ctx = this.#ctx;
    const offers = this.#announcer.offers;
    if (offers.length === 0 || !isValidNick(from)) return;
    const known = ctx.peers.ensure(from);
    const now = ctx.now();
    if (now - known.lastOrderbookReplyAt < ORDERBOOK_REPLY_INTERVAL_MS) {
      ctx.counters.add('ratelimited.orderbook');
      return;
    }
    known.lastOrderbookReplyAt = now;
    const [first, ...rest] = offers;
    if (first === undefined) return;
    const body = [
      formatOfferArgs(first),
      ...rest.map((o) => `${o.type} ${formatOfferArgs(o)}`),
    ].join('!');
    try {
      this.#privmsg(from, first.type, body);
    } catch (err) {
      ctx.logger.info(
        { to: from, reason: err instanceof Error ? err.message : String(err) },
        'cannot answer orderbook request',
      );
    }
  }
}
