/**
 * The offer behaviour of jmdaemon (docs/protocol.md §4.2, §5.2, §6): every node keeps the
 * orderbook it hears ({@link OrderbookCollector}); a maker also announces its offers when a
 * directory link comes up and answers `!orderbook` ({@link MakerResponder}).
 */
import { OnionmcError, ProtocolError } from '../errors.js';
import { OFFER_TYPES, splitCommands } from '../message/commands.js';
import { formatPubmsgLine, formatSignedPrivmsgLine } from '../message/privmsg.js';
import { encodeEnvelope } from '../wire/envelope.js';
import { MAX_SEND_LINE_BYTES } from '../wire/framing.js';
import { isValidNick } from '../wire/handshake.js';
import { MessageType } from '../wire/message-types.js';
import type { ClientContext, DirectoryLink } from './client-context.js';
import type { PrivmsgOptions, Via } from './client-types.js';
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

  /** Offers, and a `!tbond` proof, sent to us by privmsg (an answer to our `!orderbook`). */
  onPrivmsg(from: string, cmd: string, body: string): void {
    if (!OFFER_TYPES.has(cmd)) return;
    for (const segment of splitCommands(`!${cmd} ${body}`)) {
      const offer = parseOffer(segment);
      if (offer !== undefined) this.#orderbook.add(from, offer, 'privmsg');
      else if (segment.startsWith('tbond ')) {
        const proof = segment.slice('tbond '.length);
        if (/^[A-Za-z0-9+/=]+$/.test(proof)) this.#orderbook.setBond(from, proof);
      }
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

/** Longest signature a privmsg carries: base64 of a 72-byte DER ECDSA signature. */
const MAX_SIGNATURE_BASE64_CHARS = 96;
/** A compressed secp256k1 public key in hex. */
const PUBLIC_KEY_HEX_CHARS = 66;

/**
 * Bytes of the line (envelope included, line end not) a signed privmsg `cmd body` from `from`
 * to `to` takes at most, whatever its signature's length: what the 40,000-byte send limit
 * (docs/protocol.md §1.3) is checked against before any of several privmsgs is sent.
 * @throws OnionmcError as the privmsg itself would, for a nick, command or body it cannot carry.
 */
export function maxPrivmsgLineBytes(from: string, to: string, cmd: string, body: string): number {
  const line = formatSignedPrivmsgLine(
    from,
    to,
    cmd,
    body,
    '0'.repeat(PUBLIC_KEY_HEX_CHARS),
    'A'.repeat(MAX_SIGNATURE_BASE64_CHARS),
  );
  return Buffer.byteLength(encodeEnvelope(MessageType.PRIVMSG, line), 'utf8');
}

/** How a maker sends a privmsg (the node's signing and routing). */
export type MakerSend = (to: string, cmd: string, body: string, options: PrivmsgOptions) => Via;

/**
 * The maker's part: re-announces the offers on every directory that comes up, reports each
 * pubmsg `!orderbook` (`orderbookRequest` event) and, unless the application answers itself,
 * answers it with one privmsg per offer, at most once per {@link ORDERBOOK_REPLY_INTERVAL_MS} per
 * nick, through the directory node the request came through (docs/protocol.md §13.2).
 */
export class MakerResponder {
  readonly #ctx: ClientContext;
  readonly #announcer: OfferAnnouncer;
  readonly #privmsg: MakerSend;
  readonly #automatic: boolean;

  constructor(ctx: ClientContext, announcer: OfferAnnouncer, privmsg: MakerSend) {
    this.#ctx = ctx;
    this.#announcer = announcer;
    this.#privmsg = privmsg;
    this.#automatic = ctx.options.answerOrderbook !== false;
  }

  /** A directory link came up. */
  onDirectoryUp(link: DirectoryLink): void {
    this.#announcer.announce([link]);
  }

  /** A pubmsg's commands; a pubmsg holding more than one orderbook request is ignored (docs/protocol.md §5.2, DoS rule #298). */
  onPubmsg(from: string, commands: readonly string[], via: Via): void {
    if (commands.length !== 1 || commands[0] !== 'orderbook' || !isValidNick(from)) return;
    const known = this.#ctx.peers.ensure(from);
    if (via.kind === 'directory') known.orderbookRequestDirectory = via.location;
    this.#ctx.events.emit('orderbookRequest', { from, via });
    if (!this.#automatic || this.#announcer.offers.length === 0) return;
    const now = this.#ctx.now();
    if (now - known.lastOrderbookReplyAt < ORDERBOOK_REPLY_INTERVAL_MS) {
      this.#ctx.counters.add('ratelimited.orderbook');
      return;
    }
    known.lastOrderbookReplyAt = now;
    try {
      this.answer(from);
    } catch (err) {
      this.#ctx.logger.info(
        { to: from, reason: err instanceof Error ? err.message : String(err) },
        'cannot answer orderbook request',
      );
    }
  }

  /**
   * Sends our offers to `to`, one signed privmsg per offer, each followed by `!tbond <proof>` when
   * `fidelityBond` is given (a proof made for `to`'s nick, docs/protocol.md §5.2), through the
   * directory node `to`'s last `!orderbook` came through when it is still connected, else through
   * any directory node that carries `to` (never a direct link, docs/protocol.md §13.2).
   * @returns how many privmsgs were sent.
   * @throws OnionmcError `ERR_API` when we have no offers or the proof is not base64;
   *   `ERR_NOT_ROUTABLE` when no directory node carries `to`; ProtocolError `ERR_LINE_TOO_LONG`
   *   when one of the lines could pass 40,000 bytes ({@link maxPrivmsgLineBytes}). Every line
   *   is checked before any is sent, so a refused answer sends nothing.
   */
  answer(to: string, fidelityBond?: string): number {
    const offers = this.#announcer.offers;
    if (offers.length === 0) throw new OnionmcError('ERR_API', 'no offers set');
    if (fidelityBond !== undefined && !/^[A-Za-z0-9+/=]+$/.test(fidelityBond))
      throw new OnionmcError('ERR_API', 'a fidelity-bond proof is base64 text');
    const directory = this.#ctx.peers.get(to)?.orderbookRequestDirectory;
    const tbond = fidelityBond === undefined ? '' : `!tbond ${fidelityBond}`;
    for (const offer of offers) {
      const bytes = maxPrivmsgLineBytes(
        this.#ctx.nick,
        to,
        offer.type,
        `${formatOfferArgs(offer)}${tbond}`,
      );
      if (bytes > MAX_SEND_LINE_BYTES)
        throw new ProtocolError(
          `offer ${offer.oid}'s privmsg line could be ${bytes} bytes, over the send limit of ` +
            `${MAX_SEND_LINE_BYTES}: no offer sent`,
          'ERR_LINE_TOO_LONG',
        );
    }
    for (const offer of offers) {
      this.#privmsg(to, offer.type, `${formatOfferArgs(offer)}${tbond}`, {
        route: 'directory',
        ...(directory !== undefined ? { directory } : {}),
      });
    }
    return offers.length;
  }
}
