/**
 * Fuzz properties of the local API's request bodies (src/api/server.ts): a real maker daemon in
 * testing mode (docs/protocol.md §8.4) serves its API on a unix socket in a temporary folder; random bodies
 * go to POST /v1/pubmsg, POST /v1/privmsg and PUT /v1/offers. Its directory node is a port where
 * nothing listens, so nothing leaves the process.
 */
import fs from 'node:fs/promises';
import http from 'node:http';
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
import { fuzzProperty, utf16String, type FuzzProperty } from '../property.js';

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
      { ...target, agent, method, path: urlPath, headers: { 'content-type': 'application/json' } },
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

const apiRequest = fc.oneof(
  { weight: 3, arbitrary: route.map((r) => ({ ...r, body: Buffer.from(r.body, 'utf8') })) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.constantFrom(['POST', '/v1/pubmsg'], ['POST', '/v1/privmsg'], ['PUT', '/v1/offers']),
        rawBody,
      )
      .map(([[method, urlPath], body]) => ({ method, path: urlPath, body })),
  },
);

/** Every property of the API's request bodies. */
export const apiProperties: readonly FuzzProperty[] = [
  fuzzProperty({
    name: 'api: any POST/PUT body gets a JSON answer 200/400/409 with a typed error code, never a 500 or a hang',
    runs: 4_000,
    around: withMakerApi,
    property: () =>
      fc.asyncProperty(apiRequest, async ({ method, path: urlPath, body }) => {
        const res = await request(method, urlPath, body);
        if (res === 'hang') throw new Error('the API did not answer');
        if (![200, 400, 409].includes(res.status)) {
          throw new Error(`status ${res.status}: ${res.text}`);
        }
        const parsed = JSON.parse(res.text) as { error?: { code?: unknown; message?: unknown } };
        if (res.status === 200) return parsed.error === undefined;
        return typeof parsed.error?.code === 'string' && typeof parsed.error.message === 'string';
      }),
  }),
];
