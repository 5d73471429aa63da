/**
 * Fuzz properties of src/node's readers of peer text: offers (`parseOffer`), the command splitter
 * (`splitCommands`) and the orderbook collector that consumes peer offers, and the end-to-end
 * layer (`EndToEnd`) that opens `!fill`, `!pubkey` and encrypted bodies.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import fc from 'fast-check';
import { ENCRYPTED_COMMANDS, OFFER_TYPES, splitCommands } from '../../../src/message/commands.js';
import { encodeBase64 } from '../../../src/message/signing.js';
import { EndToEnd } from '../../../src/node/end-to-end.js';
import { OrderbookCollector } from '../../../src/node/offers-part.js';
import {
  formatOfferArgs,
  MAX_BOND_PROOF_CHARS,
  MAX_OFFERS_PER_NICK,
  offerProblems,
  Orderbook,
  parseOffer,
  type Offer,
} from '../../../src/node/offers.js';
import { fuzzProperty, onlyTyped, utf16String, type FuzzProperty } from '../property.js';

/** One character replaced by another, inserted or removed at a random place. */
function mutate(text: string, at: number, mode: number, ch: string): string {
  const i = at % (text.length + 1);
  switch (mode % 3) {
    case 0: {
      const old = text.charAt(i);
      const replacement = old === ch ? (ch === '0' ? '1' : '0') : ch;
      return text.slice(0, i) + replacement + text.slice(i + 1);
    }
    case 1:
      return text.slice(0, i) + ch + text.slice(i);
    default:
      return text.length === 0 ? 'x' : text.slice(0, i) + text.slice(i + 1);
  }
}

const offerMutation = fc.tuple(
  fc.nat(),
  fc.nat(),
  fc.constantFrom('0', '1', '9', '.', 'e', 'E', '-', '+', ' ', '!', 'x', '\t', '٣', '\u0000'),
);

// ---------------------------------------------------------------------------------------------
// Offers

const TYPES = [...OFFER_TYPES];

/** Safe non-negative integers, small and large (up to 2^53 - 1, 16 digits). */
const amount = fc.oneof(
  fc.nat(100_000),
  fc.nat(),
  fc.maxSafeNat(),
  fc.constantFrom(0, Number.MAX_SAFE_INTEGER),
);

/** A relative fee as a maker writes it: `0.0002`, many decimals, Python's `1E-7`. */
const relFee = fc.oneof(
  fc
    .tuple(fc.nat(99), fc.string({ unit: fc.constantFrom('0', '1', '5', '9'), maxLength: 30 }))
    .map(([int, frac]) => (frac === '' ? String(int) : `${int}.${frac}`)),
  fc
    .tuple(
      fc.integer({ min: 1, max: 9 }),
      fc.constantFrom('E', 'e'),
      fc.integer({ min: -99, max: 9 }),
    )
    .map(([m, e, x]) => `${m}${e}${x}`),
  fc.constantFrom('0', '0.0002', '1E-7', '0.00002000000000000000001', '1.5E+2'),
);

/** A valid offer: safe integers, minsize ≤ maxsize, a fee matching its type. */
const validOffer: fc.Arbitrary<Offer> = fc
  .record({
    type: fc.constantFrom(...TYPES),
    oid: amount,
    a: amount,
    b: amount,
    txfee: amount,
    absFee: amount,
    relFee,
  })
  .map(({ type, oid, a, b, txfee, absFee, relFee: rel }) => ({
    type,
    oid,
    minsize: Math.min(a, b),
    maxsize: Math.max(a, b),
    txfee,
    cjfee: type.endsWith('absoffer') ? String(absFee) : rel,
  }));

/** `type oid minsize maxsize txfee cjfee`: an offer segment as it follows a `!`. */
function offerSegment(offer: Offer): string {
  return `${offer.type} ${formatOfferArgs(offer)}`;
}

/** Offer-ish tokens: numbers of every length (to 17 digits), fees, types, junk. */
const offerToken = fc.oneof(
  fc.constantFrom(...TYPES, 'cancel', 'tbond', 'Reloffer', 'sw0absoffe'),
  fc.string({ unit: fc.constantFrom('0', '1', '9'), maxLength: 17 }),
  relFee,
  fc.constantFrom('-1', '+1', '1e3', '0x10', 'Infinity', 'NaN', ' ', '', '1.', '.5'),
  utf16String({ maxLength: 6 }),
);

/** Random, mutated and valid offer segments. */
const offerText = fc.oneof(
  validOffer.map(offerSegment),
  fc
    .tuple(validOffer, offerMutation, offerMutation)
    .map(([o, m1, m2]) => mutate(mutate(offerSegment(o), ...m1), ...m2)),
  fc.array(offerToken, { maxLength: 8 }).map((t) => t.join(' ')),
  utf16String({ maxLength: 40 }),
);

const offerProperties: FuzzProperty[] = [
  fuzzProperty({
    name: 'offers: parseOffer of any (mutated) offer text never throws; what it accepts is a sane offer of the same type and fee',
    runs: 100_000,
    property: () =>
      fc.property(offerText, (text) => {
        const r = onlyTyped('parseOffer', [], () => parseOffer(text));
        if (!r.ok || r.value === undefined) return true;
        const o = r.value;
        const fields = text.split(' ');
        return (
          fields.length === 6 &&
          o.type === fields[0] &&
          OFFER_TYPES.has(o.type) &&
          o.cjfee === fields[5] &&
          [o.oid, o.minsize, o.maxsize, o.txfee].every((n) => Number.isInteger(n) && n >= 0) &&
          o.minsize <= o.maxsize
        );
      }),
  }),
  fuzzProperty({
    name: 'offers: a valid formatted offer parses back to itself, passes offerProblems; a line with one character changed parses only to the offer it spells',
    runs: 50_000,
    property: () =>
      fc.property(validOffer, offerMutation, (offer, [at, mode, ch]) => {
        if (offerProblems(offer).length !== 0) return false;
        const line = offerSegment(offer);
        const parsed = parseOffer(line);
        if (parsed === undefined || JSON.stringify(parsed) !== JSON.stringify(offer)) return false;
        // A mutated line either does not parse or parses to the offer its text says.
        const changed = mutate(line, at, mode, ch);
        const p = parseOffer(changed);
        return p === undefined || offerSegment(p) === changed;
      }),
  }),
];

// parseOffer once accepted 16-digit integers above Number.MAX_SAFE_INTEGER and rounded them
// (`sw0absoffer 9007199254740993 0 1 0 0` gave oid 9007199254740992).
const offerExactProperty: FuzzProperty = fuzzProperty({
  name: 'offers: any offer parseOffer accepts passes offerProblems and formats back to its text',
  runs: 50_000,
  property: () =>
    fc.property(offerText, (text) => {
      const o = parseOffer(text);
      return o === undefined || (offerProblems(o).length === 0 && offerSegment(o) === text);
    }),
});

// ---------------------------------------------------------------------------------------------
// Command splitting and the orderbook collector

/** Text rich in `!` and spaces, with unicode and lone surrogates. */
const bangText = fc.oneof(
  fc.string({
    unit: fc.constantFrom('!', '!', ' ', 'a', 'é', '😀', '\uD800', '\u0000'),
    maxLength: 40,
  }),
  fc
    .array(fc.oneof(utf16String({ maxLength: 6 }), fc.constantFrom('!', '!!', ' ', '! ')), {
      maxLength: 12,
    })
    .map((p) => p.join('')),
);

/** A pubmsg or privmsg body as makers write them, and as anybody else might. */
const NICKS = ['J5maker1', 'J5maker2', 'J5taker'];
const collectorSegment = fc.oneof(
  { weight: 4, arbitrary: validOffer.map(offerSegment) },
  { weight: 2, arbitrary: offerText },
  {
    weight: 2,
    arbitrary: fc
      .oneof(amount.map(String), offerToken, utf16String({ maxLength: 8 }))
      .map((x) => `cancel ${x}`),
  },
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        fc.base64String({ maxLength: 40 }),
        fc.string({ unit: fc.constantFrom('A', '+', '/', '=', ' ', '!'), maxLength: 20 }),
        fc.constant('A'.repeat(MAX_BOND_PROOF_CHARS + 1)),
      )
      .map((x) => `tbond ${x}`),
  },
  { weight: 1, arbitrary: bangText },
);
const collectorEvent = fc.record({
  nick: fc.constantFrom(...NICKS),
  kind: fc.constantFrom<'pubmsg' | 'privmsg'>('pubmsg', 'privmsg'),
  cmd: fc.oneof(fc.constantFrom(...TYPES), fc.constantFrom('fill', 'tbond', 'cancel', 'x')),
  segments: fc.array(collectorSegment, { minLength: 1, maxLength: 6 }),
  bangs: fc.constantFrom('!', '!!', ' !', ''),
});

const commandProperties: FuzzProperty[] = [
  fuzzProperty({
    name: 'commands: splitCommands of any text never throws; its non-empty, !-free parts joined with ! are the text with runs of ! collapsed and trimmed',
    runs: 100_000,
    property: () =>
      fc.property(bangText, (text) => {
        const parts = onlyTyped('splitCommands', [], () => splitCommands(text));
        if (!parts.ok) return false;
        const expected = text.replace(/!+/g, '!').replace(/^!/, '').replace(/!$/, '');
        return (
          parts.value.every((p) => p.length > 0 && !p.includes('!')) &&
          parts.value.join('!') === expected
        );
      }),
  }),
  fuzzProperty({
    name: 'orderbook: OrderbookCollector fed random pubmsgs and privmsgs never throws; the orderbook holds only heard, sane offers, at most 16 per nick',
    runs: 20_000,
    property: () =>
      fc.property(fc.array(collectorEvent, { minLength: 1, maxLength: 12 }), (events) => {
        const orderbook = new Orderbook();
        const collector = new OrderbookCollector(orderbook);
        /** Every offer segment heard, by nick: an orderbook entry must be one of them. */
        const heard = new Map<string, Set<string>>();
        for (const e of events) {
          const message = e.segments.map((s) => `${e.bangs}${s}`).join('');
          const set = heard.get(e.nick) ?? new Set<string>();
          heard.set(e.nick, set);
          for (const s of splitCommands(message)) set.add(s);
          if (e.kind === 'pubmsg') {
            const r = onlyTyped('onPubmsg', [], () => collector.onPubmsg(e.nick, message));
            if (!r.ok || r.value.join('!') !== splitCommands(message).join('!')) return false;
          } else {
            // The privmsg body follows its first command word, as privmsg delivery passes it.
            const body = message.replace(/^!+/, '');
            for (const s of splitCommands(`!${e.cmd} ${body}`)) set.add(s);
            onlyTyped('onPrivmsg', [], () => {
              collector.onPrivmsg(e.nick, e.cmd, body);
            });
          }
        }
        const perNick = new Map<string, number>();
        for (const entry of orderbook.entries()) {
          perNick.set(entry.nick, (perNick.get(entry.nick) ?? 0) + 1);
          const { nick, source, fidelityBond, ...offer } = entry;
          if (!NICKS.includes(nick) || !['pubmsg', 'privmsg'].includes(source)) return false;
          if (!heard.get(nick)?.has(offerSegment(offer))) return false;
          if (offerProblems(offer).length !== 0) return false;
          if (fidelityBond !== undefined && fidelityBond.length > MAX_BOND_PROOF_CHARS) {
            return false;
          }
        }
        return [...perNick.values()].every((n) => n <= MAX_OFFERS_PER_NICK);
      }),
  }),
];

// ---------------------------------------------------------------------------------------------
// End-to-end encryption: !fill, !pubkey and the encrypted commands

const TAKER = 'J5taker';
const MAKER = 'J5maker';
const ENCRYPTED = [...ENCRYPTED_COMMANDS];

/** A taker and a maker with end-to-end on, on a fixed clock (no session expires in a run). */
function endToEndPair(): { taker: EndToEnd; maker: EndToEnd } {
  const now = (): number => 1_000_000;
  return {
    taker: new EndToEnd({ enabled: true, now }),
    maker: new EndToEnd({ enabled: true, now }),
  };
}

/** The taker's `!fill` and the maker's `!pubkey`, each opened by the other side. */
function keyExchange(taker: EndToEnd, maker: EndToEnd, features: string): boolean {
  const fill = taker.seal(MAKER, 'fill', '0 50000 Pcommit');
  if (maker.open(TAKER, 'fill', fill).body !== '0 50000 Pcommit') return false;
  const pubkey = maker.seal(TAKER, 'pubkey', features);
  const opened = taker.open(MAKER, 'pubkey', pubkey);
  return (
    opened.body === features &&
    opened.peerKeyHex === maker.keysOf(TAKER)?.own &&
    maker.keysOf(TAKER)?.peer === taker.keysOf(MAKER)?.own
  );
}

/** Bodies a peer might send: base64 of any bytes (split by spaces), hex keys, garbage. */
const peerBody = fc.oneof(
  fc
    .tuple(fc.uint8Array({ maxLength: 120 }), fc.array(fc.nat(), { maxLength: 3 }))
    .map(([bytes, cuts]) => {
      const b64 = encodeBase64(bytes);
      const points = [...new Set(cuts.map((c) => c % (b64.length + 1)))].sort((a, b) => a - b);
      let out = '';
      let from = 0;
      for (const p of points) {
        out += `${b64.slice(from, p)} `;
        from = p;
      }
      return out + b64.slice(from);
    }),
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map(bytesToHex),
  fc
    .tuple(
      fc.nat(99),
      fc.nat(),
      fc.uint8Array({ minLength: 0, maxLength: 33 }),
      utf16String({ maxLength: 8 }),
    )
    .map(([oid, amt, key, commit]) => `${oid} ${amt} ${bytesToHex(key)} ${commit}`),
  fc.string({ unit: fc.constantFrom('A', 'f', '0', '=', '+', '/', ' ', '!', 'é'), maxLength: 40 }),
  utf16String({ maxLength: 40 }),
);
const peerCmd = fc.oneof(
  fc.constantFrom(...ENCRYPTED, 'fill', 'pubkey', 'orderbook', 'error'),
  fc.string({ maxLength: 6 }),
);
const peerNick = fc.constantFrom(TAKER, MAKER, 'J5other');

type EndToEndOp =
  | { kind: 'exchange'; features: string }
  | { kind: 'send'; fromTaker: boolean; cmd: string; text: string }
  | { kind: 'open'; toTaker: boolean; from: string; cmd: string; body: string }
  | { kind: 'seal'; fromTaker: boolean; to: string; cmd: string; body: string };

const endToEndOp: fc.Arbitrary<EndToEndOp> = fc.oneof(
  fc.record({
    kind: fc.constant('exchange' as const),
    features: fc.constantFrom('', 'features={}'),
  }),
  fc.record({
    kind: fc.constant('send' as const),
    fromTaker: fc.boolean(),
    cmd: fc.constantFrom(...ENCRYPTED),
    text: utf16String({ maxLength: 40 }),
  }),
  fc.record({
    kind: fc.constant('open' as const),
    toTaker: fc.boolean(),
    from: peerNick,
    cmd: peerCmd,
    body: peerBody,
  }),
  fc.record({
    kind: fc.constant('seal' as const),
    fromTaker: fc.boolean(),
    to: peerNick,
    cmd: peerCmd,
    body: peerBody,
  }),
);

/**
 * Well-formed text survives encryption as is (a leading U+FEFF kept); a lone surrogate comes
 * back as U+FFFD.
 */
function utf8RoundTrip(text: string): string {
  return new TextDecoder('utf-8', { ignoreBOM: true }).decode(new TextEncoder().encode(text));
}

const endToEndProperties: FuzzProperty[] = [
  fuzzProperty({
    name: 'end-to-end: random open/seal sequences (key exchanges, messages, garbage from any nick) throw only ERR_CRYPTO (ERR_API for a bad !fill to seal); what opens is what was sealed',
    runs: 3_000,
    property: () =>
      fc.property(fc.array(endToEndOp, { minLength: 1, maxLength: 10 }), (ops) => {
        const { taker, maker } = endToEndPair();
        const raw = new EndToEnd({ enabled: false, now: () => 0 });
        for (const op of ops) {
          switch (op.kind) {
            case 'exchange':
              if (!keyExchange(taker, maker, op.features)) return false;
              break;
            case 'send': {
              const [from, to, fromNick, toNick] = op.fromTaker
                ? [taker, maker, TAKER, MAKER]
                : [maker, taker, MAKER, TAKER];
              const sealed = onlyTyped('EndToEnd.seal', ['ERR_CRYPTO'], () =>
                from.seal(toNick, op.cmd, op.text),
              );
              if (!sealed.ok) break;
              const opened = onlyTyped('EndToEnd.open', ['ERR_CRYPTO'], () =>
                to.open(fromNick, op.cmd, sealed.value),
              );
              if (opened.ok && opened.value.body !== utf8RoundTrip(op.text)) return false;
              break;
            }
            case 'open': {
              const node = op.toTaker ? taker : maker;
              onlyTyped('EndToEnd.open', ['ERR_CRYPTO'], () => node.open(op.from, op.cmd, op.body));
              const r = raw.open(op.from, op.cmd, op.body);
              if (r.body !== op.body || r.encrypted) return false;
              break;
            }
            case 'seal': {
              const node = op.fromTaker ? taker : maker;
              onlyTyped('EndToEnd.seal', ['ERR_CRYPTO', 'ERR_API'], () =>
                node.seal(op.to, op.cmd, op.body),
              );
              if (raw.seal(op.to, op.cmd, op.body) !== op.body) return false;
              break;
            }
          }
        }
        return true;
      }),
  }),
  fuzzProperty({
    name: 'end-to-end: after a key exchange, garbage encrypted bodies, !fill and !pubkey that fail throw ERR_CRYPTO and leave the session working',
    runs: 2_000,
    property: () =>
      fc.property(
        fc.array(fc.tuple(peerCmd, peerBody, fc.boolean()), { minLength: 1, maxLength: 6 }),
        fc.constantFrom(...ENCRYPTED),
        utf16String({ maxLength: 40 }),
        (garbage, cmd, text) => {
          const { taker, maker } = endToEndPair();
          if (!keyExchange(taker, maker, '')) return false;
          for (const [gcmd, body, toTaker] of garbage) {
            const [node, from] = toTaker ? [taker, MAKER] : [maker, TAKER];
            const r = onlyTyped('EndToEnd.open', ['ERR_CRYPTO'], () => node.open(from, gcmd, body));
            // Random bytes never authenticate as a box.
            if (r.ok && ENCRYPTED_COMMANDS.has(gcmd)) return false;
            // A well-formed !fill or !pubkey legitimately starts or changes a session: redo it.
            if (r.ok && (gcmd === 'fill' || gcmd === 'pubkey')) {
              if (!keyExchange(taker, maker, '')) return false;
            }
          }
          const toMaker = maker.open(TAKER, cmd, taker.seal(MAKER, cmd, text));
          const toTaker = taker.open(MAKER, cmd, maker.seal(TAKER, cmd, text));
          const want = utf8RoundTrip(text);
          return toMaker.encrypted && toMaker.body === want && toTaker.body === want;
        },
      ),
  }),
];

/** Every property of src/node's readers of peer text, in the runner. */
export const nodeProperties: readonly FuzzProperty[] = [
  ...offerProperties,
  offerExactProperty,
  ...commandProperties,
  ...endToEndProperties,
];
