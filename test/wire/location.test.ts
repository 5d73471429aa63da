import { describe, expect, it } from 'vitest';
import nacl from 'tweetnacl';
import { base32nopad } from '@scure/base';
import { Buffer } from 'node:buffer';
import { hasCode, ProtocolError } from '../../src/errors.js';
import {
  formatLocation,
  isV3OnionHostname,
  NOT_SERVING_ONION,
  ONION_VIRTUAL_PORT,
  onionAddressFromPublicKey,
  parseLocation,
  type Location,
} from '../../src/wire/location.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));

/** The mainnet directory list of the reference config (docs/protocol.md §2.1), ng's two extra entries included. */
const REAL_ONIONS = [
  'satoshi2vcg5e2ept7tjkzlkpomkobqmgtsjzegg6wipnoajadissead.onion',
  'jmarketxf5wc4aldf3slm5u6726zsky52bqnfv6qyxe5hnafgly6yuyd.onion',
  'coinjointovy3eq5fjygdwpkbcdx63d7vd4g32mw7y553uj3kjjzkiqd.onion',
  'nakamotourflxwjnjpnrk7yc2nhkf6r62ed4gdfxmmn5f4saw5q5qoyd.onion',
  'odpwaf67rs5226uabcamvypg3y4bngzmfk7255flcdodesqhsvkptaid.onion',
  'jmrust7bgdbdl6skkvuzhqost4jkikrluj6alemspeifm5hvgqz2qaad.onion',
  'nok55gjlqw6h76zi6gigukoztpx7xgo5r3w5csu362nys5yukzrxpgad.onion',
];

function rejects(text: string): void {
  let err: unknown;
  try {
    parseLocation(text);
  } catch (e) {
    err = e;
  }
  expect(err, `parseLocation(${JSON.stringify(text)})`).toBeInstanceOf(ProtocolError);
  expect(hasCode(err, 'ERR_PROTOCOL')).toBe(true);
}

describe('parseLocation / formatLocation (§2.1)', () => {
  it('has the spec constants', () => {
    expect(NOT_SERVING_ONION).toBe('NOT-SERVING-ONION');
    expect(ONION_VIRTUAL_PORT).toBe(5222);
  });

  it.each<[string, Location]>([
    ['NOT-SERVING-ONION', { kind: 'not-serving' }],
    [`${REAL_ONIONS[0]!}:5222`, { kind: 'hostport', host: REAL_ONIONS[0]!, port: 5222 }],
    ['127.0.0.1:8081', { kind: 'hostport', host: '127.0.0.1', port: 8081 }],
    ['localhost:1', { kind: 'hostport', host: 'localhost', port: 1 }],
    ['h:65535', { kind: 'hostport', host: 'h', port: 65535 }],
    ['h:05222', { kind: 'hostport', host: 'h', port: 5222 }],
  ])('parses %s', (text, loc) => {
    expect(parseLocation(text)).toEqual(loc);
  });

  it.each([
    '',
    'not-serving-onion',
    'host',
    ':5222',
    'host:',
    'host:0',
    'host:65536',
    'host:-1',
    'host:+5222',
    'host: 5222',
    'host:5222 ',
    'host:5e3',
    'host:0x10',
    'host:52.2',
    'a:b:5222',
    '[::1]:5222',
    'a,b:5222',
    'a;b:5222',
    'a b:5222',
    `${'a'.repeat(400)}:5222`,
  ])('rejects %j', (text) => {
    rejects(text);
  });

  it('formats both kinds and round-trips', () => {
    expect(formatLocation({ kind: 'not-serving' })).toBe('NOT-SERVING-ONION');
    expect(formatLocation({ kind: 'hostport', host: 'x.onion', port: 5222 })).toBe('x.onion:5222');
    for (const text of ['NOT-SERVING-ONION', '127.0.0.1:5223', `${REAL_ONIONS[1]!}:5222`]) {
      expect(formatLocation(parseLocation(text))).toBe(text);
    }
  });
});

describe('v3 onion addresses (rend-spec-v3)', () => {
  it('validates the real directory onions of the spec (§2.1)', () => {
    for (const onion of REAL_ONIONS) expect(isV3OnionHostname(onion), onion).toBe(true);
  });

  it('re-derives each real onion from the public key inside it', () => {
    for (const onion of REAL_ONIONS) {
      const pub = base32nopad.decode(onion.slice(0, 56).toUpperCase()).subarray(0, 32);
      expect(onionAddressFromPublicKey(pub)).toBe(onion);
    }
  });

  it('matches an address computed independently with Python (hashlib.sha3_256, base64.b32encode)', () => {
    // RFC 8032 test 1 public key.
    const pub = hex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
    const onion = onionAddressFromPublicKey(pub);
    expect(onion).toBe('25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid.onion');
    expect(isV3OnionHostname(onion)).toBe(true);
  });

  it('makes a valid address from a freshly derived ed25519 key', () => {
    const seed = new Uint8Array(32).fill(7);
    const { publicKey } = nacl.sign.keyPair.fromSeed(seed);
    const onion = onionAddressFromPublicKey(publicKey);
    expect(onion).toMatch(/^[a-z2-7]{56}\.onion$/);
    expect(isV3OnionHostname(onion)).toBe(true);
    expect(parseLocation(`${onion}:${ONION_VIRTUAL_PORT}`)).toEqual({
      kind: 'hostport',
      host: onion,
      port: 5222,
    });
  });

  it('rejects the placeholder onions of the vectors (bad checksum)', () => {
    expect(isV3OnionHostname(`${'a'.repeat(56)}.onion`)).toBe(false);
    expect(isV3OnionHostname(`${'b'.repeat(56)}.onion`)).toBe(false);
  });

  it('rejects wrong shapes, case, version and any flipped character', () => {
    const good = REAL_ONIONS[0]!;
    expect(isV3OnionHostname(good.toUpperCase())).toBe(false);
    expect(isV3OnionHostname(`${good}:5222`)).toBe(false);
    expect(isV3OnionHostname(good.replace('.onion', ''))).toBe(false);
    expect(isV3OnionHostname(`x${good}`)).toBe(false);
    expect(isV3OnionHostname('expyuzz4wqqyqhjn.onion')).toBe(false); // v2 shape
    expect(isV3OnionHostname(good.replace(/^s/, '1'))).toBe(false); // outside the alphabet
    for (let i = 0; i < 56; i++) {
      const c = good[i]!;
      const flipped = good.slice(0, i) + (c === 'a' ? 'b' : 'a') + good.slice(i + 1);
      expect(isV3OnionHostname(flipped), `flip at ${i}`).toBe(false);
    }
  });

  it('rejects a correct checksum under a version other than 3', () => {
    const good = REAL_ONIONS[0]!;
    const raw = base32nopad.decode(good.slice(0, 56).toUpperCase());
    raw[34] = 4;
    const v4 = `${base32nopad.encode(raw).toLowerCase()}.onion`;
    expect(isV3OnionHostname(v4)).toBe(false);
  });

  it('refuses a public key that is not 32 bytes', () => {
    for (const len of [0, 31, 33]) {
      let err: unknown;
      try {
        onionAddressFromPublicKey(new Uint8Array(len));
      } catch (e) {
        err = e;
      }
      expect(hasCode(err, 'ERR_CRYPTO')).toBe(true);
    }
  });
});
