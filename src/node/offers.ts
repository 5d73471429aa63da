/**
 * Offers (docs/protocol.md §5.2): `<type> oid minsize maxsize txfee cjfee`, announced by pubmsg
 * one per offer and sent in reply to `!orderbook` one signed privmsg per offer, a maker's
 * fidelity-bond proof appended as a `!tbond <proof>` segment (docs/protocol.md §5.1, §13.2). The
 * reference's single privmsg with later offers appended as `!type …` segments is read too.
 */
import { OFFER_TYPES } from '../message/commands.js';

/** One offer. Amounts are integer satoshis; `cjfee` is kept as the decimal string it was sent as. */
export interface Offer {
  readonly type: string;
  readonly oid: number;
  readonly minsize: number;
  readonly maxsize: number;
  readonly txfee: number;
  /** A fraction for `*reloffer`, integer sats for `*absoffer` (docs/protocol.md §5.2); as text, never rounded. */
  readonly cjfee: string;
}

const INTEGER = /^(0|[1-9][0-9]{0,15})$/;
/**
 * A relative fee: any number of decimals (ng's `cjfee_factor` randomisation gives more than 16),
 * or Python's `str(Decimal)` exponent form such as `1E-7`; kept as text, never rounded.
 */
const DECIMAL = /^(0|[1-9][0-9]{0,15})(\.[0-9]{1,64})?([eE][-+]?[0-9]{1,3})?$/;

/**
 * Parses one offer command. `segment` is `type args…` without the leading `!`.
 * @returns undefined when it is not an offer or its fields are malformed (an integer field above
 *   `Number.MAX_SAFE_INTEGER` included: it could not be read exactly).
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
  // 16 digits may pass 2^53, where Number() rounds: an offer id or size must be read exactly
  // (sizes in sats stay below 2.1e15 anyway).
  if (![offer.oid, offer.minsize, offer.maxsize, offer.txfee].every(Number.isSafeInteger))
    return undefined;
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
  /** The maker's `!tbond` fidelity-bond proof sent with its offers to us (base64, made for our nick). */
  readonly fidelityBond?: string;
  /** `privmsg`: a signed reply we verified; `pubmsg`: an unsigned announcement (docs/protocol.md §5.6). */
  readonly source: 'privmsg' | 'pubmsg';
}

/**
 * Most offers kept per maker nick (a maker announces one or two; ng's maker one per fee kind):
 * further offer ids of that nick are ignored until it cancels some; its known ones still update.
 * With `MAX_KNOWN_NICKS` (client-context.ts) this bounds the orderbook whatever peers announce.
 */
export const MAX_OFFERS_PER_NICK = 16;

/**
 * Longest `!tbond` proof kept, in characters: a fidelity-bond proof is 252 bytes, 336 in base64
 * (docs/protocol.md §5.6); a longer one is ignored.
 */
export const MAX_BOND_PROOF_CHARS = 1_024;

/** The offers a node has seen, by maker nick then offer id. */
export class Orderbook {
  readonly #byNick = new Map<string, Map<number, OrderbookEntry>>();
  readonly #bonds = new Map<string, string>();

  /** Records the `!tbond` proof a maker sent us (docs/protocol.md §5.2); the last one counts. */
  setBond(nick: string, proof: string): void {
    if (proof.length > MAX_BOND_PROOF_CHARS) return;
    this.#bonds.set(nick, proof);
  }

  /** The `!tbond` proofs heard, by maker nick. */
  bonds(): { nick: string; proof: string }[] {
    return [...this.#bonds]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([nick, proof]) => ({ nick, proof }));
  }

  /**
   * Records an offer; a signed (privmsg) offer is never replaced by an unsigned one, and a new
   * offer id past {@link MAX_OFFERS_PER_NICK} of its nick is ignored.
   */
  add(nick: string, offer: Offer, source: OrderbookEntry['source']): void {
    let offers = this.#byNick.get(nick);
    if (offers === undefined) {
      offers = new Map();
      this.#byNick.set(nick, offers);
    }
    const existing = offers.get(offer.oid);
    if (existing === undefined && offers.size >= MAX_OFFERS_PER_NICK) return;
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
    this.#bonds.delete(nick);
  }

  /** All offers, sorted by nick then oid. */
  entries(): OrderbookEntry[] {
    return [...this.#byNick.keys()].sort().flatMap((nick) => {
      const bond = this.#bonds.get(nick);
      return [...(this.#byNick.get(nick)?.values() ?? [])]
        .sort((a, b) => a.oid - b.oid)
        .map((entry) => (bond === undefined ? entry : { ...entry, fidelityBond: bond }));
    });
  }
}
