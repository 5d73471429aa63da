/**
 * Fuzz properties of src/config: parseConfig on random INI text (configparser's line grammar,
 * interpolation, every key with random values) and the API endpoint syntax.
 */
import fc from 'fast-check';
import { ConfigError } from '../../../src/errors.js';
import { KNOWN_KEYS, parseApiEndpointValue, parseConfig } from '../../../src/config/config.js';
import { onionAddressFromPublicKey } from '../../../src/wire/location.js';
import { fuzzProperty, onlyTyped, utf16String, type FuzzProperty } from '../property.js';

// Every key the loader knows (new keys are fuzzed without a change here), plus keys that are not
// ours or that probe prototype pollution and case folding.
const KEYS = [...KNOWN_KEYS, 'network', '__proto__', 'constructor', 'Type'];

const ONION = onionAddressFromPublicKey(new Uint8Array(32).fill(9));

const value = fc.oneof(
  fc.constantFrom(
    'onion',
    'ONION',
    `${ONION}:5222`,
    `${ONION}:5222, 127.0.0.1:8081,`,
    '127.0.0.1:8081',
    '1,1',
    '0,0',
    '-1, +2',
    'unix:/tmp/x.sock',
    'unix:',
    '[::1]:9999',
    'localhost:0',
    'true',
    'off',
    'null',
    '0',
    '65536',
    '1.5',
    '86400.0001',
    '99999999999999999999',
    'prefer_verified',
    'mainnet',
    'regtest',
    '""',
    '%%',
    '%(type)s',
    '%(missing)s',
    '%(api)s%(api)s',
    '%',
    '%(',
    'a # b ; c',
    '"quoted" = x',
  ),
  utf16String({ maxLength: 20 }),
  fc.string({ unit: fc.constantFrom('%', '(', ')', 's', 'a', ':', ',', '\\', '"'), maxLength: 12 }),
);

const sectionName = fc.oneof(
  fc.constantFrom(
    'BLOCKCHAIN',
    'MESSAGING:onion',
    'MESSAGING:onion2',
    'MESSAGING:irc',
    'DEFAULT',
    'a.b',
    '',
  ),
  utf16String({ maxLength: 8 }),
);

const configLine = fc.oneof(
  { weight: 2, arbitrary: sectionName.map((n) => `[${n}]`) },
  {
    weight: 6,
    arbitrary: fc
      .tuple(
        fc.oneof(fc.constantFrom(...KEYS), utf16String({ maxLength: 6 })),
        fc.constantFrom(' = ', '=', ': ', ' :', ' '),
        value,
      )
      .map(([k, sep, v]) => `${k}${sep}${v}`),
  },
  { weight: 1, arbitrary: value.map((v) => `   ${v}`) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '# comment',
      '; comment',
      '',
      '  ',
      '\t# x',
      '[',
      ']',
      '=',
      '\uFEFF',
    ),
  },
  { weight: 1, arbitrary: utf16String({ maxLength: 20 }) },
);

/** A base that parses (one onion section in testing mode) with random lines mixed in. */
const configText = fc
  .tuple(
    fc.array(configLine, { maxLength: 25 }),
    fc.boolean(),
    fc.constantFrom('\n', '\r\n', '\r'),
    fc.nat(),
  )
  .map(([lines, withBase, eol, at]) => {
    const base = withBase
      ? [
          '[BLOCKCHAIN]',
          'network = testnet',
          '[MESSAGING:onion]',
          'type = onion',
          'directory_nodes = 127.0.0.1:5222',
          'regtest_count = 1,1',
        ]
      : [];
    const i = at % (base.length + 1);
    return [...base.slice(0, i), ...lines, ...base.slice(i)].join(eol);
  });

/** Every property of src/config. */
export const configProperties: readonly FuzzProperty[] = [
  fuzzProperty({
    name: 'config: parseConfig of random INI text returns a frozen config or throws ConfigError',
    runs: 60_000,
    property: () =>
      fc.property(configText, (text) => {
        const r = onlyTyped('parseConfig', ['ERR_CONFIG'], () => parseConfig(text, 'fuzz.cfg'));
        if (!r.ok) {
          return r.error instanceof ConfigError && r.error.problems.length > 0;
        }
        return Object.isFrozen(r.value) && r.value.directoryNodes.length > 0;
      }),
  }),
  fuzzProperty({
    name: 'config: parseApiEndpointValue of any text returns an endpoint or a sentence',
    runs: 100_000,
    property: () =>
      fc.property(fc.oneof(value, utf16String({ maxLength: 30 })), (text) => {
        const r = parseApiEndpointValue(text);
        return typeof r === 'string' || r.kind === 'unix' || (r.port >= 1 && r.port <= 65535);
      }),
  }),
];
