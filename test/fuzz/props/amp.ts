/**
 * Fuzz properties of src/amp: the AMP box decoder and the argument readers, which read what a
 * jmclient sends to `onionmc joinmarketd` (docs/joinmarketd.md). Random bytes, and encoded boxes
 * with one byte changed, cut anywhere: the decoder gives the same boxes as from one chunk, or an
 * AmpError; every argument type reads any value or throws an AmpError.
 */
import { Buffer } from 'node:buffer';
import { Duplex } from 'node:stream';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import pino from 'pino';
import { readArgument, type AmpArgumentType } from '../../../src/amp/arguments.js';
import {
  AMP_MAX_VALUE_BYTES,
  AmpBoxDecoder,
  encodeBox,
  type AmpBox,
} from '../../../src/amp/box.js';
import { AmpError } from '../../../src/amp/errors.js';
import { JoinmarketdSession } from '../../../src/joinmarketd/service.js';
import { FakeCore, FakeNetwork } from '../../joinmarketd/fake-core.js';
import { fuzzProperty, splitAt, UnexpectedThrow, type FuzzProperty } from '../property.js';

/** Small caps, so that random input reaches them. */
const CAPS = { maxBoxBytes: 2_000, maxBoxKeys: 16 };

/** Boxes as Twisted writes them: 1-255 byte keys, values up to 300 bytes. */
const box = fc
  .dictionary(
    fc.string({ minLength: 1, maxLength: 12 }),
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
    { maxKeys: 6 },
  )
  .map((record) => new Map(Object.entries(record)));

/** A stream: random bytes, or encoded boxes with at most one byte changed. */
const stream = fc.oneof(
  fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b)),
  fc
    .tuple(fc.array(box, { maxLength: 4 }), fc.option(fc.tuple(fc.nat(), fc.nat(255))))
    .map(([boxes, change]) => {
      const bytes = Buffer.concat(boxes.map((b) => encodeBox(b)));
      if (change !== null && bytes.length > 0) bytes[change[0] % bytes.length] = change[1];
      return bytes;
    }),
);

/** Reads `chunks` in order: the boxes before any fault, and the fault (anything thrown is rethrown). */
function decode(chunks: readonly Uint8Array[]): { boxes: AmpBox[]; error: AmpError | undefined } {
  const decoder = new AmpBoxDecoder(CAPS);
  const boxes: AmpBox[] = [];
  try {
    for (const chunk of chunks) {
      const read = decoder.read(chunk);
      boxes.push(...read.boxes);
      if (read.error !== undefined) return { boxes, error: read.error };
    }
  } catch (err) {
    throw new UnexpectedThrow('AmpBoxDecoder.read', err);
  }
  return { boxes, error: undefined };
}

const ARGUMENT_TYPES: readonly AmpArgumentType[] = [
  'Integer',
  'String',
  'Unicode',
  'Boolean',
  'JsonEncodable',
  'BigUnicode',
  'ListOfUnicode',
];

/** Values an argument may hold: random bytes, and texts near what each type accepts. */
const argumentValue = fc.oneof(
  fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b)),
  fc
    .constantFrom(
      '0',
      '-1',
      '+1',
      '1e3',
      '9007199254740993',
      'True',
      'False',
      'true',
      '{"a":[1,2]}',
      '[',
      '\u0000\u0003abc',
      '\u0000\u0005ab',
    )
    .map((s) => Buffer.from(s, 'utf8')),
);

// ---------------------------------------------------------------------------------------------
// A jmclient session: JsonEncodable arguments through the real responders

/**
 * JSON text nested `levels` deep (arrays or objects), cut to fit one AMP value (65,535 bytes):
 * at most 32,500 levels of arrays, 10,800 of objects.
 */
function deepJsonText(levels: number, objects: boolean, leaf: string): string {
  const open = objects ? '{"a": ' : '[';
  const close = objects ? '}' : ']';
  // Room for the offer or section around it (ONION_SECTION_JSON is the longest, 400 bytes).
  const room = AMP_MAX_VALUE_BYTES - 512 - leaf.length;
  const fit = Math.floor(room / (open.length + close.length));
  const n = Math.min(levels, fit);
  return open.repeat(n) + leaf + close.repeat(n);
}

/** A JsonEncodable argument's text: any JSON value, or balanced nesting of 10 to 40,000 levels. */
const jsonArgumentText = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        fc.integer({ min: 10, max: 40_000 }),
        fc.boolean(),
        fc.constantFrom('1', '"x"', 'null', '1.5e300', '[]', '{}'),
      )
      .map(([levels, objects, leaf]) => deepJsonText(levels, objects, leaf)),
  },
);

/** The [MESSAGING:onion] section a jmclient sends in chan_configs (JMInit). */
const ONION_SECTION_JSON =
  '{"type": "onion", "directory_nodes": "127.0.0.1:5322", "socks5_host": "localhost", ' +
  '"socks5_port": 9050, "tor_control_host": "localhost", "tor_control_port": 9051, ' +
  '"onion_serving_host": "127.0.0.1", "onion_serving_port": 5323, "hidden_service_dir": "", ' +
  '"serving": true, "passive": false, "btcnet": "testnet", "section-name": "MESSAGING:onion"';
const OFFER_JSON =
  '"oid": 0, "ordertype": "sw0reloffer", "minsize": 100000, "maxsize": 99972700, "txfee": 0';

/** Where a fuzzed JSON text `j` goes: one JsonEncodable argument of one command, in context. */
const sessionScript = fc
  .record({
    role: fc.constantFrom('MAKER', 'TAKER'),
    chan: fc.constantFrom<(j: string) => string>(
      (j) => `[${ONION_SECTION_JSON}, "extra": ${j}}]`,
      (j) => `[${ONION_SECTION_JSON}}, ${j}]`,
      () => `[${ONION_SECTION_JSON}}]`,
    ),
    // Not shrunk: each try replays a session over up to 6 values of 64 KB (a failure took 50 s to
    // shrink); the counterexample is printed whole instead.
    values: fc.noShrink(fc.array(jsonArgumentText, { minLength: 6, maxLength: 6 })),
  })
  .map(({ role, chan, values }) => {
    const [a = '1', b = '1', c = '1', d = '1', e = '1', f = '1'] = values;
    return {
      role,
      chanConfigs: chan(a),
      initdata: `[{${OFFER_JSON}, "cjfee": ${b}}]`,
      toAnnounce: `[{${OFFER_JSON}, "cjfee": ${c}}]`,
      toCancel: `[${d}]`,
      filledOffers: `{"J5maker": ${e}}`,
      utxolist: f,
    };
  });

function duplexPair(): [Duplex, Duplex] {
  const ends: Duplex[] = [];
  const end = (other: number): Duplex =>
    new Duplex({
      read() {
        // Pushed by the other end.
      },
      write(chunk: Buffer, _encoding, callback) {
        ends[other]!.push(chunk);
        callback();
      },
      final(callback) {
        ends[other]!.push(null);
        callback();
      },
    });
  ends.push(end(1), end(0));
  return [ends[0]!, ends[1]!];
}

/** A request box of `command` with tag `ask`: each value raw bytes (JSON texts) or text. */
function requestBox(command: string, ask: number, args: Record<string, string>): Buffer {
  const box: AmpBox = new Map([
    ['_command', Buffer.from(command)],
    ['_ask', Buffer.from(ask.toString(16))],
  ]);
  for (const [k, v] of Object.entries(args)) box.set(k, Buffer.from(v, 'utf8'));
  return encodeBox(box);
}

/**
 * Plays a jmclient's commands through a JoinmarketdSession (fake message channel), sending the
 * JsonEncodable texts as they are; resolves with the answer boxes and the error log lines.
 */
async function playSession(
  s: ReturnType<typeof sessionScript.generate>['value'],
): Promise<{ answers: AmpBox[]; errors: string[]; asked: number }> {
  const [daemonEnd, clientEnd] = duplexPair();
  const errors: string[] = [];
  const logger = pino(
    { level: 'error' },
    {
      write: (line: string) => {
        errors.push(line);
      },
    },
  );
  const network = new FakeNetwork([], new Map());
  const session = new JoinmarketdSession(daemonEnd, {
    logger,
    createCore: (context) => new FakeCore(network, context),
  });
  const requests = [
    requestBox('JMInit', 1, {
      bcsource: 'regtest',
      network: 'testnet',
      chan_configs: s.chanConfigs,
      minmakers: '1',
      maker_timeout_sec: '60',
      dust_threshold: '27300',
      blacklist_location: '/nonexistent/onionmc-fuzz-blacklist',
    }),
    requestBox('JMStartMC', 2, { nick: 'J5fuzzfuzzfuzzfu' }),
    requestBox('JMSetup', 3, { role: s.role, initdata: s.initdata, use_fidelity_bond: 'False' }),
    requestBox('JMAnnounceOffers', 4, {
      to_announce: s.toAnnounce,
      to_cancel: s.toCancel,
      offerlist: s.initdata,
    }),
    requestBox('JMFill', 5, {
      amount: '100000',
      commitment: 'c',
      revelation: 'r',
      filled_offers: s.filledOffers,
    }),
    requestBox('JMIOAuth', 6, {
      nick: 'J5maker',
      utxolist: s.utxolist,
      pubkey: 'p',
      cjaddr: 'a',
      changeaddr: 'c',
      pubkeysig: 's',
    }),
  ];
  const asked = requests.length;
  const decoder = new AmpBoxDecoder();
  const answers: AmpBox[] = [];
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`${answers.length} of ${asked} answers after 5 s`));
    }, 5_000);
    clientEnd.on('data', (chunk: Buffer) => {
      const { boxes, error } = decoder.read(chunk);
      if (error !== undefined) {
        clearTimeout(timer);
        reject(error);
        return;
      }
      for (const box of boxes) if (!box.has('_command')) answers.push(box);
      if (answers.length >= asked) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  for (const r of requests) clientEnd.write(r);
  try {
    await done;
  } finally {
    session.amp.destroy();
    clientEnd.destroy();
  }
  return { answers, errors, asked };
}

/** Every property of src/amp. */
export const ampProperties: readonly FuzzProperty[] = [
  fuzzProperty({
    name: 'amp: the box decoder over any bytes cut anywhere gives the boxes and the AmpError of one chunk',
    runs: 100_000,
    property: () =>
      fc.property(stream, fc.array(fc.nat(), { maxLength: 8 }), (bytes, cuts) => {
        const whole = decode([bytes]);
        const cut = decode(splitAt(bytes, cuts));
        // The same boxes up to the failure, and a failure exactly when one chunk fails.
        return (
          isDeepStrictEqual(cut.boxes, whole.boxes) &&
          (cut.error === undefined) === (whole.error === undefined) &&
          cut.error?.ampCode === whole.error?.ampCode
        );
      }),
  }),
  fuzzProperty({
    name: 'amp: readArgument of any value, for every argument type, returns a value or throws an AmpError',
    runs: 100_000,
    property: () =>
      fc.property(
        fc.constantFrom(...ARGUMENT_TYPES),
        fc.array(argumentValue, { maxLength: 3 }),
        (type, values) => {
          // `a` and BigUnicode's `a.0`, `a.1`: all the keys an argument named `a` reads.
          const argumentBox: AmpBox = new Map(
            values.map((v, i) => [i === 0 ? 'a' : `a.${String(i - 1)}`, v]),
          );
          try {
            readArgument(argumentBox, 'a', type);
          } catch (err) {
            if (!(err instanceof AmpError)) throw new UnexpectedThrow(`readArgument ${type}`, err);
          }
          return true;
        },
      ),
  }),
  fuzzProperty({
    // Fails until src/amp/arguments.ts pyJsonDumpsValue stops recursing: deep nesting gives a
    // RangeError (call stack) in the JMInit responder (pyJsonDumpsValue of chan_configs), which
    // the session answers as 'Unknown Error'. Fixed elsewhere; this property checks the fix.
    name: 'amp: JsonEncodable arguments (any JSON, nesting of 10-40,000 levels) through a jmclient session: every command answered, responders throw only AmpError/AmpCommandError',
    runs: 300,
    property: () =>
      fc.asyncProperty(sessionScript, async (script) => {
        const { answers, errors } = await playSession(script);
        const failed = errors.find((line) => line.includes('AMP responder failed'));
        if (failed !== undefined) {
          throw new Error(`a responder threw something untyped: ${failed.slice(0, 400)}`);
        }
        const unknown = answers.find(
          (b) => b.get('_error_description')?.toString() === 'Unknown Error',
        );
        if (unknown !== undefined) throw new Error('a command was answered "Unknown Error"');
        return true;
      }),
  }),
];
