/**
 * The cap on request-body bytes the local API holds at once, all requests together
 * (docs/limits.md "Local API", "Memory bound"): a request whose body would pass it is answered
 * 503 `ERR_BUSY` after its body was read; once the bodies held are released, it is served. Raw
 * `net` sockets on loopback.
 */
import net from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/api/client.js';
import { ApiServer } from '../../src/api/server.js';
import { createLogger } from '../../src/log.js';

const servers: ApiServer[] = [];
const sockets: net.Socket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  for (const api of servers.splice(0)) await api.close();
});

describe('request bodies held at once', () => {
  it('are capped across requests: one past the cap gets 503 ERR_BUSY, and is served once the others are gone', async () => {
    // No node: a body read in full gets 409 "not running yet", one past the cap 503.
    const levels: number[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        levels.push((JSON.parse(chunk.toString('utf8')) as { level: number }).level);
        callback();
      },
    });
    const api = new ApiServer(
      { info: () => ({}), client: undefined, directory: undefined },
      createLogger({ level: 'debug', destination }),
    );
    servers.push(api);
    api.maxBodyBytesInFlight = 1_000;
    await api.listen({ kind: 'tcp', host: '127.0.0.1', port: 0 });
    const endpoint = api.endpoint;
    if (endpoint === undefined) throw new Error('the API did not listen');
    const client = new ApiClient(endpoint);
    if (endpoint.kind !== 'tcp') throw new Error('the API did not listen on TCP');

    // A slow client: 600 bytes of a 900-byte body, the rest never sent.
    const slow = net.createConnection(endpoint.port, '127.0.0.1');
    sockets.push(slow);
    slow.on('error', () => undefined);
    slow.write(
      'POST /v1/pubmsg HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 900\r\n\r\n' +
        `{"message":"${'a'.repeat(600 - 12)}`,
    );
    await expect.poll(() => api.bodyBytesInFlight).toBe(600);

    const body = { message: 'b'.repeat(500) };
    const refused = await client.request('POST', '/v1/pubmsg', body);
    expect(refused.status).toBe(503);
    expect(refused.body).toEqual({
      error: {
        code: 'ERR_BUSY',
        message: 'request bodies being read hold 1000 bytes, the most the API holds at once; retry',
      },
    });
    // The refused body was released, the slow one still held.
    expect(api.bodyBytesInFlight).toBe(600);
    // A documented answer a client can cause at will is not an error of ours (pino: 50 = error).
    expect(levels.filter((level) => level >= 50)).toEqual([]);

    slow.destroy();
    await expect.poll(() => api.bodyBytesInFlight).toBe(0);
    const served = await client.request('POST', '/v1/pubmsg', body);
    expect(served.status).toBe(409);
    expect(api.bodyBytesInFlight).toBe(0);
  });
});
