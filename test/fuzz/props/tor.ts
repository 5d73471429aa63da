/**
 * Fuzz properties of src/tor: the control-port reply parser and its string syntax, and SOCKS5
 * replies as `socksDial` (src/tor/socks-dialer.ts) and `SocksDialer` (src/peer/socks-transport.ts)
 * read them from a loopback server that answers random or truncated bytes.
 */
import { Buffer } from 'node:buffer';
import net from 'node:net';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { OnionmcError, SocksError, TorControlError } from '../../../src/errors.js';
import { SocksDialer } from '../../../src/peer/socks-transport.js';
import {
  ControlReplyParser,
  parseKeyValues,
  quoteString,
  type ControlReply,
} from '../../../src/tor/control-reply.js';
import { socksDial } from '../../../src/tor/socks-dialer.js';
import { onionAddressFromPublicKey } from '../../../src/wire/location.js';
import {
  fuzzProperty,
  splitAt,
  unicodeString,
  utf16String,
  type FuzzProperty,
} from '../property.js';

// ---------------------------------------------------------------------------------------------
// Control-port replies

/** Runs a parser over `chunks`: the replies it returned and whether it threw a TorControlError. */
function runParser(chunks: readonly Uint8Array[]): {
  replies: ControlReply[];
  failed: boolean;
  partial: boolean;
} {
  const parser = new ControlReplyParser();
  const replies: ControlReply[] = [];
  for (const chunk of chunks) {
    try {
      replies.push(...parser.push(chunk));
    } catch (err) {
      if (!(err instanceof TorControlError) || err.code !== 'ERR_TOR_CONTROL') throw err;
      let again: unknown;
      try {
        parser.push(Uint8Array.of(0x0a));
      } catch (e) {
        again = e;
      }
      if (again !== err) throw new Error('parser did not stay failed with the same error');
      return { replies, failed: true, partial: false };
    }
  }
  return { replies, failed: false, partial: parser.hasPartial };
}

/** Control-protocol-ish bytes: statuses, separators, dots, line ends and random bytes. */
const controlPiece = fc.oneof(
  fc.constantFrom(
    '250-',
    '250 ',
    '250+',
    '650 ',
    '650-',
    '650+',
    '551 ',
    '25',
    '.',
    '..',
    '\r\n',
    '\n',
    '\r',
    'OK',
    ' ',
    'a=b',
    '"',
    '\\',
  ),
  fc.integer({ min: 100, max: 999 }).map(String),
  utf16String({ maxLength: 4 }),
  fc.uint8Array({ maxLength: 3 }).map((b) => Buffer.from(b).toString('latin1')),
);
const controlStream = fc
  .array(controlPiece, { maxLength: 60 })
  .map((pieces) => new Uint8Array(Buffer.from(pieces.join(''), 'utf8')));

/** One reply line to serialise: `kind` `-`, `+` (with a data block) or ` ` (the end line). */
interface LineSpec {
  text: string;
  data: string[] | undefined;
  crlf: boolean;
}
interface ReplySpec {
  status: number;
  lines: LineSpec[];
}

const lineText = unicodeString({ maxLength: 16 }).map((s) => s.replace(/[\r\n]/g, ''));
const lineSpec: fc.Arbitrary<LineSpec> = fc.record({
  text: lineText,
  data: fc.option(
    fc.array(fc.oneof(lineText, fc.constantFrom('.', '..', '.x', '')), { maxLength: 4 }),
    { nil: undefined },
  ),
  crlf: fc.boolean(),
});
const replySpec: fc.Arbitrary<ReplySpec> = fc.record({
  status: fc.oneof(fc.constantFrom(250, 251, 510, 551, 650), fc.integer({ min: 100, max: 699 })),
  lines: fc.array(lineSpec, { minLength: 1, maxLength: 4 }),
});

function serialiseLines(r: ReplySpec): string[] {
  return r.lines.map((l, i) => {
    const last = i === r.lines.length - 1;
    const end = (crlf: boolean): string => (crlf ? '\r\n' : '\n');
    if (l.data === undefined || last)
      return `${r.status}${last ? ' ' : '-'}${l.text}${end(l.crlf)}`;
    const block = l.data.map((d) => (d.startsWith('.') ? `.${d}` : d) + end(l.crlf)).join('');
    return `${r.status}+${l.text}${end(l.crlf)}${block}.${end(l.crlf)}`;
  });
}

function expectedReply(r: ReplySpec): ControlReply {
  return {
    status: r.status,
    isAsync: r.status >= 600 && r.status <= 699,
    lines: r.lines.map((l, i) =>
      l.data === undefined || i === r.lines.length - 1
        ? { status: r.status, text: l.text }
        : { status: r.status, text: l.text, data: l.data.join('\n') },
    ),
  };
}

const controlProperties: FuzzProperty[] = [
  fuzzProperty({
    name: 'control-reply: any bytes cut anywhere give the same replies as one chunk; only TorControlError',
    runs: 80_000,
    property: () =>
      fc.property(controlStream, fc.array(fc.nat(), { maxLength: 10 }), (bytes, cuts) => {
        const whole = runParser([bytes]);
        const cut = runParser(splitAt(bytes, cuts));
        if (whole.failed !== cut.failed) return false;
        if (!whole.failed) return isDeepStrictEqual(whole, cut);
        // Replies completed in the chunk that failed are not returned: whichever run returned
        // fewer must have returned a prefix of the other's.
        const [short, long] =
          whole.replies.length <= cut.replies.length ? [whole, cut] : [cut, whole];
        return isDeepStrictEqual(short.replies, long.replies.slice(0, short.replies.length));
      }),
  }),
  fuzzProperty({
    name: 'control-reply: serialised replies (dot-stuffed data, an event inside a reply) parse back exactly',
    runs: 60_000,
    property: () =>
      fc.property(
        fc.array(replySpec, { minLength: 1, maxLength: 4 }),
        replySpec.map((r) => ({ ...r, status: 650 })),
        fc.nat(),
        fc.array(fc.nat(), { maxLength: 10 }),
        (replies, event, at, cuts) => {
          const sync = replies.map((r) =>
            r.status >= 600 && r.status <= 699 ? { ...r, status: 250 } : r,
          );
          // The event's lines go between two lines of the first reply.
          const first = serialiseLines(sync[0]!);
          const k = at % first.length;
          const text = [
            ...first.slice(0, k),
            ...serialiseLines(event),
            ...first.slice(k),
            ...sync.slice(1).flatMap(serialiseLines),
          ].join('');
          const got = runParser(splitAt(new Uint8Array(Buffer.from(text, 'utf8')), cuts));
          const want = [expectedReply(event), ...sync.map(expectedReply)];
          return !got.failed && !got.partial && isDeepStrictEqual(got.replies, want);
        },
      ),
  }),
  fuzzProperty({
    name: 'control-reply: parseKeyValues of any text throws only TorControlError; quoteString round-trips',
    runs: 80_000,
    property: () =>
      fc.property(
        fc.string({
          unit: fc.constantFrom('A', '=', '"', '\\', ' ', '0', '7', '8', 'n', 'é', '\u0000'),
          maxLength: 30,
        }),
        fc.dictionary(
          fc.string({ unit: fc.constantFrom('A', 'b', '_', '9'), minLength: 1, maxLength: 5 }),
          fc
            .oneof(
              unicodeString({ maxLength: 12 }),
              fc.string({
                unit: fc.constantFrom('"', '\\', 'a', ' ', '=', 'é', '0'),
                maxLength: 12,
              }),
            )
            .map((s) => s.replace(/[\r\n\0]/g, '')),
          { maxKeys: 3 },
        ),
        (text, pairs) => {
          try {
            parseKeyValues(text);
          } catch (err) {
            if (!(err instanceof TorControlError)) throw err;
          }
          const line = [
            'WORD',
            ...Object.entries(pairs).map(([k, v]) => `${k}=${quoteString(v)}`),
          ].join(' ');
          return isDeepStrictEqual(parseKeyValues(line), new Map(Object.entries(pairs)));
        },
      ),
  }),
];

// ---------------------------------------------------------------------------------------------
// SOCKS5 replies from a loopback server

/** What the fake proxy does on one connection. */
interface ProxyScript {
  /** Write the answer on connect, before the client's greeting arrives. */
  early: boolean;
  /** The answer, written in these pieces, one event-loop turn apart. */
  pieces: Uint8Array[];
  /** Then: close politely, reset, or keep the connection open until the client gives up. */
  ending: 'end' | 'destroy' | 'hang';
  /**
   * Instead of `pieces`, as a real proxy: the pieces of step i are written once the client's i-th
   * request (greeting, userpass, CONNECT) has arrived; `ending` follows the last step.
   */
  steps?: Uint8Array[][];
}

/** A plausible SOCKS5 answer: method choice, optional userpass status, a reply; possibly cut short. */
const socksAnswer = fc
  .record({
    method: fc.oneof(fc.constantFrom(0x00, 0x02, 0xff), fc.integer({ min: 0, max: 255 })),
    authStatus: fc.oneof(fc.constant(0x00), fc.integer({ min: 0, max: 255 })),
    rep: fc.oneof(fc.constantFrom(0x00, 0x01, 0x05, 0xf2), fc.integer({ min: 0, max: 255 })),
    atyp: fc.oneof(fc.constantFrom(0x01, 0x03, 0x04), fc.integer({ min: 0, max: 255 })),
    addr: fc.uint8Array({ maxLength: 20 }),
    version: fc.oneof(fc.constant(0x05), fc.integer({ min: 0, max: 255 })),
    truncate: fc.option(fc.nat(40), { nil: undefined }),
    noise: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 2 }),
  })
  .map((a) => {
    const bytes = [0x05, a.method];
    if (a.method === 0x02) bytes.push(0x01, a.authStatus);
    bytes.push(a.version, a.rep, 0x00, a.atyp);
    if (a.atyp === 0x03) bytes.push(a.addr.length);
    bytes.push(...a.addr, 0x1f, 0x90);
    for (const [at, b] of a.noise) bytes[at % bytes.length] = b;
    return Uint8Array.from(a.truncate === undefined ? bytes : bytes.slice(0, a.truncate));
  });

/** A complete success answer (method, userpass status, reply 0 with an IPv4 address). */
const socksSuccess = fc
  .tuple(fc.constantFrom(0x00, 0x02), fc.uint8Array({ minLength: 4, maxLength: 4 }))
  .map(
    ([method, addr]) =>
      new Uint8Array([
        0x05,
        method,
        ...(method === 0x02 ? [0x01, 0x00] : []),
        0x05,
        0x00,
        0x00,
        0x01,
        ...addr,
        0x1f,
        0x90,
      ]),
  );

const proxyScript: fc.Arbitrary<ProxyScript> = fc
  .record({
    early: fc.boolean(),
    answer: fc.oneof(socksAnswer, socksSuccess, fc.uint8Array({ maxLength: 40 })),
    cuts: fc.array(fc.nat(), { maxLength: 4 }),
    ending: fc.oneof(
      { weight: 10, arbitrary: fc.constantFrom<'end' | 'destroy'>('end', 'destroy') },
      { weight: 1, arbitrary: fc.constant<'hang'>('hang') },
    ),
  })
  .map(({ early, answer, cuts, ending }) => ({ early, pieces: splitAt(answer, cuts), ending }));

/** Deadline of every fuzzed dial; a hanging proxy costs this much. */
const DIAL_TIMEOUT_MS = 150;
/** A dial not settled this long after its deadline is a hang. */
const HANG_SLACK_MS = 3_000;

/** A loopback proxy playing the current script on each connection, and errors nobody caught. */
interface FakeProxy {
  port: number;
  script: ProxyScript | undefined;
  uncaught: unknown[];
}
let proxy: FakeProxy | undefined;

async function withFakeProxy<T>(body: () => Promise<T>): Promise<T> {
  const state: FakeProxy = { port: 0, script: undefined, uncaught: [] };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const script = state.script;
    if (script === undefined) {
      socket.destroy();
      return;
    }
    const play = async (pieces: Uint8Array[], last: boolean): Promise<void> => {
      for (const piece of pieces) {
        if (socket.destroyed) return;
        socket.write(piece);
        await nextTurn();
      }
      if (!last) return;
      if (script.ending === 'end') socket.end();
      else if (script.ending === 'destroy') socket.destroy();
    };
    const steps = script.steps;
    if (steps !== undefined) {
      let step = 0;
      socket.on('data', () => {
        const pieces = steps[step++];
        if (pieces !== undefined) void play(pieces, step === steps.length);
      });
    } else if (script.early) void play(script.pieces, true);
    else socket.once('data', () => void play(script.pieces, true));
  });
  const onUncaught = (err: unknown): void => {
    state.uncaught.push(err);
  };
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as net.AddressInfo).port;
  proxy = state;
  try {
    return await body();
  } finally {
    proxy = undefined;
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) =>
      server.close(() => {
        resolve();
      }),
    );
  }
}

const ONION = onionAddressFromPublicKey(new Uint8Array(32).fill(7));

/** Dials through the fake proxy; the outcome, or 'hang' when it did not settle in time. */
async function dialOnce(
  script: ProxyScript,
  via: 'socksDial' | 'socksDialIsolated' | 'SocksDialer',
): Promise<
  { kind: 'socket'; socket: net.Socket } | { kind: 'error'; err: unknown } | { kind: 'hang' }
> {
  const state = proxy!;
  state.script = script;
  const endpoint = { kind: 'tcp' as const, host: '127.0.0.1', port: state.port };
  const dial =
    via === 'SocksDialer'
      ? new SocksDialer({
          proxy: endpoint,
          timeoutMs: DIAL_TIMEOUT_MS,
          isolationPassword: 'p',
        }).dial({ host: ONION, port: 5222 }, 'peer')
      : socksDial({
          proxy: endpoint,
          host: ONION,
          port: 5222,
          timeoutMs: DIAL_TIMEOUT_MS,
          ...(via === 'socksDialIsolated' ? { isolation: { username: 'u', password: 'p' } } : {}),
        });
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<{ kind: 'hang' }>((resolve) => {
    timer = setTimeout(() => {
      resolve({ kind: 'hang' });
    }, DIAL_TIMEOUT_MS + HANG_SLACK_MS);
  });
  try {
    return await Promise.race([
      dial.then(
        (socket) => ({ kind: 'socket' as const, socket }),
        (err: unknown) => ({ kind: 'error' as const, err }),
      ),
      hang,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The REP byte of a SOCKS5 answer (`05 METHOD [01 STATUS] VER REP ...`): after the userpass status
 * when the proxy chose method 02. Undefined when the answer is not a SOCKS5 one, the userpass
 * status is not 0 or the answer stops short of REP.
 */
function replyCode(answer: Uint8Array): number | undefined {
  if (answer[0] !== 0x05) return undefined;
  const method = answer[1];
  if (method === 0x02 && answer[3] !== 0x00) return undefined;
  return answer[method === 0x02 ? 5 : 3];
}

/**
 * A proxy that answers each request in turn (as tor does): method choice (02 only when the dial
 * offers it: with isolation), userpass status, then the success reply followed by bytes from the
 * onion service, written in pieces cut anywhere (in the reply's chunk or later).
 */
function successThenData(userpassOffered: boolean) {
  return fc
    .record({
      userpass: userpassOffered ? fc.boolean() : fc.constant(false),
      addr: fc.uint8Array({ minLength: 4, maxLength: 4 }),
      trailing: fc.uint8Array({ minLength: 1, maxLength: 300 }),
      cuts: fc.array(fc.nat(), { maxLength: 4 }),
    })
    .map(({ userpass, addr, trailing, cuts }) => {
      const reply = Uint8Array.from([0x05, 0x00, 0x00, 0x01, ...addr, 0x1f, 0x90]);
      const last = splitAt(new Uint8Array(Buffer.concat([reply, trailing])), cuts);
      const steps = userpass
        ? [[Uint8Array.of(0x05, 0x02)], [Uint8Array.of(0x01, 0x00)], last]
        : [[Uint8Array.of(0x05, 0x00)], last];
      const script: ProxyScript = { early: false, pieces: [], ending: 'end', steps };
      return { script, trailing };
    });
}

/** Everything `socket` reads until the proxy's end, or what it had after `ms`. */
function readAll(socket: net.Socket, ms: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks));
    };
    const timer = setTimeout(done, ms);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', done);
    socket.on('close', done);
    socket.on('error', () => undefined);
  });
}

const socksProperties: FuzzProperty[] = [
  fuzzProperty({
    name: 'socks: a proxy answering random or truncated bytes gives a SocksError or a socket, never a hang or another error',
    runs: 3_000,
    around: withFakeProxy,
    property: () =>
      fc.asyncProperty(
        proxyScript,
        fc.constantFrom<'socksDial' | 'socksDialIsolated' | 'SocksDialer'>(
          'socksDial',
          'socksDialIsolated',
          'SocksDialer',
        ),
        async (script, via) => {
          const outcome = await dialOnce(script, via);
          const uncaught = proxy!.uncaught.splice(0);
          if (uncaught.length > 0) {
            throw new Error(`uncaught during the dial: ${String(uncaught[0])}`, {
              cause: uncaught[0],
            });
          }
          if (outcome.kind === 'hang') throw new Error('the dial neither resolved nor rejected');
          if (outcome.kind === 'socket') {
            outcome.socket.destroy();
            // Only a SOCKS5 success may connect: version 5 first, and reply code 0.
            return replyCode(Buffer.concat(script.pieces)) === 0x00;
          }
          const { err } = outcome;
          if (!(err instanceof SocksError) || !(err instanceof OnionmcError)) {
            throw new Error(`dial rejected with ${String(err)}`, { cause: err });
          }
          return err.code.startsWith('ERR_SOCKS_');
        },
      ),
  }),
  fuzzProperty({
    name: 'socks: bytes the proxy sends after a success reply, in the same chunk or later, reach the caller unchanged',
    runs: 1_000,
    around: withFakeProxy,
    property: () =>
      fc.asyncProperty(
        fc
          .constantFrom<'socksDial' | 'socksDialIsolated' | 'SocksDialer'>(
            'socksDial',
            'socksDialIsolated',
            'SocksDialer',
          )
          .chain((via) => successThenData(via !== 'socksDial').map((s) => ({ ...s, via }))),
        async ({ script, trailing, via }) => {
          const outcome = await dialOnce(script, via);
          const uncaught = proxy!.uncaught.splice(0);
          if (uncaught.length > 0) {
            throw new Error(`uncaught during the dial: ${String(uncaught[0])}`, {
              cause: uncaught[0],
            });
          }
          if (outcome.kind !== 'socket') {
            const why = outcome.kind === 'error' ? String(outcome.err) : 'a hang';
            throw new Error(`a success reply gave ${why}`);
          }
          const got = await readAll(outcome.socket, HANG_SLACK_MS);
          if (!got.equals(trailing)) {
            throw new Error(`read ${got.length} bytes after the reply, sent ${trailing.length}`);
          }
          return true;
        },
      ),
  }),
];

/** Every property of src/tor and the SOCKS transport. */
export const torProperties: readonly FuzzProperty[] = [...controlProperties, ...socksProperties];
