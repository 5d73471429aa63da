/**
 * What the local API answers while the node is not running yet, and the caps on `/v1/events`
 * streams and on connections (docs/limits.md "Local API"), against an ApiServer on loopback TCP.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/api/client.js';
import { ApiServer, type ApiBackend } from '../../src/api/server.js';
import { infoCommand } from '../../src/cli/client-commands.js';
import { silentLogger } from '../../src/log.js';
import { Counters } from '../../src/node/counters.js';
import type { DirectoryNode } from '../../src/node/directory-node.js';

const servers: ApiServer[] = [];
const sockets: net.Socket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  for (const api of servers.splice(0)) await api.close();
});

/** An API server on 127.0.0.1:0 and a client of it. */
async function serve(backend: ApiBackend): Promise<{ api: ApiServer; client: ApiClient }> {
  const api = new ApiServer(backend, silentLogger());
  servers.push(api);
  await api.listen({ kind: 'tcp', host: '127.0.0.1', port: 0 });
  const endpoint = api.endpoint;
  if (endpoint === undefined) throw new Error('the API did not listen');
  return { api, client: new ApiClient(endpoint) };
}

/** The error of a JSON answer. */
function errorOf(body: unknown): { code?: string; message?: string } | undefined {
  return (body as { error?: { code?: string; message?: string } } | undefined)?.error;
}

describe('the local API before the node runs', () => {
  it('answers the node routes 409 saying the node is not running yet, not that it is a directory node', async () => {
    // The API listens before the node starts (tor may bootstrap for minutes meanwhile).
    const { client } = await serve({ info: () => ({}), client: undefined, directory: undefined });
    for (const [method, path, body] of [
      ['POST', '/v1/privmsg', { to: 'J5xxxxxxxxxxxxxx', cmd: 'fill', body: '1' }],
      ['POST', '/v1/pubmsg', { message: '!orderbook' }],
      ['GET', '/v1/orderbook', undefined],
      ['GET', '/v1/reach?nick=J5xxxxxxxxxxxxxx', undefined],
      ['PUT', '/v1/offers', { offers: [] }],
      ['POST', '/v1/orderbook/answer', { to: 'J5xxxxxxxxxxxxxx' }],
    ] as const) {
      const res = await client.request(method, path, body);
      expect(res.status, `${method} ${path}`).toBe(409);
      const error = errorOf(res.body);
      expect(error?.message, `${method} ${path}`).toMatch(/not running yet/);
      expect(error?.message, `${method} ${path}`).not.toMatch(/directory node/);
    }
  });
});

describe('/v1/events streams', () => {
  it('refuses a stream past the cap with 503 ERR_BUSY naming it, and serves one again once a stream closed', async () => {
    const { api, client } = await serve({
      info: () => ({}),
      client: undefined,
      directory: undefined,
      subscribe: () => () => undefined,
    });
    api.maxEventStreams = 3;
    const endpoint = api.endpoint;
    if (endpoint?.kind !== 'tcp') throw new Error('the API did not listen on TCP');
    // Raw clients that open a stream and never read it: each holds its buffer on the server.
    const open = async (): Promise<net.Socket> => {
      const socket = net.createConnection(endpoint.port, '127.0.0.1');
      sockets.push(socket);
      socket.on('error', () => undefined);
      await new Promise<void>((resolve) => {
        socket.once('data', () => {
          resolve();
        });
        socket.write('GET /v1/events HTTP/1.1\r\nHost: localhost\r\n\r\n');
      });
      socket.pause();
      return socket;
    };
    const streams = [await open(), await open(), await open()];
    const refused = await client.request('GET', '/v1/events');
    expect(refused.status).toBe(503);
    expect(errorOf(refused.body)?.code).toBe('ERR_BUSY');
    expect(errorOf(refused.body)?.message).toMatch(/3 event streams are open/);
    // A closed stream gives its place back.
    const first = streams[0];
    if (first === undefined) throw new Error('no stream');
    const gone = new Promise<void>((resolve) => first.once('close', resolve));
    first.destroy();
    await gone;
    const stream = await retryUntilOpen(client);
    stream.close();
  });
});

/**
 * Opens `/v1/events`, retrying while the server has not yet seen the closed stream go (its
 * 'close' comes after the client's): bounded to 100 tries.
 */
async function retryUntilOpen(client: ApiClient): Promise<{ close(): void }> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await client.events();
    } catch (err) {
      if (attempt >= 100) throw err;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
}

describe('API connections', () => {
  it('closes a connection past the cap at once and counts it; a closed one gives its place back', async () => {
    const counters = new Counters();
    // Only the counters of the node are read here.
    const directory = { counters } as unknown as DirectoryNode;
    const { api, client } = await serve({ info: () => ({}), client: undefined, directory });
    api.maxConnections = 3;
    const endpoint = api.endpoint;
    if (endpoint?.kind !== 'tcp') throw new Error('the API did not listen on TCP');
    /** A raw connection that asks for /health and keeps the connection (keep-alive). */
    const connect = (): Promise<{ socket: net.Socket; answered: boolean }> =>
      new Promise((resolve) => {
        const socket = net.createConnection(endpoint.port, '127.0.0.1');
        sockets.push(socket);
        socket.on('error', () => undefined);
        socket.once('data', () => {
          resolve({ socket, answered: true });
        });
        socket.once('close', () => {
          resolve({ socket, answered: false });
        });
        socket.write('GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n');
      });
    const held = [await connect(), await connect(), await connect()];
    expect(held.map((c) => c.answered)).toEqual([true, true, true]);
    const refused = await connect();
    expect(refused.answered).toBe(false);
    expect(counters.get('refused.api-connections-full')).toBe(1);
    // `onionmc info` says the daemon closed the connection, not that no daemon answers.
    await expect(infoCommand(client, false, { line: () => undefined })).rejects.toThrow(
      /closed the connection at once \(ECONNRESET\): it may have its most API connections open/,
    );
    expect(counters.get('refused.api-connections-full')).toBe(2);
    // One of the held connections goes: a new one is served again.
    const first = held[0];
    if (first === undefined) throw new Error('no connection');
    const gone = new Promise<void>((resolve) => first.socket.once('close', resolve));
    first.socket.destroy();
    await gone;
    for (let attempt = 0; ; attempt++) {
      // The server sees the close just after the client: bounded retries until it has.
      const res = await client.request('GET', '/health').catch(() => undefined);
      if (res?.status === 200) break;
      expect(attempt).toBeLessThan(100);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  });
});
