/**
 * The local API (src/api/server.ts) of real in-process daemons in testing mode (docs/protocol.md §8.4): a
 * directory node, a maker and a taker on loopback, each serving its API on a unix socket in a
 * temporary folder, driven through ApiClient (src/api/client.ts) and raw HTTP where the client
 * cannot produce the request (bad JSON, an oversized body).
 *
 * The taker starts first, before the directory node listens, so that its event stream sees the
 * `directory` event of its first handshake (it reconnects with a short backoff).
 */
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, type ApiEvent, type EventStream } from '../../src/api/client.js';
import {
  API_MAX_BODY_BYTES,
  API_MAX_OFFERS,
  ApiServer,
  type ApiEndpoint,
} from '../../src/api/server.js';
import { parseConfig } from '../../src/config/config.js';
import { pollUntil } from '../helpers/poll.js';
import { BoundServer } from '../helpers/ports.js';
import { hasCode } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { Daemon } from '../../src/daemon/daemon.js';

/** Reconnects to the directory every 50 ms while it is not up yet. */
const TEST_BACKOFF = {
  initialMs: 50,
  factor: 1,
  maxMs: 50,
  jitterMs: [0, 0] as const,
  stableMs: 60_000,
};
/** Deadline of every wait on an event or a condition. */
const WAIT_MS = 5_000;
const MOTD = 'onionmc api test directory';
/** A well-formed nick (docs/protocol.md §5.5) that no node here has. */
const UNKNOWN_NICK = 'J5aaaaaaaaaaaaaa';

/** An error answer of the API. */
interface ErrorBody {
  error: { code: string; message: string };
}

/** The testing-mode config text of one node (regtest_count = 1,1: plain TCP on 127.0.0.1). */
function configText(options: {
  servingPort: number;
  directory: string;
  api: string;
  extra?: string[];
}): string {
  return [
    '[BLOCKCHAIN]',
    'network = testnet',
    '',
    '[MESSAGING:onion]',
    'type = onion',
    'onion_serving_host = 127.0.0.1',
    `onion_serving_port = ${options.servingPort}`,
    'hidden_service_dir =',
    `directory_nodes = ${options.directory}`,
    'regtest_count = 1,1',
    `api = unix:${options.api}`,
    ...(options.extra ?? []),
    '',
  ].join('\n');
}

/**
 * Sends `body` exactly as given (not JSON-encoded); resolves with the status, parsed JSON and the
 * `Allow` header.
 */
function rawRequest(
  endpoint: ApiEndpoint,
  method: string,
  urlPath: string,
  body: string | Buffer,
): Promise<{ status: number; body: unknown; allow: string | undefined }> {
  return new Promise((resolve, reject) => {
    const target =
      endpoint.kind === 'unix'
        ? { socketPath: endpoint.path }
        : { host: endpoint.host, port: endpoint.port };
    const req = http.request(
      { ...target, method, path: urlPath, headers: { 'content-type': 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({
              status: res.statusCode ?? 0,
              body: JSON.parse(text) as unknown,
              allow: res.headers.allow,
            });
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Asserts an error answer: status, `error.code`, and optionally text in `error.message`. */
function expectError(
  res: { status: number; body: unknown },
  status: number,
  code: string,
  messageContains?: string,
): void {
  expect(res.status).toBe(status);
  const { error } = res.body as ErrorBody;
  expect(error.code).toBe(code);
  expect(typeof error.message).toBe('string');
  if (messageContains !== undefined) expect(error.message).toContain(messageContains);
}

function isEvent(name: string, fields: Record<string, unknown>): (e: ApiEvent) => boolean {
  return (e) => {
    if (e.event !== name || typeof e.data !== 'object' || e.data === null) return false;
    const data = e.data as Record<string, unknown>;
    return Object.entries(fields).every(([k, v]) => data[k] === v);
  };
}

describe('local API of a directory node, a maker and a taker (testing mode)', () => {
  let dir = '';
  let directoryLocation = '';
  let makerLocation = '';
  const daemons: Daemon[] = [];
  const streams: EventStream[] = [];
  let directory: Daemon;
  let maker: Daemon;
  let taker: Daemon;
  let directoryApi: ApiClient;
  let makerApi: ApiClient;
  let takerApi: ApiClient;
  /** Opened before the taker first reached the directory node. */
  let takerEvents: EventStream;
  let makerEvents: EventStream;
  const sockets = { directory: '', maker: '', taker: '' };

  const listeners: BoundServer[] = [];
  const listen = async (): Promise<BoundServer> => {
    const listener = await BoundServer.listen();
    listeners.push(listener);
    return listener;
  };

  const startDaemon = async (
    name: 'directory' | 'maker' | 'taker',
    listener: BoundServer,
  ): Promise<Daemon> => {
    const servingPort = listener.port;
    sockets[name] = path.join(dir, `${name}.sock`);
    const text = configText({
      servingPort,
      directory: directoryLocation,
      api: sockets[name],
      extra: name === 'directory' ? [`directory_motd = ${MOTD}`] : [],
    });
    const daemon = new Daemon({
      config: parseConfig(text, path.join(dir, `${name}.cfg`)),
      logger: silentLogger(),
      clientRole: name === 'maker' ? 'maker' : 'taker',
      backoff: TEST_BACKOFF,
      server: listener,
    });
    daemons.push(daemon);
    await daemon.start();
    return daemon;
  };

  const apiOf = (daemon: Daemon): ApiClient => {
    const endpoint = daemon.api?.endpoint;
    if (endpoint === undefined) throw new Error('the daemon has no API');
    return new ApiClient(endpoint);
  };

  const openEvents = async (api: ApiClient): Promise<EventStream> => {
    const stream = await api.events();
    streams.push(stream);
    return stream;
  };

  const nickOf = (daemon: Daemon): string => daemon.identity.nick;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'onionmc-api-'));
    const directoryListener = await listen();
    const makerListener = await listen();
    directoryLocation = directoryListener.location;
    makerLocation = makerListener.location;

    taker = await startDaemon('taker', await listen());
    takerApi = apiOf(taker);
    takerEvents = await openEvents(takerApi);

    directory = await startDaemon('directory', directoryListener);
    directoryApi = apiOf(directory);
    maker = await startDaemon('maker', makerListener);
    makerApi = apiOf(maker);
    makerEvents = await openEvents(makerApi);

    for (const [name, api] of [
      ['maker', makerApi],
      ['taker', takerApi],
    ] as const) {
      await pollUntil(
        `the ${name} to handshake with the directory node`,
        async () => {
          const info = (await api.call('GET', '/v1/info')) as {
            directories: { state: string }[];
          };
          return info.directories.every((d) => d.state === 'handshaked') ? true : undefined;
        },
        WAIT_MS,
      );
    }
  });

  afterAll(async () => {
    for (const stream of streams) stream.close();
    for (const daemon of daemons.reverse()) await daemon.stop();
    for (const listener of listeners) await listener.close();
    if (dir !== '') await fs.rm(dir, { recursive: true, force: true });
  });

  it('serves each API on a unix socket of mode 0660 (api_socket_mode default)', async () => {
    for (const socket of Object.values(sockets)) {
      const stat = await fs.stat(socket);
      expect(stat.isSocket()).toBe(true);
      expect(stat.mode & 0o777).toBe(0o660);
    }
    expect(directory.api?.endpoint).toEqual({ kind: 'unix', path: sockets.directory });
  });

  it('GET /health answers {"status":"ok"} on every role', async () => {
    for (const api of [directoryApi, makerApi, takerApi]) {
      const res = await api.request('GET', '/health');
      expect(res).toEqual({ status: 200, body: { status: 'ok' } });
    }
  });

  it('GET /v1/info of the directory node: nick, role, location, handshaked peers, counters', async () => {
    const info = await pollUntil(
      'the directory node to list the maker and the taker as handshaked',
      async () => {
        const current = (await directoryApi.call('GET', '/v1/info')) as {
          peers: { nick?: string; state: string }[];
        };
        return current.peers.filter((p) => p.state === 'handshaked').length === 2
          ? current
          : undefined;
      },
      WAIT_MS,
    );
    expect(info).toMatchObject({
      nick: nickOf(directory),
      role: 'directory',
      network: 'testnet',
      location: directoryLocation,
      counters: expect.any(Object) as unknown,
    });
    expect(info).not.toHaveProperty('directories');
    const peers = [...info.peers].sort((a, b) => (a.nick ?? '').localeCompare(b.nick ?? ''));
    const expected = [
      { nick: nickOf(maker), location: makerLocation },
      { nick: nickOf(taker), location: 'NOT-SERVING-ONION' },
    ].sort((a, b) => a.nick.localeCompare(b.nick));
    expect(peers).toMatchObject(expected.map((p) => ({ ...p, state: 'handshaked' })));
  });

  it('GET /v1/counters: the counters of /v1/info and memory figures, no peer list', async () => {
    const counters = (await directoryApi.call('GET', '/v1/counters')) as {
      counters: Record<string, number>;
      memory: Record<string, number>;
    };
    expect(Object.keys(counters).sort()).toEqual(['counters', 'memory']);
    expect(counters.counters['handshake.accepted']).toBeGreaterThanOrEqual(2);
    expect(counters.memory.rssBytes).toBeGreaterThan(0);
  });

  it('GET /v1/info of the maker and the taker: the directory link is handshaked', async () => {
    const directoryEntry = {
      location: directoryLocation,
      nick: nickOf(directory),
      state: 'handshaked',
    };
    const makerInfo = (await makerApi.call('GET', '/v1/info')) as Record<string, unknown>;
    expect(makerInfo).toMatchObject({
      nick: nickOf(maker),
      role: 'maker',
      network: 'testnet',
      location: makerLocation,
      directories: [directoryEntry],
      peers: [],
      offers: [],
    });
    expect(typeof makerInfo.counters).toBe('object');
    const takerInfo = (await takerApi.call('GET', '/v1/info')) as Record<string, unknown>;
    expect(takerInfo).toMatchObject({
      nick: nickOf(taker),
      role: 'taker',
      location: 'NOT-SERVING-ONION',
      directories: [directoryEntry],
    });
    expect(typeof takerInfo.counters).toBe('object');
    expect(nickOf(maker)).not.toBe(nickOf(taker));
  });

  it('the taker saw a "directory" event when its directory link came up', async () => {
    const event = await takerEvents.waitFor(
      'the directory-up event',
      isEvent('directory', { up: true }),
      WAIT_MS,
    );
    expect(event.data).toEqual({
      location: directoryLocation,
      nick: nickOf(directory),
      up: true,
      motd: MOTD,
    });
  });

  it('POST /v1/pubmsg reaches the other client through the directory node', async () => {
    // Not !orderbook: a maker drops a repeat of the same pubmsg for 30 s (docs/protocol.md §9.3), and the
    // !orderbook test below needs the first one.
    const message = '!hp2 api-test';
    const res = await takerApi.request('POST', '/v1/pubmsg', { message });
    expect(res).toEqual({ status: 200, body: { directories: 1, confirmed: true } });
    const event = await makerEvents.waitFor(
      "the taker's pubmsg at the maker",
      isEvent('pubmsg', { from: nickOf(taker), message }),
      WAIT_MS,
    );
    expect(event.data).toEqual({
      from: nickOf(taker),
      message,
      via: { kind: 'directory', location: directoryLocation },
    });
  });

  it('POST /v1/pubmsg refuses a message without "!" (400) and any pubmsg on a directory node (409)', async () => {
    expectError(
      await takerApi.request('POST', '/v1/pubmsg', { message: 'orderbook' }),
      400,
      'ERR_API',
      '!',
    );
    expectError(
      await directoryApi.request('POST', '/v1/pubmsg', { message: '!orderbook' }),
      409,
      'ERR_API',
    );
  });

  it('POST /v1/privmsg to a nick no directory carries is 409 ERR_NOT_ROUTABLE', async () => {
    expectError(
      await takerApi.request('POST', '/v1/privmsg', {
        to: UNKNOWN_NICK,
        cmd: 'orderbook',
        body: 'x',
      }),
      409,
      'ERR_NOT_ROUTABLE',
      UNKNOWN_NICK,
    );
  });

  it('POST /v1/privmsg of an encrypted command before the key exchange is 409 ERR_CRYPTO', async () => {
    expectError(
      await takerApi.request('POST', '/v1/privmsg', {
        to: nickOf(maker),
        cmd: 'auth',
        body: 'too early',
      }),
      409,
      'ERR_CRYPTO',
    );
  });

  it('POST /v1/privmsg validates its body: JSON, string fields, route, nick', async () => {
    const endpoint = takerApi.endpoint;
    expectError(
      await rawRequest(endpoint, 'POST', '/v1/privmsg', '{"to":'),
      400,
      'ERR_API',
      'not JSON',
    );
    expectError(await rawRequest(endpoint, 'POST', '/v1/pubmsg', ''), 400, 'ERR_API', 'not JSON');
    expectError(
      await takerApi.request('POST', '/v1/privmsg', { to: 5, cmd: 'fill', body: 'x' }),
      400,
      'ERR_API',
      '"to" must be a string',
    );
    expectError(
      await takerApi.request('POST', '/v1/privmsg', { to: nickOf(maker), cmd: 'fill' }),
      400,
      'ERR_API',
      '"body" must be a string',
    );
    expectError(
      await takerApi.request('POST', '/v1/pubmsg', { message: ['!orderbook'] }),
      400,
      'ERR_API',
      '"message" must be a string',
    );
    expectError(
      await takerApi.request('POST', '/v1/privmsg', {
        to: nickOf(maker),
        cmd: 'fill',
        body: '0 1000 Pcommitment',
        route: 'tor',
      }),
      400,
      'ERR_API',
      '"route"',
    );
    expectError(
      await takerApi.request('POST', '/v1/privmsg', {
        to: nickOf(maker),
        cmd: 'fill',
        body: '0 1000 Pcommitment',
        route: 1,
      }),
      400,
      'ERR_API',
      '"route" must be a string',
    );
    expectError(
      await takerApi.request('POST', '/v1/privmsg', { to: 'alice', cmd: 'fill', body: 'x' }),
      400,
      'ERR_API',
      'alice',
    );
  });

  it('unknown paths are 404 and known paths with the wrong method 405, both with an error body', async () => {
    expectError(await takerApi.request('GET', '/v2/info'), 404, 'ERR_API');
    expectError(await takerApi.request('GET', '/index.htm'), 404, 'ERR_API');
    expectError(await takerApi.request('POST', '/'), 405, 'ERR_API');
    expectError(await takerApi.request('DELETE', '/v1/info'), 405, 'ERR_API');
    expectError(await takerApi.request('GET', '/v1/pubmsg'), 405, 'ERR_API');
    expectError(await takerApi.request('POST', '/v1/offers', { offers: [] }), 405, 'ERR_API');
    // Every route's path, with the methods it has in Allow.
    for (const [method, urlPath, allow] of [
      ['POST', '/v1/counters', 'GET'],
      ['GET', '/v1/gc', 'POST'],
      ['POST', '/status.css', 'GET'],
      ['DELETE', '/index.html', 'GET'],
      ['PUT', '/v1/orderbook', 'GET'],
      ['GET', '/v1/offers', 'PUT'],
    ] as const) {
      const refused = await rawRequest(takerApi.endpoint, method, urlPath, '');
      expect([refused.status, refused.allow], `${method} ${urlPath}`).toEqual([405, allow]);
      expect(refused.body).toMatchObject({ error: { code: 'ERR_API' } });
    }
    expect((await rawRequest(takerApi.endpoint, 'GET', '/v2/info', '')).allow).toBeUndefined();
    // The query string does not change the route.
    const res = await takerApi.request('GET', '/health?verbose=1');
    expect(res.status).toBe(200);
  });

  it(`a request body over ${API_MAX_BODY_BYTES} bytes is 413, and the API goes on`, async () => {
    const body = Buffer.alloc(API_MAX_BODY_BYTES + 1, 0x20);
    expectError(await rawRequest(takerApi.endpoint, 'POST', '/v1/pubmsg', body), 413, 'ERR_API');
    // Exactly the limit is read (and then refused as a pubmsg without "!", not as too large).
    const atLimit = Buffer.alloc(API_MAX_BODY_BYTES, 0x20);
    atLimit.write('{"message":"x"}', 0);
    expectError(await rawRequest(takerApi.endpoint, 'POST', '/v1/pubmsg', atLimit), 400, 'ERR_API');
    expect((await takerApi.request('GET', '/health')).status).toBe(200);
  });

  it('PUT /v1/offers is 409 on a taker and on a directory node', async () => {
    const offers = [
      { type: 'sw0reloffer', oid: 0, minsize: 1, maxsize: 2, txfee: 0, cjfee: '0.1' },
    ];
    expectError(await takerApi.request('PUT', '/v1/offers', { offers }), 409, 'ERR_API', 'maker');
    expectError(await directoryApi.request('PUT', '/v1/offers', { offers }), 409, 'ERR_API');
  });

  it(`PUT /v1/offers with more than ${API_MAX_OFFERS} offers is 400 naming the cap, and changes nothing`, async () => {
    // 2,000 offers used to answer 200 while the directory node dropped most of the pubmsgs,
    // disconnected the maker for flooding and refused its nick for 300 s (docs/limits.md).
    const offers = Array.from({ length: API_MAX_OFFERS + 1 }, (_, oid) => ({
      type: 'sw0reloffer',
      oid,
      minsize: 27300,
      maxsize: 1000000,
      txfee: 0,
      cjfee: '0.0002',
    }));
    expectError(
      await makerApi.request('PUT', '/v1/offers', { offers }),
      400,
      'ERR_API',
      `at most ${API_MAX_OFFERS} offers (${API_MAX_OFFERS + 1} given)`,
    );
    const info = (await makerApi.call('GET', '/v1/info')) as { offers: unknown[] };
    expect(info.offers).toEqual([]);
  });

  it('PUT /v1/offers with invalid offers is 400 naming every problem, and changes nothing', async () => {
    const res = await makerApi.request('PUT', '/v1/offers', {
      offers: [
        {
          type: 'sw0reloffer',
          oid: 0,
          minsize: 27300,
          maxsize: 1000000,
          txfee: 0,
          cjfee: '0.0002',
        },
        { type: 'bogusoffer', oid: -1, minsize: 10, maxsize: 5, txfee: 1.5, cjfee: 'cheap' },
        { type: 'sw0absoffer', oid: 2, minsize: 1, maxsize: 2, txfee: 0, cjfee: '0.5' },
        'not an offer',
      ],
    });
    expectError(res, 400, 'ERR_API');
    const { message } = (res.body as ErrorBody).error;
    for (const problem of [
      'offers[1]: type "bogusoffer"',
      'offers[1]: oid must be a non-negative integer',
      'offers[1]: txfee must be a non-negative integer',
      'offers[1]: minsize must not exceed maxsize',
      'offers[1]: cjfee must be a decimal fraction',
      'offers[2]: cjfee must be an integer (sats) for an absolute offer',
      'offers[3]: type "undefined"',
      'offers[3]: minsize must be a non-negative integer',
    ]) {
      expect(message).toContain(problem);
    }
    expect(message).not.toContain('offers[0]');
    expectError(
      await makerApi.request('PUT', '/v1/offers', { offers: 'sw0reloffer' }),
      400,
      'ERR_API',
      '"offers" must be an array',
    );
    const info = (await makerApi.call('GET', '/v1/info')) as { offers: unknown[] };
    expect(info.offers).toEqual([]);
  });

  it("valid offers on a maker are announced: the taker's events and orderbook show them", async () => {
    const offers = [
      { type: 'sw0reloffer', oid: 0, minsize: 27300, maxsize: 1000000, txfee: 0, cjfee: '0.00002' },
      { type: 'sw0absoffer', oid: 1, minsize: 50000, maxsize: 5000000, txfee: 10, cjfee: '250' },
    ];
    const res = await makerApi.request('PUT', '/v1/offers', { offers });
    expect(res).toEqual({ status: 200, body: { directories: 1 } });
    for (const message of [
      '!sw0reloffer 0 27300 1000000 0 0.00002',
      '!sw0absoffer 1 50000 5000000 10 250',
    ]) {
      const event = await takerEvents.waitFor(
        `the announcement ${message}`,
        isEvent('pubmsg', { from: nickOf(maker), message }),
        WAIT_MS,
      );
      expect(event.data).toEqual({
        from: nickOf(maker),
        message,
        via: { kind: 'directory', location: directoryLocation },
      });
    }
    const book = (await takerApi.call('GET', '/v1/orderbook')) as { offers: unknown[] };
    expect(book.offers).toEqual(
      offers.map((o) => ({ ...o, nick: nickOf(maker), source: 'pubmsg' })),
    );
    const info = (await makerApi.call('GET', '/v1/info')) as { offers: unknown[] };
    expect(info.offers).toEqual(offers);
    expectError(await directoryApi.request('GET', '/v1/orderbook'), 409, 'ERR_API');
  });

  it('!orderbook is answered by one signed privmsg per offer: "privmsg" events and privmsg offers in the orderbook', async () => {
    expect((await takerApi.request('POST', '/v1/pubmsg', { message: '!orderbook' })).status).toBe(
      200,
    );
    // One offer per privmsg (docs/protocol.md §13.2), through the directory node the request came through.
    const rel = await takerEvents.waitFor(
      "the maker's signed relative offer",
      isEvent('privmsg', { from: nickOf(maker), cmd: 'sw0reloffer' }),
      WAIT_MS,
    );
    const abs = await takerEvents.waitFor(
      "the maker's signed absolute offer",
      isEvent('privmsg', { from: nickOf(maker), cmd: 'sw0absoffer' }),
      WAIT_MS,
    );
    const via = { kind: 'directory', location: directoryLocation };
    expect(rel.data).toEqual({
      from: nickOf(maker),
      cmd: 'sw0reloffer',
      body: '0 27300 1000000 0 0.00002',
      via,
      encrypted: false,
    });
    expect(abs.data).toEqual({
      from: nickOf(maker),
      cmd: 'sw0absoffer',
      body: '1 50000 5000000 10 250',
      via,
      encrypted: false,
    });
    const book = (await takerApi.call('GET', '/v1/orderbook')) as {
      offers: { oid: number; source: string; nick: string }[];
    };
    expect(book.offers.map((o) => [o.nick, o.oid, o.source])).toEqual([
      [nickOf(maker), 0, 'privmsg'],
      [nickOf(maker), 1, 'privmsg'],
    ]);
  });

  it('privmsgs through the directory node: relay events there, decrypted privmsg events at the ends', async () => {
    const relays = await openEvents(directoryApi);
    const viaDirectory = { kind: 'directory', location: directoryLocation };
    const fillBody = `0 1000000 P${'cd'.repeat(32)}`;

    const fill = await takerApi.request('POST', '/v1/privmsg', {
      to: nickOf(maker),
      cmd: 'fill',
      body: fillBody,
      route: 'directory',
    });
    expect(fill).toEqual({
      status: 200,
      body: { via: viaDirectory, confirmed: true, attempts: 1 },
    });
    const gotFill = await makerEvents.waitFor(
      'the !fill at the maker',
      isEvent('privmsg', { from: nickOf(taker), cmd: 'fill' }),
      WAIT_MS,
    );
    // The daemon took its NaCl key out of the body (docs/protocol.md §7).
    // It shows both session keys: the maker's own (to sign as btc_sig) and the taker's.
    const keyHex = expect.stringMatching(/^[0-9a-f]{64}$/) as unknown;
    expect(gotFill.data).toEqual({
      from: nickOf(taker),
      cmd: 'fill',
      body: fillBody,
      via: viaDirectory,
      encrypted: false,
      ownKeyHex: keyHex,
      peerKeyHex: keyHex,
    });
    const fillKeys = gotFill.data as { ownKeyHex: string; peerKeyHex: string };
    const fillRelay = await relays.waitFor(
      'the relay of the !fill',
      isEvent('relay', { kind: 'privmsg', cmd: 'fill' }),
      WAIT_MS,
    );
    expect(fillRelay.data).toMatchObject({ from: nickOf(taker), to: nickOf(maker) });
    const fillLine = (fillRelay.data as { line: string }).line;
    expect(
      fillLine.startsWith(
        `${nickOf(taker)}!${nickOf(maker)}!fill 0 1000000 ${fillKeys.peerKeyHex} `,
      ),
    ).toBe(true);

    const pubkey = await makerApi.request('POST', '/v1/privmsg', {
      to: nickOf(taker),
      cmd: 'pubkey',
      body: '',
      route: 'directory',
    });
    expect(pubkey).toEqual({
      status: 200,
      body: { via: viaDirectory, confirmed: true, attempts: 1 },
    });
    const gotPubkey = await takerEvents.waitFor(
      'the !pubkey at the taker',
      isEvent('privmsg', { from: nickOf(maker), cmd: 'pubkey' }),
      WAIT_MS,
    );
    // The taker sees the maker's session key, the one the maker signs as btc_sig.
    expect(gotPubkey.data).toMatchObject({
      body: '',
      encrypted: false,
      via: viaDirectory,
      peerKeyHex: fillKeys.ownKeyHex,
      ownKeyHex: fillKeys.peerKeyHex,
    });

    const secret = 'api-test-plaintext';
    const auth = await takerApi.request('POST', '/v1/privmsg', {
      to: nickOf(maker),
      cmd: 'auth',
      body: secret,
      route: 'directory',
    });
    expect(auth).toEqual({
      status: 200,
      body: { via: viaDirectory, confirmed: true, attempts: 1 },
    });
    const gotAuth = await makerEvents.waitFor(
      'the !auth at the maker',
      isEvent('privmsg', { from: nickOf(taker), cmd: 'auth' }),
      WAIT_MS,
    );
    expect(gotAuth.data).toEqual({
      from: nickOf(taker),
      cmd: 'auth',
      body: secret,
      via: viaDirectory,
      encrypted: true,
      ownKeyHex: fillKeys.ownKeyHex,
      peerKeyHex: fillKeys.peerKeyHex,
    });
    const authRelay = await relays.waitFor(
      'the relay of the !auth',
      isEvent('relay', { kind: 'privmsg', cmd: 'auth' }),
      WAIT_MS,
    );
    expect(authRelay.data).toMatchObject({ from: nickOf(taker), to: nickOf(maker) });
    expect((authRelay.data as { line: string }).line).not.toContain(secret);
    // A directory node's stream carries relay events only.
    expect(relays.received.every((e) => e.event === 'relay')).toBe(true);
  });

  it('a TCP endpoint on 127.0.0.1:0 reports its bound port and serves the same API', async () => {
    const server = new ApiServer(
      { info: () => taker.info(), client: taker.client, directory: undefined },
      silentLogger(),
    );
    await server.listen({ kind: 'tcp', host: '127.0.0.1', port: 0 });
    try {
      const endpoint = server.endpoint;
      if (endpoint?.kind !== 'tcp')
        throw new Error(`not a TCP endpoint: ${JSON.stringify(endpoint)}`);
      expect(endpoint.host).toBe('127.0.0.1');
      expect(endpoint.port).toBeGreaterThan(0);
      const api = new ApiClient(endpoint);
      expect(await api.call('GET', '/health')).toEqual({ status: 'ok' });
      expect(await api.call('GET', '/v1/info')).toMatchObject({
        nick: nickOf(taker),
        role: 'taker',
      });
      expectError(await rawRequest(endpoint, 'POST', '/v1/pubmsg', '['), 400, 'ERR_API');
      // Over TCP a refused body must still be read, or the 413 is lost to a connection reset.
      // (Twice the limit: the size at which a reset was most frequent, in about half the tries.)
      const oversized = Buffer.alloc(2 * API_MAX_BODY_BYTES, 0x20);
      for (let i = 0; i < 20; i++) {
        expectError(await rawRequest(endpoint, 'POST', '/v1/pubmsg', oversized), 413, 'ERR_API');
      }
      expect(await api.call('GET', '/health')).toEqual({ status: 'ok' });
    } finally {
      await server.close();
    }
    await server.close(); // idempotent
  });

  it('a unix endpoint replaces a stale socket, and close() ends event streams and removes the socket', async () => {
    const socket = path.join(dir, 'extra.sock');
    // A stale socket: bound, then its server gone without removing the file.
    const { execFileSync } = await import('node:child_process');
    execFileSync(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(socket)}, () => process.exit(0))`,
    ]);
    expect((await fs.lstat(socket)).isSocket()).toBe(true);
    const server = new ApiServer(
      { info: () => maker.info(), client: maker.client, directory: undefined },
      silentLogger(),
    );
    await server.listen({ kind: 'unix', path: socket });
    const api = new ApiClient({ kind: 'unix', path: socket });
    expect(await api.call('GET', '/health')).toEqual({ status: 'ok' });
    const stream = await api.events();
    const ended = stream
      .waitFor('nothing', () => false, WAIT_MS)
      .then(
        () => 'resolved',
        (err: unknown) => (hasCode(err, 'ERR_CLOSED') ? 'closed' : String(err)),
      );
    await server.close();
    expect(await ended).toBe('closed');
    await expect(fs.stat(socket)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(api.request('GET', '/health')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('stopping a daemon ends its API: the event stream closes and the socket file is gone', async () => {
    const stream = takerEvents;
    const ended = stream
      .waitFor('nothing', () => false, WAIT_MS)
      .then(
        () => 'resolved',
        (err: unknown) => (hasCode(err, 'ERR_CLOSED') ? 'closed' : String(err)),
      );
    await taker.stop();
    expect(await ended).toBe('closed');
    await expect(fs.stat(sockets.taker)).rejects.toMatchObject({ code: 'ENOENT' });
    // The maker hears that the taker left the directory node (docs/protocol.md §3.2).
    await makerEvents.waitFor(
      'the taker leaving',
      isEvent('nickLeave', { nick: nickOf(taker) }),
      WAIT_MS,
    );
  });
});
