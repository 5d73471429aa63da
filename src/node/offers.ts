/**
 * Offers (spec §5.2): `<type> oid minsize maxsize txfee cjfee`, announced by pubmsg one per offer
 * and sent as one signed privmsg in reply to `!orderbook`, the later offers appended as
 * `!type …` segments (spec §5.1, R: src/jmdaemon/message_channel.py `announce_orders`).
 */
import { OFFER_TYPES } from '../message/commands.js';

/** One offer. Amounts are integer satoshis; `cjfee` is kept as the decimal string it was sent as. */
export interface Offer {
  readonly type: string;
  readonly oid: number;
  readonly minsize: number;
  readonly maxsize: number;
  readonly txfee: number;
  /** A fraction for `*reloffer`, integer sats for `*absoffer` (spec §5.2); as text, never rounded. */
  readonly cjfee: string;
}

const INTEGER = /^(0|[1-9][0-9]{0,15})$/;
const DECIMAL = /^(0|[1-9][0-9]{0,15})(\.[0-9]{1,16})?$/;

/**
 * Parses one offer command. `segment` is `type args…` without the leading `!`.
 * @returns undefined when it is not an offer or its fields are malformed.
 */
export function parseOffer(segment: string): Offer | undefined {
  const fields = segment.split(' ');
  if (fields.length !== 6) return undefined;
  const [type, oid, minsize, maxsize, txfee, cjfee] = fields as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (!OFFER_TYPES.has(type)) return undefined;
  if (![oid, minsize, maxsize, txfee].every((v) => INTEGER.test(v))) return undefined;
  const isAbsolute = type.endsWith('absoffer');
  if (!(isAbsolute ? INTEGER : DECIMAL).test(cjfee)) return undefined;
  const offer = {
    type,
    oid: Number(oid),
    minsize: Number(minsize),
    maxsize: Number(maxsize),
    txfee: Number(txfee),
    cjfee,
  };
  if (offer.minsize > offer.maxsize) return undefined;
  return offer;
}

/** Formats the arguments of an offer: `oid minsize maxsize txfee cjfee`. */
export function formatOfferArgs(offer: Offer): string {
  return `${offer.oid} ${offer.minsize} ${offer.maxsize} ${offer.txfee} ${offer.cjfee}`;
}

/** Validates an offer given by an application; returns the problems (empty when fine). */
export function offerProblems(offer: Offer): string[] {
  const problems: string[] = [];
  if (!OFFER_TYPES.has(offer.type))
    problems.push(`type "${offer.type}" is not one of ${[...OFFER_TYPES].join(', ')}`);
  for (const key of ['oid', 'minsize', 'maxsize', 'txfee'] as const) {
    if (!Number.isSafeInteger(offer[key]) || offer[key] < 0)
      problems.push(`${key} must be a non-negative integer`);
  }
  if (offer.minsize > offer.maxsize) problems.push('minsize must not exceed maxsize');
  const isAbsolute = offer.type.endsWith('absoffer');
  if (!(isAbsolute ? INTEGER : DECIMAL).test(offer.cjfee)) {
    problems.push(
      isAbsolute
        ? 'cjfee must be an integer (sats) for an absolute offer'
        : 'cjfee must be a decimal fraction',
    );
  }
  return problems;
}

/** An offer in a taker's orderbook, with who made it and how we learnt it. */
export interface OrderbookEntry extends Offer {
  readonly nick: string;
  /** `privmsg`: a signed reply we verified; `pubmsg`: an unsigned announcement (spec §5.6). */
  readonly source: 'privmsg' | 'pubmsg';
}

/** The offers a node has seen, by maker nick then offer id. */
export class Orderbook {
  readonly #byNick = new Map<string, Map<number, OrderbookEntry>>();

  /** Records an offer; a signed (privmsg) offer is never replaced by an unsigned one. */
  add(nick: string, offer: Offer, source: OrderbookEntry['source']): void {
    let offers = this.#byNick.get(nick);
    if (offers === undefined) {
      offers = new Map();
      this.#byNick.set(nick, offers);
    }
    const existing = offers.get(offer.oid);
    if (existing?.source === 'privmsg' && source === 'pubmsg') return;
    offers.set(offer.oid, { ...offer, nick, source });
  }

  /** Removes one offer (`!cancel`). */
  cancel(nick: string, oid: number): void {
    this.#byNick.get(nick)?.delete(oid);
  }

  /** Removes every offer of a nick (it left). */
  removeNick(nick: string): void {
    this.#byNick.delete(nick);
  }

  /** All offers, sorted by nick then oid. */
  entries(): OrderbookEntry[] {
    return [...this.#byNick.keys()]
      .sort()
      .flatMap((nick) =>
        [...(this.#byNick.get(nick)?.values() ?? [])].sort((a, b) => a.oid - b.oid),
      );
  }
}
