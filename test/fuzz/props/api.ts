/**
 * Fuzz properties of the local API's request bodies (src/api/server.ts): a real maker daemon in
 * testing mode (docs/protocol.md §8.4) serves its API on a unix socket in a temporary folder; random bodies
 * go to POST /v1/pubmsg, POST /v1/privmsg, POST /v1/orderbook/answer and PUT /v1/offers, some
 * over the 1 MiB cap; GET /v1/reach asks for random nicks. Its directory node is a port where
 * nothing listens, so nothing leaves the process.
 */
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import type { ApiEndpoint } from '../../../src/api/server.js';
import { parseConfig } from '../../../src/config/config.js';
import { BoundServer } from '../../helpers/ports.js';
import { silentLogger } from '../../../src/log.js';
import {
  ENCRYPTED_COMMANDS,
  OFFER_TYPES,
  PLAINTEXT_COMMANDS,
} from '../../../src/message/commands.js';
import { Daemon } from '../../../src/daemon/daemon.js';
import { fuzzProperty, unicodeString, utf16String, type FuzzProperty } from '../property.js';

/** Deadline of one request; an answer later than this is a hang. */
const REQUEST_TIMEOUT_MS = 5_000;

let api: { endpoint: ApiEndpoint; agent: http.Agent } | undefined;

export async function withMakerApi<T>(body: () => Promise<T>): Promise<T> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'onionmc-fuzz-api-'));
  const socket = path.join(dir, 'api.sock');
  // Our serving socket, and a "directory node" that accepts and never answers.
  const serving = await BoundServer.listen();
  const silentDirectory = await BoundServer.listen();
  const text = [
    '[BLOCKCHAIN]',
    'network = testnet',
    '[MESSAGING:onion]',
    'type = onion',
    'onion_serving_host = 127.0.0.1',
    `onion_serving_port = ${serving.port}`,
    `directory_nodes = ${silentDirectory.location}`,
    'regtest_count = 1,1',
    `api = unix:${socket}`,
  ].join('\n');
  const daemon = new Daemon({
    config: parseConfig(text, path.join(dir, 'maker.cfg')),
    logger: silentLogger(),
    clientRole: 'maker',
    server: serving,
    backoff: { initialMs: 60_000, factor: 1, maxMs: 60_000, jitterMs: [0, 0], stableMs: 60_000 },
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  await daemon.start();
  try {
    const endpoint = daemon.api?.endpoint;
    if (endpoint === undefined) throw new Error('the maker has no API');
    api = { endpoint, agent };
    return await body();
  } finally {
    api = undefined;
    agent.destroy();
    await daemon.stop();
    await serving.close();
    await silentDirectory.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** Sends `body` as is to the API of {@link withMakerApi}; the status and the raw answer, or 'hang'. */
export function request(
  method: string,
  urlPath: string,
  body: Buffer,
): Promise<{ status: number; text: string } | 'hang'> {
  const { endpoint, agent } = api!;
  const target =
    endpoint.kind === 'unix'
      ? { socketPath: endpoint.path }
      : { host: endpoint.host, port: endpoint.port };
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        ...target,
        agent,
        method,
        path: urlPath,
        // No Origin; a loopback Host (the API may check both): nothing here depends on those checks.
        headers: {
          'content-type': 'application/json',
          host: endpoint.kind === 'unix' ? '127.0.0.1' : `127.0.0.1:${endpoint.port}`,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
        });
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      resolve('hang');
    }, REQUEST_TIMEOUT_MS);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}

/** JSON values, plus objects that defeat String() and Number() (own toString/valueOf data). */
const hostile = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom<unknown>(
    { toString: 1 },
    { valueOf: 'x' },
    { toString: 'a', valueOf: 'b' },
    { __proto__: 1 },
    [],
    [1, 2],
    '1e400',
    -0,
    1e21,
    '0x10',
    ' 7 ',
  ),
);
const offerType = fc.oneof(fc.constantFrom(...OFFER_TYPES), hostile);
const offer = fc.record(
  {
    type: offerType,
    oid: fc.oneof(fc.nat(10), hostile),
    minsize: fc.oneof(fc.nat(1_000_000), hostile),
    maxsize: fc.oneof(fc.nat(1_000_000_000), hostile),
    txfee: fc.oneof(fc.nat(1000), hostile),
    cjfee: fc.oneof(fc.constantFrom('0.0002', '250', '1e-5'), hostile),
  },
  { requiredKeys: [], noNullPrototype: true },
);
const commands = [...PLAINTEXT_COMMANDS, ...ENCRYPTED_COMMANDS, 'tbond', 'x'];

const route = fc.oneof(
  fc.record({
    method: fc.constant('POST'),
    path: fc.constant('/v1/pubmsg'),
    body: fc
      .record(
        {
          message: fc.oneof(
            utf16String({ maxLength: 40 }).map((s) => `!${s}`),
            hostile,
          ),
        },
        { requiredKeys: [] },
      )
      .map((b) => JSON.stringify(b)),
  }),
  fc.record({
    method: fc.constant('POST'),
    path: fc.constant('/v1/privmsg'),
    body: fc
      .record(
        {
          to: fc.oneof(
            fc.constantFrom('J5aaaaaaaaaaaaaa', 'J5xxxxxxxxxxxxxx', 'PUBLIC', ''),
            hostile,
          ),
          cmd: fc.oneof(fc.constantFrom(...commands), hostile),
          body: fc.oneof(utf16String({ maxLength: 40 }), fc.constant('1 100000 abc'), hostile),
          route: fc.oneof(fc.constantFrom('any', 'directory', 'x'), hostile),
        },
        { requiredKeys: [] },
      )
      .map((b) => JSON.stringify(b)),
  }),
  fc.record({
    method: fc.constant('POST'),
    path: fc.constant('/v1/orderbook/answer'),
    body: fc
      .record(
        {
          to: fc.oneof(
            fc.constantFrom('J5aaaaaaaaaaaaaa', 'J5xxxxxxxxxxxxxx', ''),
            utf16String({ maxLength: 20 }),
            hostile,
          ),
          fidelityBond: fc.oneof(
            fc.constantFrom('', 'AAAA', 'not base64!', 'A'.repeat(336)),
            utf16String({ maxLength: 40 }),
            hostile,
          ),
        },
        { requiredKeys: [] },
      )
      .map((b) => JSON.stringify(b)),
  }),
  fc.record({
    method: fc.constant('PUT'),
    path: fc.constant('/v1/offers'),
    body: fc
      .oneof(
        fc.record({ offers: fc.array(offer, { maxLength: 3 }) }),
        fc.record({ offers: hostile }),
      )
      .map((b) => JSON.stringify(b)),
  }),
);

const rawBody = fc.oneof(
  fc.uint8Array({ maxLength: 60 }).map((b) => Buffer.from(b)),
  utf16String({ maxLength: 40 }).map((s) => Buffer.from(s, 'utf8')),
  fc
    .tuple(fc.integer({ min: 1, max: 20_000 }), fc.constantFrom('[', '{"offers":', '{"a":['))
    .map(([n, open]) => Buffer.from(open.repeat(n))),
);

/** `GET /v1/reach` with any nick, percent-encoded as a client would (or not at all). */
const reachRequest = fc
  .tuple(
    fc.oneof(
      fc.constantFrom('J5aaaaaaaaaaaaaa', 'J5xxxxxxxxxxxxxx', '', 'PUBLIC'),
      unicodeString({ maxLength: 30 }),
      fc.string({
        unit: fc.constantFrom('J', '5', 'a', '+', '&', '=', '#', '%', ' '),
        maxLength: 20,
      }),
    ),
    fc.boolean(),
  )
  .map(([nick, encoded]) => ({
    method: 'GET',
    path: encoded
      ? `/v1/reach?nick=${encodeURIComponent(nick)}`
      : `/v1/reach?nick=${nick.replace(/[^\x21-\x7e]/gu, '').replace(/#/g, '')}`,
    body: Buffer.alloc(0),
    nick: encoded ? nick : undefined,
  }));

/** The routes that read a request body: method and path. */
const BODY_ROUTES: readonly (readonly [string, string])[] = [
  ['POST', '/v1/pubmsg'],
  ['POST', '/v1/privmsg'],
  ['PUT', '/v1/offers'],
  ['POST', '/v1/orderbook/answer'],
];

/** A body over the 1 MiB cap (API_MAX_BODY_BYTES): JSON-looking, or not. */
const oversizedBody = fc
  .tuple(
    fc.constantFrom(...BODY_ROUTES),
    fc.integer({ min: 1, max: 4096 }),
    fc.constantFrom('{"message":"', ' ', 'x'),
  )
  .map(([[method, urlPath], extra, fill]) => ({
    method,
    path: urlPath,
    body: Buffer.concat([Buffer.from(fill), Buffer.alloc(1024 * 1024 + extra, 0x61)]),
  }));

const apiRequest = fc.oneof(
  { weight: 30, arbitrary: route.map((r) => ({ ...r, body: Buffer.from(r.body, 'utf8') })) },
  { weight: 10, arbitrary: reachRequest },
  { weight: 1, arbitrary: oversizedBody },
  {
    weight: 10,
    arbitrary: fc
      .tuple(fc.constantFrom(...BODY_ROUTES), rawBody)
      .map(([[method, urlPath], body]) => ({ method, path: urlPath, body })),
  },
);

/**
 * Writes `bytes` on a new connection to the API of {@link withMakerApi}, ends our side, and
 * resolves with all the API sent until it closed the connection, or 'hang' after
 * {@link REQUEST_TIMEOUT_MS}.
 */
export function rawExchange(bytes: Buffer): Promise<Buffer | 'hang'> {
  const { endpoint } = api!;
  return new Promise((resolve) => {
    const socket =
      endpoint.kind === 'unix'
        ? net.createConnection(endpoint.path)
        : net.createConnection(endpoint.port, endpoint.host);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('hang');
    }, REQUEST_TIMEOUT_MS);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // A reset after the server's answer (it closes on our unread bytes) is a close like another.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    socket.end(bytes);
  });
}

/** Routes a raw request may name: every route but the endless `/v1/events`, and some that are none. */
const rawPaths = [
  '/',
  '/health',
  '/metrics',
  '/v1/info',
  '/v1/counters',
  '/v1/orderbook',
  '/v1/reach?nick=J5x',
  '/v1/reach?nick=%',
  '/v1/reach?nick=%ZZ%ED%A0%80',
  '/v1/reach?nick=a&nick=b',
  '/v1/reach',
  '/v1/orderbook/answer',
  '/v1/pubmsg',
  '/v1/privmsg',
  '/v1/offers',
  '/v2',
  '*',
  'http://onionmc/v1/info',
  '',
];

/** Raw HTTP/1.1 requests: well-formed, broken in one place, or garbage. */
const rawRequest = fc.oneof(
  fc
    .record({
      method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'G\x00T', ''),
      path: fc.constantFrom(...rawPaths),
      version: fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1 x', ''),
      headers: fc.array(
        fc.oneof(
          fc.constantFrom(
            'Host: 127.0.0.1',
            'Content-Type: application/json',
            'Content-Length: 5',
            'Content-Length: -1',
            'Content-Length: 99999999999999999999',
            'Transfer-Encoding: chunked',
            'Transfer-Encoding: gzip, chunked',
            'Connection: keep-alive',
            'Expect: 100-continue',
            ' folded',
            'NoColon',
            'X: \x00',
          ),
          fc.integer({ min: 1, max: 40_000 }).map((n) => `X-Pad: ${'a'.repeat(n)}`),
        ),
        { maxLength: 4 },
      ),
      eol: fc.constantFrom('\r\n', '\n'),
      body: rawBody,
    })
    .map(({ method, path: p, version, headers, eol, body }) =>
      Buffer.concat([
        Buffer.from([`${method} ${p} ${version}`, ...headers, '', ''].join(eol), 'latin1'),
        body,
      ]),
    ),
  fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
);

/**
 * The error codes docs/api.md documents, by status ("Errors"). 503 `ERR_BUSY` also covers a
 * global cap on bodies being read, should the API answer so.
 */
const DOCUMENTED_ERRORS: Readonly<Record<number, readonly string[]>> = {
  400: ['ERR_API', 'ERR_PROTOCOL', 'ERR_LINE_TOO_LONG'],
  404: ['ERR_API'],
  405: ['ERR_API'],
  408: ['ERR_API'],
  409: ['ERR_NOT_ROUTABLE', 'ERR_CRYPTO', 'ERR_API'],
  413: ['ERR_API'],
  431: ['ERR_API'],
  501: ['ERR_API'],
  502: ['ERR_NOT_DELIVERED'],
  503: ['ERR_BUSY', 'ERR_CLOSED'],
  504: ['ERR_TIMEOUT'],
};

/** True when `text` is the API's JSON error with a code docs/api.md documents for `status`. */
function isDocumentedError(status: number, text: string): boolean {
  const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
  const code = parsed.error?.code;
  if (typeof code !== 'string' || typeof parsed.error?.message !== 'string') return false;
  if (!(DOCUMENTED_ERRORS[status] ?? []).includes(code)) {
    throw new Error(`status ${status} with code ${code}, not documented: ${text.slice(0, 200)}`);
  }
  return true;
}

/** Every property of the API's requests: their bodies, and raw bytes. */
export const apiProperties: readonly FuzzProperty[] = [
  fuzzProperty({
    name: 'api: any POST/PUT body (orderbook answers, over 1 MiB) and any /v1/reach nick get a JSON answer 200/400/409/413 (503 busy) with a documented error code, never a 500 or a hang',
    runs: 4_000,
    around: withMakerApi,
    property: () =>
      fc.asyncProperty(apiRequest, async (req) => {
        const { method, path: urlPath, body } = req;
        const res = await request(method, urlPath, body);
        if (res === 'hang') throw new Error('the API did not answer');
        const oversized = body.length > 1024 * 1024;
        const allowed = oversized ? [413, 503] : [200, 400, 409, 503];
        if (!allowed.includes(res.status)) {
          throw new Error(
            `status ${res.status} for ${method} ${urlPath}: ${res.text.slice(0, 200)}`,
          );
        }
        if (res.status !== 200) return isDocumentedError(res.status, res.text);
        const parsed = JSON.parse(res.text) as { error?: unknown; nick?: unknown };
        if (parsed.error !== undefined) return false;
        // The nick reach answers for is the one asked, decoded.
        return !('nick' in req) || req.nick === undefined || parsed.nick === req.nick;
      }),
  }),
  fuzzProperty({
    name: "api: any raw request bytes get an HTTP answer (an error as the API's JSON) or a closed connection, never a hang",
    runs: 20_000,
    around: withMakerApi,
    property: () =>
      fc.asyncProperty(rawRequest, async (bytes) => {
        const answer = await rawExchange(bytes);
        if (answer === 'hang') throw new Error('the API neither answered nor closed');
        if (answer.length === 0) return true;
        const text = answer.toString('latin1');
        const status = /^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1];
        if (status === undefined) throw new Error(`not an HTTP answer: ${text.slice(0, 80)}`);
        // The first answer; a 2xx may be anything (the status page, /metrics), an error is JSON.
        if (Number(status) < 400) return true;
        const head = text.indexOf('\r\n\r\n');
        const length = /\r\ncontent-length: (\d+)\r\n/i.exec(text.slice(0, head))?.[1];
        if (length === undefined)
          throw new Error(`error answer without a length: ${text.slice(0, 200)}`);
        const body = answer.subarray(head + 4, head + 4 + Number(length)).toString('utf8');
        return isDocumentedError(Number(status), body);
      }),
  }),
];
