/**
 * Fuzz properties of the consumers of tor's control replies: the bootstrap phase parser
 * (src/daemon/tor-bootstrap.ts), the ADD_ONION answer (src/tor/onion-service.ts `addOnion`), and
 * the PROTOCOLINFO and AUTHCHALLENGE answers read by `TorControlClient.authenticate`
 * (src/tor/control-client.ts) from a loopback fake tor answering random reply lines.
 */
import { Buffer } from 'node:buffer';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import fc from 'fast-check';
import { parseBootstrapPhase } from '../../../src/daemon/tor-bootstrap.js';
import { TorControlError } from '../../../src/errors.js';
import {
  SAFECOOKIE_SERVER_KEY,
  TorControlClient,
  type AuthMethod,
} from '../../../src/tor/control-client.js';
import type { ControlReply } from '../../../src/tor/control-reply.js';
import { quoteString } from '../../../src/tor/control-reply.js';
import { addOnion } from '../../../src/tor/onion-service.js';
import { fuzzProperty, onlyTyped, utf16String, type FuzzProperty } from '../property.js';

// ---------------------------------------------------------------------------------------------
// Reply lines

/** Values as tor writes them and as it never would: quoted with escapes, bare, long, cut. */
const replyValue = fc.oneof(
  fc.string({ unit: fc.constantFrom('a', 'Z', '2', '7', '-', '_', '/', '.', ','), maxLength: 60 }),
  utf16String({ maxLength: 12 }).map((s) => quoteString(s.replace(/[\r\n\0]/g, ''))),
  fc.string({ unit: fc.constantFrom('"', '\\', 'n', 'x', '0', '7', ' ', '='), maxLength: 16 }),
  fc.nat(200).map(String),
  fc.constant('a'.repeat(5_000)),
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map(bytesToHex),
);
const replyKey = fc.oneof(
  fc.constantFrom(
    'PROGRESS',
    'SUMMARY',
    'TAG',
    'METHODS',
    'COOKIEFILE',
    'Tor',
    'ServiceID',
    'PrivateKey',
    'SERVERHASH',
    'SERVERNONCE',
  ),
  fc.string({ unit: fc.constantFrom('A', 'b', '_', '9', '='), minLength: 1, maxLength: 6 }),
);
/** `WORD key=value key="value" …`, with stray spaces, quotes and bare words. */
const replyLine = fc
  .tuple(
    fc.constantFrom('', 'NOTICE BOOTSTRAP ', 'AUTH ', 'VERSION ', 'AUTHCHALLENGE ', 'WARN '),
    fc.array(
      fc.oneof(
        { weight: 4, arbitrary: fc.tuple(replyKey, replyValue).map(([k, v]) => `${k}=${v}`) },
        { weight: 1, arbitrary: utf16String({ maxLength: 8 }) },
        { weight: 1, arbitrary: fc.constantFrom('', '"', '=', 'OK', '\\') },
      ),
      { maxLength: 6 },
    ),
    fc.constantFrom(' ', '  ', '\t'),
  )
  .map(([head, parts, sep]) => (head + parts.join(sep)).replace(/[\r\n]/g, ''));

const bootstrapProperties: FuzzProperty[] = [
  fuzzProperty({
    name: 'tor-bootstrap: parseBootstrapPhase of any reply line never throws; PROGRESS is 0-100 and a formatted phase reads back',
    runs: 60_000,
    property: () =>
      fc.property(
        replyLine,
        fc.nat(999),
        utf16String({ maxLength: 20 }),
        fc.constantFrom('starting', 'conn_done', 'done'),
        (line, progress, summary, tag) => {
          const r = onlyTyped('parseBootstrapPhase', [], () => parseBootstrapPhase(line));
          if (!r.ok) return false;
          if (r.value !== undefined) {
            const p = r.value.progress;
            if (!Number.isInteger(p) || p < 0 || p > 100) return false;
          }
          const quoted = quoteString(summary.replace(/[\r\n\0]/g, ''));
          const text = `NOTICE BOOTSTRAP PROGRESS=${progress} TAG=${tag} SUMMARY=${quoted}`;
          const phase = parseBootstrapPhase(text);
          // The summary is kept as written between the quotes (escapes not undone).
          return (
            phase !== undefined &&
            phase.progress === Math.min(100, progress) &&
            phase.summary === quoted.slice(1, -1)
          );
        },
      ),
  }),
];

// ---------------------------------------------------------------------------------------------
// ADD_ONION answers

const SERVICE_ID = /^[a-z2-7]{56}$/;
const serviceId = fc.string({
  unit: fc.constantFrom('a', 'q', 'z', '2', '7'),
  minLength: 56,
  maxLength: 56,
});
const addOnionLine = fc.oneof(
  serviceId.map((id) => `ServiceID=${id}`),
  fc.base64String({ maxLength: 88 }).map((k) => `PrivateKey=ED25519-V3:${k}`),
  fc.base64String({ maxLength: 20 }).map((k) => `PrivateKey=${k}`),
  replyValue.map((v) => `ServiceID=${v}`),
  fc.constantFrom('OK', 'ServiceID=', 'PrivateKey=', 'ClientAuthV3=x'),
  replyLine,
);

/** A reply to hand a stub client: its lines, all with `status`. */
function replyOf(status: number, texts: readonly string[]): ControlReply {
  return {
    status,
    isAsync: false,
    lines: texts.map((text) => ({ status, text })),
  };
}

/** A stand-in for a connected client: `command` answers `reply`. */
function stubClient(reply: ControlReply): TorControlClient {
  return {
    command: () => Promise.resolve(reply),
  } as unknown as TorControlClient;
}

const addOnionProperties: FuzzProperty[] = [
  fuzzProperty({
    name: 'onion-service: addOnion given any ADD_ONION answer lines resolves with a valid ServiceID or throws ERR_TOR_CONTROL',
    runs: 30_000,
    property: () =>
      fc.asyncProperty(
        fc.array(addOnionLine, { maxLength: 5 }),
        fc.option(serviceId, { nil: undefined }),
        fc.option(fc.base64String({ minLength: 4, maxLength: 88 }), { nil: undefined }),
        async (lines, id, key) => {
          const options = {
            key: { kind: 'new' as const },
            virtualPort: 5222,
            target: { host: '127.0.0.1', port: 8080 },
            discardPk: false,
          };
          try {
            const got = await addOnion(stubClient(replyOf(250, [...lines, 'OK'])), options);
            if (!SERVICE_ID.test(got.serviceId)) return false;
          } catch (err) {
            if (!(err instanceof TorControlError) || err.code !== 'ERR_TOR_CONTROL') throw err;
          }
          if (id === undefined) return true;
          // A well-formed answer gives its id and key back.
          const texts = [
            `ServiceID=${id}`,
            ...(key === undefined ? [] : [`PrivateKey=ED25519-V3:${key}`]),
          ];
          const got = await addOnion(stubClient(replyOf(250, [...texts, 'OK'])), options);
          return got.serviceId === id && got.privateKey === key;
        },
      ),
  }),
];

// ---------------------------------------------------------------------------------------------
// PROTOCOLINFO and AUTHCHALLENGE from a loopback fake tor

/**
 * What the fake tor answers: one reply text per command, then it hangs up on the next command;
 * with `endAfterFirst` it hangs up right after the first answer (a raw, maybe partial one).
 */
interface FakeTor {
  port: number;
  cookieFile: string;
  cookie: Uint8Array;
  answers: string[];
  endAfterFirst: boolean;
}
let fakeTor: FakeTor | undefined;

async function withFakeTor<T>(body: () => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'onionmc-fuzz-tor-'));
  const cookie = new Uint8Array(32).fill(0x5a);
  const cookieFile = join(dir, 'control_auth_cookie');
  writeFileSync(cookieFile, cookie);
  writeFileSync(join(dir, 'short_cookie'), cookie.subarray(0, 7));
  const state: FakeTor = { port: 0, cookieFile, cookie, answers: [], endAfterFirst: false };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const answers = [...state.answers];
    const endAfterFirst = state.endAfterFirst;
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      let nl: number;
      while ((nl = pending.indexOf('\n')) !== -1) {
        pending = pending.slice(nl + 1);
        const answer = answers.shift();
        if (answer === undefined) {
          socket.destroy();
          return;
        }
        socket.write(Buffer.from(answer, 'utf8'));
        if (endAfterFirst) {
          socket.end();
          return;
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as net.AddressInfo).port;
  fakeTor = state;
  try {
    return await body();
  } finally {
    fakeTor = undefined;
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) =>
      server.close(() => {
        resolve();
      }),
    );
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A serialised reply: `status-line` … `status line`. */
function serialise(status: number, texts: readonly string[]): string {
  const all = texts.length === 0 ? ['OK'] : texts;
  return all.map((t, i) => `${status}${i === all.length - 1 ? ' ' : '-'}${t}\r\n`).join('');
}

const CLIENT_NONCE = new Uint8Array(32).fill(0x11);

const METHODS: AuthMethod[] = ['SAFECOOKIE', 'COOKIE', 'HASHEDPASSWORD', 'NULL'];
const methodList = fc
  .array(fc.oneof(fc.constantFrom<string>(...METHODS), fc.constantFrom('', 'x', 'safecookie')), {
    maxLength: 4,
  })
  .map((m) => m.join(','));

/** Scripted answers: PROTOCOLINFO, then AUTHCHALLENGE (right, wrong or garbage), then AUTHENTICATE. */
const fakeTorScript = fc.record({
  // 6xx lines are asynchronous events, not the reply: not generated (the client rightly waits on).
  status: fc.oneof(
    fc.constant(250),
    fc.constantFrom(251, 510, 515),
    fc.integer({ min: 100, max: 599 }),
  ),
  methods: methodList,
  cookie: fc.constantFrom('real', 'short', 'missing', 'garbage', 'none'),
  extra: fc.array(replyLine, { maxLength: 3 }),
  version: fc.option(replyValue, { nil: undefined }),
  challenge: fc.oneof(
    fc.constant('right'),
    fc.constant('wrong'),
    fc.array(replyLine, { minLength: 1, maxLength: 2 }),
  ),
  challengeStatus: fc.constantFrom(250, 250, 515),
  authStatus: fc.constantFrom(250, 515, 551),
  raw: fc.option(utf16String({ maxLength: 30 }), { nil: undefined, freq: 8 }),
});

type FakeScript = typeof fakeTorScript extends fc.Arbitrary<infer T> ? T : never;

function protocolInfoAnswer(s: FakeScript): string {
  if (s.raw !== undefined) return s.raw;
  const file =
    s.cookie === 'real'
      ? quoteString(fakeTor!.cookieFile)
      : s.cookie === 'short'
        ? quoteString(fakeTor!.cookieFile.replace(/control_auth_cookie$/, 'short_cookie'))
        : s.cookie === 'missing'
          ? quoteString('/nonexistent/onionmc-fuzz/cookie')
          : s.cookie === 'garbage'
            ? '"\\'
            : undefined;
  const auth = `AUTH METHODS=${s.methods}${file === undefined ? '' : ` COOKIEFILE=${file}`}`;
  const version = s.version === undefined ? [] : [`VERSION Tor=${s.version}`];
  return serialise(s.status, ['PROTOCOLINFO 1', auth, ...version, ...s.extra, 'OK']);
}

function challengeAnswer(s: FakeScript): string {
  if (Array.isArray(s.challenge)) return serialise(s.challengeStatus, s.challenge);
  const tor = fakeTor!;
  const serverNonce = new Uint8Array(32).fill(0x22);
  const message = new Uint8Array([...tor.cookie, ...CLIENT_NONCE, ...serverNonce]);
  const hash = hmac(sha256, utf8ToBytes(SAFECOOKIE_SERVER_KEY), message);
  if (s.challenge === 'wrong') hash[0]! ^= 1;
  const line = `AUTHCHALLENGE SERVERHASH=${bytesToHex(hash).toUpperCase()} SERVERNONCE=${bytesToHex(serverNonce).toUpperCase()}`;
  return serialise(s.challengeStatus, [line]);
}

const authProperties: FuzzProperty[] = [
  fuzzProperty({
    name: 'control-client: authenticate against a fake tor answering random PROTOCOLINFO/AUTHCHALLENGE replies succeeds with an offered method or throws only ERR_TOR_AUTH / ERR_TOR_CONTROL',
    runs: 3_000,
    around: withFakeTor,
    property: () =>
      fc.asyncProperty(fakeTorScript, fc.boolean(), async (script, password) => {
        const tor = fakeTor!;
        const offersSafeCookie = script.methods.split(',').includes('SAFECOOKIE');
        tor.endAfterFirst = script.raw !== undefined;
        tor.answers = [
          protocolInfoAnswer(script),
          ...(offersSafeCookie && script.cookie === 'real' && script.raw === undefined
            ? [challengeAnswer(script)]
            : []),
          serialise(script.authStatus, ['OK']),
        ];
        const client = await TorControlClient.connect(
          { kind: 'tcp', host: '127.0.0.1', port: tor.port },
          { commandTimeoutMs: 2_000 },
        );
        try {
          await client.authenticate({
            randomBytes: () => CLIENT_NONCE,
            ...(password ? { password: 'secret' } : {}),
          });
          const method = client.authMethod;
          return method !== undefined && script.methods.split(',').includes(method);
        } catch (err) {
          if (
            err instanceof TorControlError &&
            (err.code === 'ERR_TOR_AUTH' || err.code === 'ERR_TOR_CONTROL')
          ) {
            // A well-formed SAFECOOKIE exchange with the right SERVERHASH must succeed.
            return !(
              script.raw === undefined &&
              script.status === 250 &&
              script.extra.length === 0 &&
              offersSafeCookie &&
              script.cookie === 'real' &&
              script.challenge === 'right' &&
              script.challengeStatus === 250 &&
              script.authStatus === 250
            );
          }
          throw err;
        } finally {
          client.destroy();
        }
      }),
  }),
];

/** Every property of the consumers of tor's control replies. */
export const torReplyProperties: readonly FuzzProperty[] = [
  ...bootstrapProperties,
  ...addOnionProperties,
  ...authProperties,
];
