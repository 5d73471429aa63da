/**
 * What a request Node's HTTP parser refuses gets from the local API (docs/api.md "Errors",
 * docs/limits.md "Local API"): the API's JSON error with 400, 431 or 408, `Connection: close`,
 * and the connection closed; other connections are served as before. Raw `net` sockets on
 * loopback write the malformed bytes.
 */
import net from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/api/client.js';
import { ApiServer, type ApiServerOptions } from '../../src/api/server.js';
import { createLogger, silentLogger, type Logger } from '../../src/log.js';
import { Counters } from '../../src/node/counters.js';
import type { DirectoryNode } from '../../src/node/directory-node.js';

const servers: ApiServer[] = [];
const sockets: net.Socket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  for (const api of servers.splice(0)) await api.close();
});

/** An API server on 127.0.0.1:0 whose node has `counters`, its port and a client of it. */
async function serve(
  options: ApiServerOptions = {},
  logger: Logger = silentLogger(),
): Promise<{ port: number; client: ApiClient; counters: Counters }> {
  const counters = new Counters();
  // Only the counters of the node are read here.
  const directory = { counters } as unknown as DirectoryNode;
  const api = new ApiServer({ info: () => ({}), client: undefined, directory }, logger, options);
  servers.push(api);
  await api.listen({ kind: 'tcp', host: '127.0.0.1', port: 0 });
  const endpoint = api.endpoint;
  if (endpoint?.kind !== 'tcp') throw new Error('the API did not listen on TCP');
  return { port: endpoint.port, client: new ApiClient(endpoint), counters };
}

/** A raw answer: everything the server sent until it closed the connection. */
interface RawAnswer {
  readonly statusLine: string;
  readonly headers: Record<string, string>;
  readonly body: unknown;
  /** The server ended its side (FIN) before the connection closed. */
  readonly ended: boolean;
}

/**
 * Opens a connection, writes `bytes` (nothing when null) and resolves with what the server sent
 * once the connection closed (the server closes it: nothing here closes it first; with
 * `halfClose`, our side is ended after the bytes, the server's left to it).
 */
function exchange(port: number, bytes: string | null, halfClose = false): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(port, '127.0.0.1');
    sockets.push(socket);
    const chunks: Buffer[] = [];
    let ended = false;
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => {
      ended = true;
    });
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      const [statusLine = '', ...headerLines] = text.slice(0, split).split('\r\n');
      const headers = Object.fromEntries(
        headerLines.map((line) => {
          const colon = line.indexOf(':');
          return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
        }),
      );
      const bodyText = split < 0 ? '' : text.slice(split + 4);
      let body: unknown;
      try {
        body = JSON.parse(bodyText) as unknown;
      } catch {
        body = bodyText;
      }
      resolve({ statusLine, headers, body, ended });
      if (headers['content-length'] !== undefined)
        expect(Buffer.byteLength(bodyText)).toBe(Number(headers['content-length']));
    });
    if (bytes !== null) socket.write(bytes);
    if (halfClose) socket.end();
  });
}

/** Asserts the JSON error answer of a refused request and returns its message. */
function expectJsonError(answer: RawAnswer, statusLine: string): string {
  expect(answer.statusLine).toBe(statusLine);
  expect(answer.headers['content-type']).toBe('application/json');
  expect(answer.headers.connection).toBe('close');
  expect(answer.ended).toBe(true);
  const error = (answer.body as { error?: { code?: string; message?: string } }).error;
  expect(error?.code).toBe('ERR_API');
  return error?.message ?? '';
}

/**
 * Asserts that the refused request was counted under `counter`, and that another connection is
 * served as before.
 */
async function expectCountedAndOthersServed(
  { client, counters }: { client: ApiClient; counters: Counters },
  counter: string,
): Promise<void> {
  expect(counters.get(counter)).toBe(1);
  expect(await client.request('GET', '/health')).toEqual({ status: 200, body: { status: 'ok' } });
}

describe('a request the HTTP parser refuses', () => {
  it('gets 400 ERR_API naming the parser reason for a garbage request line; another connection is served', async () => {
    const api = await serve();
    const answer = await exchange(api.port, 'HELLO THERE\r\n\r\n');
    expect(expectJsonError(answer, 'HTTP/1.1 400 Bad Request')).toMatch(
      /^malformed request: .*method/i,
    );
    await expectCountedAndOthersServed(api, 'refused.api-bad-request');
  });

  it('gets 400 ERR_API for an HTTP/1.1 request without a Host header (RFC 9112 §3.2), not a bare 400', async () => {
    const { port } = await serve();
    const answer = await exchange(port, 'GET /health HTTP/1.1\r\n\r\n');
    expect(expectJsonError(answer, 'HTTP/1.1 400 Bad Request')).toBe(
      'an HTTP/1.1 request needs a Host header',
    );
    // HTTP/1.0 has no Host header: served.
    const old = await exchange(port, 'GET /health HTTP/1.0\r\n\r\n');
    expect(old.statusLine).toBe('HTTP/1.1 200 OK');
  });

  it('gets 400 ERR_API for a malformed chunked body', async () => {
    const { port } = await serve();
    const answer = await exchange(
      port,
      'POST /v1/pubmsg HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    );
    expect(expectJsonError(answer, 'HTTP/1.1 400 Bad Request')).toMatch(
      /^malformed request: .*chunk/i,
    );
  });

  it('gets 431 ERR_API naming the size for a request head over 16 KiB; another connection is served', async () => {
    const api = await serve();
    const answer = await exchange(
      api.port,
      `GET /health HTTP/1.1\r\nHost: x\r\nX-Filler: ${'a'.repeat(20_000)}\r\n\r\n`,
    );
    expect(expectJsonError(answer, 'HTTP/1.1 431 Request Header Fields Too Large')).toBe(
      'request head over 16384 bytes',
    );
    await expectCountedAndOthersServed(api, 'refused.api-bad-request');
  });

  it('gets 408 ERR_API naming the time for a request head not complete in time; another connection is served', async () => {
    const api = await serve({ headersTimeoutMs: 200 });
    // Half a request line, then nothing: the answer comes when the server's deadline passes.
    const answer = await exchange(api.port, 'GET /hea');
    expect(expectJsonError(answer, 'HTTP/1.1 408 Request Timeout')).toBe(
      'request head not complete within 0.2 s',
    );
    await expectCountedAndOthersServed(api, 'refused.api-request-timeout');
  });

  it('gets 408 ERR_API for a request whose body is not complete in time', async () => {
    const { port } = await serve({ headersTimeoutMs: 200, requestTimeoutMs: 300 });
    const answer = await exchange(
      port,
      'POST /v1/pubmsg HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"mess',
    );
    expect(expectJsonError(answer, 'HTTP/1.1 408 Request Timeout')).toBe(
      'request not complete within 0.3 s',
    );
  });

  it('closes the connection without a second answer when the malformed request follows one whose answer has started', async () => {
    const api = await serve();
    // Pipelined: the parser reads the garbage in the same pass as the good request, while the
    // latter's answer is still the connection's message. A 400 written then would run into it.
    const answer = await exchange(
      api.port,
      'GET /health HTTP/1.1\r\nHost: localhost\r\n\r\nHELLO THERE\r\n\r\n',
    );
    expect(answer.statusLine).toBe('HTTP/1.1 200 OK');
    expect(answer.body).toEqual({ status: 'ok' });
    await expectCountedAndOthersServed(api, 'refused.api-bad-request');
  });

  it('gets 400 ERR_API saying the request is incomplete when the client closes its side mid-request', async () => {
    const { port } = await serve();
    // Half a request line, then the client's FIN: the server can still answer.
    const answer = await exchange(port, 'GET /hea', true);
    expect(expectJsonError(answer, 'HTTP/1.1 400 Bad Request')).toBe(
      'request incomplete: the client closed its side of the connection mid-request',
    );
  });
});

describe('a request target URL cannot parse', () => {
  it.each(['http://[', 'http://a:99999/', 'http://%zz/'])(
    'gets 400 ERR_API for GET %s, logged below error level',
    async (target) => {
      const levels: number[] = [];
      const destination = new Writable({
        write(chunk: Buffer, _encoding, callback) {
          levels.push((JSON.parse(chunk.toString('utf8')) as { level: number }).level);
          callback();
        },
      });
      const api = await serve({}, createLogger({ level: 'debug', destination }));
      const answer = await exchange(
        api.port,
        `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
      );
      expect(expectJsonError(answer, 'HTTP/1.1 400 Bad Request')).toBe(
        'malformed request target (not a valid URL)',
      );
      // pino's level 50 is error: a client's mistake is not the daemon's failure.
      expect(levels.filter((level) => level >= 50)).toEqual([]);
      expect(await api.client.request('GET', '/health')).toEqual({
        status: 200,
        body: { status: 'ok' },
      });
    },
  );
});
