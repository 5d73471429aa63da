import { describe, expect, it } from 'vitest';
import { decodeEnvelope } from '../../src/wire/envelope.js';
import {
  type ClientHandshake,
  DEFAULT_MOTD,
  type DirectoryHandshake,
  encodeClientHandshake,
  encodeDirectoryHandshake,
  evaluateClientHandshake,
  evaluateDirectoryHandshake,
  featuresOf,
  isValidNick,
  JM_APP_NAME,
  JM_PROTOCOL_VERSION,
  parseClientHandshake,
  parseDirectoryHandshake,
} from '../../src/wire/handshake.js';
import { vectors } from './fixtures.js';

const taker: ClientHandshake = {
  appName: 'joinmarket',
  directory: false,
  locationString: 'NOT-SERVING-ONION',
  protoVer: 5,
  features: {},
  nick: 'J56UEbZ4FqgPQFLq',
  network: 'mainnet',
};

const dn: DirectoryHandshake = {
  appName: 'joinmarket',
  directory: true,
  protoVerMin: 5,
  protoVerMax: 5,
  features: {},
  accepted: true,
  nick: 'J5Dq8pjVxJoXKjcU',
  network: 'mainnet',
  motd: DEFAULT_MOTD,
};

const mainnet = { network: 'mainnet' };

/** `line` (a JSON object) with `key` replaced, or removed when `value` is undefined. */
function withKey(line: string, key: string, value: unknown): string {
  const entries = Object.entries(JSON.parse(line) as Record<string, unknown>).filter(
    ([k]) => k !== key,
  );
  if (value !== undefined) entries.push([key, value]);
  return JSON.stringify(Object.fromEntries(entries));
}

function clientLineWith(key: string, value: unknown): string {
  return withKey(vectors.client_hs_line, key, value);
}

function dnLine(): string {
  return decodeEnvelope(vectors.dn_hs_env).line;
}

function dnLineWith(key: string, value: unknown): string {
  return withKey(dnLine(), key, value);
}

describe('constants (§2.3, §2.4)', () => {
  it('match the reference', () => {
    expect(JM_APP_NAME).toBe('joinmarket');
    expect(JM_PROTOCOL_VERSION).toBe(5);
    expect(DEFAULT_MOTD).toBe('Default MOTD, replace with information for the directory.');
  });
});

describe('encoding (§11.3)', () => {
  it('reproduces the taker 793 line', () => {
    expect(encodeClientHandshake(taker)).toBe(vectors.client_hs_line);
  });

  it('reproduces the maker 793 line', () => {
    expect(
      encodeClientHandshake({
        ...taker,
        locationString: `${'a'.repeat(56)}.onion:5222`,
        nick: 'J58Yv3z2XSPErNfe',
      }),
    ).toBe(vectors.maker_hs_line);
  });

  it('reproduces the DN 795 line', () => {
    expect(encodeDirectoryHandshake(dn)).toBe(dnLine());
  });

  it('sorts feature keys and keeps values as given', () => {
    const line = encodeClientHandshake({
      ...taker,
      features: { ping: true, nick_auth: true, peerlist_features: true, zz: false, '10': 1 },
    });
    expect(line).toContain(
      '"features": {"10": 1, "nick_auth": true, "peerlist_features": true, "ping": true, "zz": false}',
    );
    expect(
      encodeDirectoryHandshake({ ...dn, features: { ping: true, peerlist_features: true } }),
    ).toContain('"features": {"peerlist_features": true, "ping": true}, "accepted": true');
  });

  it('escapes non-ASCII motd as Python does', () => {
    expect(encodeDirectoryHandshake({ ...dn, motd: 'é\n' })).toContain('"motd": "\\u00e9\\n"');
  });

  it('throws TypeError for unserialisable feature values', () => {
    expect(() => encodeClientHandshake({ ...taker, features: { x: 0.5 } })).toThrow(TypeError);
    expect(() => encodeClientHandshake({ ...taker, features: { x: undefined } })).toThrow(
      TypeError,
    );
  });
});

describe('parseClientHandshake (§2.5 rule 2)', () => {
  it('parses the vectors back to the same object', () => {
    expect(parseClientHandshake(vectors.client_hs_line)).toEqual(taker);
    const maker = parseClientHandshake(vectors.maker_hs_line);
    expect(maker?.nick).toBe('J58Yv3z2XSPErNfe');
    expect(encodeClientHandshake(maker!)).toBe(vectors.maker_hs_line);
  });

  it('ignores extra keys', () => {
    expect(parseClientHandshake(clientLineWith('extra', [1]))).toEqual(taker);
  });

  it.each(['app-name', 'directory', 'location-string', 'proto-ver', 'features', 'nick', 'network'])(
    'ignores a handshake without %s',
    (key) => {
      expect(parseClientHandshake(clientLineWith(key, undefined))).toBeUndefined();
    },
  );

  it.each<[string, unknown]>([
    ['features', ''], // §11.8: features as a string is silently ignored
    ['features', []],
    ['features', null],
    ['features', 'peerlist_features,ping'],
    ['proto-ver', '5'],
    ['proto-ver', 5.5],
    ['proto-ver', null],
    ['proto-ver', true],
    ['nick', 5],
    ['nick', null],
    ['network', ['mainnet']],
    ['location-string', 5222],
    ['app-name', null],
  ])('ignores %s = %j', (key, value) => {
    expect(parseClientHandshake(clientLineWith(key, value))).toBeUndefined();
  });

  it.each(['', 'not json', '[]', 'null', '"x"', '5', '{"app-name": "joinmarket"'])(
    'ignores the non-object line %j',
    (line) => {
      expect(parseClientHandshake(line)).toBeUndefined();
    },
  );

  it('ignores deeply nested junk', () => {
    expect(
      parseClientHandshake(clientLineWith('x', JSON.parse('['.repeat(12) + ']'.repeat(12)))),
    ).toBeUndefined();
  });

  it.each<[unknown, boolean]>([
    [false, false],
    [0, false],
    ['', false],
    [null, false],
    [[], false],
    [{}, false],
    [true, true],
    [1, true],
    [-1, true],
    ['false', true],
    [[0], true],
    [{ a: false }, true],
  ])('reads directory %j with Python truthiness -> %s', (value, truthy) => {
    expect(parseClientHandshake(clientLineWith('directory', value))?.directory).toBe(truthy);
  });
});

describe('evaluateClientHandshake (§2.5 rule 3)', () => {
  it('accepts the taker and maker vectors and the regtest location', () => {
    expect(evaluateClientHandshake(taker, mainnet)).toEqual({ accepted: true });
    expect(evaluateClientHandshake(parseClientHandshake(vectors.maker_hs_line)!, mainnet)).toEqual({
      accepted: true,
    });
    // §11.8: 127.0.0.1:8081 is accepted by a reference DN.
    expect(
      evaluateClientHandshake({ ...taker, locationString: '127.0.0.1:8081' }, mainnet),
    ).toEqual({
      accepted: true,
    });
  });

  it('does not look at features', () => {
    expect(evaluateClientHandshake({ ...taker, features: { anything: [1, 2] } }, mainnet)).toEqual({
      accepted: true,
    });
  });

  it.each<[string, Partial<ClientHandshake>]>([
    ['wrong app-name', { appName: 'JoinMarket' }],
    ['empty app-name', { appName: '' }],
    ['proto-ver 4', { protoVer: 4 }],
    ['proto-ver 6', { protoVer: 6 }],
    ['directory true', { directory: true }],
    ['other network', { network: 'testnet' }],
    ['empty location (§11.8)', { locationString: '' }],
    ['location without port', { locationString: 'abc.onion' }],
    ['location with port 0', { locationString: 'abc.onion:0' }],
  ])('rejects %s with a reason', (_name, patch) => {
    const verdict = evaluateClientHandshake({ ...taker, ...patch }, mainnet);
    expect(verdict.accepted).toBe(false);
    if (!verdict.accepted) expect(verdict.reason.length).toBeGreaterThan(0);
  });

  it('keeps reasons short even for long peer strings', () => {
    const verdict = evaluateClientHandshake({ ...taker, network: 'n'.repeat(10_000) }, mainnet);
    expect(verdict.accepted).toBe(false);
    if (!verdict.accepted) expect(verdict.reason.length).toBeLessThan(150);
  });
});

describe('parseDirectoryHandshake (§2.4)', () => {
  it('parses the vector and the transcript form', () => {
    expect(parseDirectoryHandshake(dnLine())).toEqual(dn);
  });

  it('treats motd as optional', () => {
    expect(parseDirectoryHandshake(dnLineWith('motd', undefined))).toEqual({ ...dn, motd: '' });
    expect(parseDirectoryHandshake(dnLineWith('motd', 42))).toEqual({ ...dn, motd: '' });
  });

  it.each([
    'app-name',
    'directory',
    'proto-ver-min',
    'proto-ver-max',
    'features',
    'accepted',
    'nick',
    'network',
  ])('ignores a reply without %s', (key) => {
    expect(parseDirectoryHandshake(dnLineWith(key, undefined))).toBeUndefined();
  });

  it.each<[string, unknown]>([
    ['proto-ver-min', '5'],
    ['proto-ver-max', 5.5],
    ['features', ''],
    ['features', []],
    ['nick', 1],
    ['network', null],
    ['app-name', false],
  ])('ignores %s = %j', (key, value) => {
    expect(parseDirectoryHandshake(dnLineWith(key, value))).toBeUndefined();
  });

  it('reads accepted and directory with Python truthiness', () => {
    expect(parseDirectoryHandshake(dnLineWith('accepted', 0))?.accepted).toBe(false);
    expect(parseDirectoryHandshake(dnLineWith('accepted', 'yes'))?.accepted).toBe(true);
    expect(parseDirectoryHandshake(dnLineWith('directory', null))?.directory).toBe(false);
  });

  it('ignores non-object lines', () => {
    expect(parseDirectoryHandshake('[]')).toBeUndefined();
    expect(parseDirectoryHandshake('')).toBeUndefined();
  });
});

describe('evaluateDirectoryHandshake (§2.5, reference client receiving 795)', () => {
  it('accepts the vector', () => {
    expect(evaluateDirectoryHandshake(dn, mainnet)).toEqual({ ok: true });
    expect(evaluateDirectoryHandshake({ ...dn, protoVerMin: 3, protoVerMax: 7 }, mainnet)).toEqual({
      ok: true,
    });
  });

  it.each<[string, Partial<DirectoryHandshake>]>([
    ['accepted false', { accepted: false }],
    ['wrong app-name', { appName: 'joinmarket-ng' }],
    ['directory falsy', { directory: false }],
    ['min above 5', { protoVerMin: 6, protoVerMax: 6 }],
    ['max below 5', { protoVerMin: 4, protoVerMax: 4 }],
  ])('disconnects on %s', (_name, patch) => {
    const verdict = evaluateDirectoryHandshake({ ...dn, ...patch }, mainnet);
    expect(verdict).toMatchObject({ ok: false, disconnect: true });
  });

  it('does not disconnect on a network mismatch', () => {
    expect(evaluateDirectoryHandshake({ ...dn, network: 'testnet' }, mainnet)).toMatchObject({
      ok: false,
      disconnect: false,
    });
  });

  it('checks accepted before the network and quotes the motd', () => {
    const verdict = evaluateDirectoryHandshake(
      { ...dn, accepted: false, network: 'testnet', motd: 'Rejected: nick in use' },
      mainnet,
    );
    expect(verdict).toMatchObject({ ok: false, disconnect: true });
    if (!verdict.ok) expect(verdict.reason).toContain('Rejected: nick in use');
  });
});

describe('isValidNick (§5.5)', () => {
  it('accepts the vector nicks', () => {
    for (const nick of [
      vectors.k1.nick,
      vectors.keys.taker.nick,
      vectors.keys.maker.nick,
      vectors.keys.dir.nick,
      'J54wePPpkfqsdZA5',
      'J5abcOOOOOOOOOOO',
    ]) {
      expect(isValidNick(nick), nick).toBe(true);
    }
  });

  it.each([
    '',
    'J5Ckon1LuuapPSB', // 15 characters
    'J5Ckon1LuuapPSBMx', // 17 characters
    'K5Ckon1LuuapPSBM',
    'JxCkon1LuuapPSBM',
    'J5Ckon0LuuapPSBM', // 0 is not base58
    'J5CkonILuuapPSBM', // I is not base58
    'J5CkonlLuuapPSBM', // l is not base58
    'J5Ckon1LuuapPSB\n',
    'J5Ckon1LuuapPSBM\n',
  ])('rejects %j', (nick) => {
    expect(isValidNick(nick)).toBe(false);
  });
});

describe('featuresOf (§9.1)', () => {
  it('keeps only names whose value is exactly true', () => {
    expect(
      featuresOf({
        ping: true,
        peerlist_features: true,
        nick_auth: false,
        a: 1,
        b: 'true',
        c: null,
        d: {},
      }),
    ).toEqual(new Set(['ping', 'peerlist_features']));
    expect(featuresOf({})).toEqual(new Set());
  });
});
