/**
 * ApiClient against loopback HTTP servers that answer what no onionmc daemon answers: a body over
 * the client's cap, a body that is not JSON. Each rejects with a typed `ERR_API` naming it.
 */
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { API_CLIENT_MAX_RESPONSE_BYTES, ApiClient } from '../../src/api/client.js';
import { OnionmcError } from '../../src/errors.js';

const servers: http.Server[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) =>
      server.close(() => {
        resolve();
      }),
    );
  }
});

/** An HTTP server on 127.0.0.1:0 answering every request with `handler`, and a client of it. */
async function serve(handler: http.RequestListener): Promise<ApiClient> {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('no address');
  return new ApiClient({ kind: 'tcp', host: '127.0.0.1', port: address.port });
}

describe('ApiClient', () => {
  it('caps the answer body at 64 MiB by default', () => {
    expect(API_CLIENT_MAX_RESPONSE_BYTES).toBe(64 * 1024 * 1024);
  });

  it('rejects an answer over its cap with ERR_API naming the cap, and stops reading it', async () => {
    let serverSaw: (closed: boolean) => void = () => undefined;
    const serverDone = new Promise<boolean>((resolve) => (serverSaw = resolve));
    const client = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      // A 32 MiB body, written as the client takes it: far more than socket buffers hold, so it
      // is finished only if the client reads it all.
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      let left = 512;
      const pump = (): void => {
        while (left > 0 && !res.destroyed) {
          left--;
          if (left === 0) res.end(chunk);
          else if (!res.write(chunk)) return;
        }
      };
      res.on('drain', pump);
      res.on('close', () => {
        serverSaw(!res.writableFinished);
      });
      pump();
    });
    client.maxResponseBytes = 100_000;
    const failure = await client.request('GET', '/v1/orderbook').catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(OnionmcError);
    expect((failure as OnionmcError).code).toBe('ERR_API');
    expect((failure as OnionmcError).message).toMatch(
      /GET \/v1\/orderbook: 200 answer over 100000 bytes/,
    );
    // The client closed the connection mid-body: the server's endless answer was cut.
    expect(await serverDone).toBe(true);
  });

  it('reads an answer up to its cap', async () => {
    const body = JSON.stringify({ padding: 'x'.repeat(1000) });
    const client = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    });
    client.maxResponseBytes = Buffer.byteLength(body);
    expect(await client.request('GET', '/v1/info')).toEqual({
      status: 200,
      body: { padding: 'x'.repeat(1000) },
    });
  });

  it.each([200, 404])(
    'rejects a %i answer that is not JSON with ERR_API, not a SyntaxError',
    async (status) => {
      const client = await serve((_req, res) => {
        res.writeHead(status, { 'content-type': 'text/html' });
        res.end('<html>not the daemon</html>');
      });
      for (const attempt of [client.request('GET', '/v1/info'), client.call('GET', '/v1/info')]) {
        const failure = await attempt.catch((err: unknown) => err);
        expect(failure).toBeInstanceOf(OnionmcError);
        expect((failure as OnionmcError).code).toBe('ERR_API');
        expect((failure as OnionmcError).message).toBe(
          `GET /v1/info: ${status} answer is not JSON (27 bytes, text/html): is this an onionmc daemon?`,
        );
      }
    },
  );

  it('ends an event stream whose event data is not JSON: waitFor rejects ERR_API, nothing thrown', async () => {
    const client = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: privmsg\ndata: {"nick":"J5a"}\n\nevent: privmsg\ndata: {not json\n\n');
    });
    const stream = await client.events();
    const failure = await stream
      .waitFor('a pubmsg', (e) => e.event === 'pubmsg', 10_000)
      .catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(OnionmcError);
    expect((failure as OnionmcError).code).toBe('ERR_API');
    expect((failure as OnionmcError).message).toBe(
      'GET /v1/events: event "privmsg" has data that is not JSON',
    );
    // The events before it were delivered.
    expect(stream.received).toEqual([{ event: 'privmsg', data: { nick: 'J5a' } }]);
  });

  it('ends an event stream whose event grows over the cap: waitFor rejects ERR_API naming it', async () => {
    const client = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      // An event that never ends, in pieces.
      res.write(`event: privmsg\ndata: "${'x'.repeat(600)}`);
      res.write('x'.repeat(600));
    });
    client.maxResponseBytes = 1000;
    const stream = await client.events();
    const failure = await stream
      .waitFor('a privmsg', () => true, 10_000)
      .catch((err: unknown) => err);
    expect((failure as OnionmcError).code).toBe('ERR_API');
    expect((failure as OnionmcError).message).toBe(
      'GET /v1/events: an event over 1000 characters; not read further',
    );
  });

  it('parses events as the SSE standard has them: CRLF lines, "data:" without a space, comments, data over several lines', async () => {
    const client = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': a comment line\r\nevent:peer\r\ndata:{"nick":"J5a"}\r\n\r\n');
      res.write('event: privmsg\ndata: {"nick":\ndata: "J5b"}\n\n');
    });
    const stream = await client.events();
    await stream.waitFor('the privmsg', (e) => e.event === 'privmsg', 10_000);
    expect(stream.received).toEqual([
      { event: 'peer', data: { nick: 'J5a' } },
      { event: 'privmsg', data: { nick: 'J5b' } },
    ]);
    stream.close();
  });
});
