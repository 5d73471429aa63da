/**
 * What a client that does not read an ordinary answer (not a `/v1/events` stream) costs the local
 * API (docs/limits.md "Local API"): the answer is cut once the write deadline passes, and an idle
 * keep-alive connection is closed after its timeout. Raw `net` sockets on loopback; the deadlines
 * are set small.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/api/client.js';
import { ApiServer, type ApiServerOptions } from '../../src/api/server.js';
import { silentLogger } from '../../src/log.js';
import { Counters } from '../../src/node/counters.js';
import type { DirectoryNode } from '../../src/node/directory-node.js';

const servers: ApiServer[] = [];
const sockets: net.Socket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  for (const api of servers.splice(0)) await api.close();
});

/** Counters that resolve {@link counted} the first time `name` is added. */
class WatchedCounters extends Counters {
  readonly counted: Promise<void>;
  #resolve: () => void = () => undefined;
  readonly #name: string;

  constructor(name: string) {
    super();
    this.#name = name;
    this.counted = new Promise((resolve) => {
      this.#resolve = resolve;
    });
  }

  override add(name: string, by = 1): void {
    super.add(name, by);
    if (name === this.#name) this.#resolve();
  }
}

/** 32 MiB of `/v1/info`: far past what loopback's socket buffers absorb. */
const BIG = 'x'.repeat(32 * 1024 * 1024);

/** An API server on 127.0.0.1:0 whose `/v1/info` is {@link BIG}; its port and counters. */
async function serve(
  options: ApiServerOptions,
): Promise<{ port: number; counters: WatchedCounters; client: ApiClient }> {
  const counters = new WatchedCounters('evicted.slow-api-answer');
  // Only the counters of the node are read here.
  const directory = { counters } as unknown as DirectoryNode;
  const api = new ApiServer(
    { info: () => ({ big: BIG }), client: undefined, directory },
    silentLogger(),
    options,
  );
  servers.push(api);
  await api.listen({ kind: 'tcp', host: '127.0.0.1', port: 0 });
  const endpoint = api.endpoint;
  if (endpoint?.kind !== 'tcp') throw new Error('the API did not listen on TCP');
  return { port: endpoint.port, counters, client: new ApiClient(endpoint) };
}

/** A raw connection to `port`, registered for cleanup; errors (a reset) are ignored. */
function connect(port: number): net.Socket {
  const socket = net.createConnection(port, '127.0.0.1');
  sockets.push(socket);
  socket.on('error', () => undefined);
  return socket;
}

/** Resolves with every byte `socket` receives until it closes. */
function readUntilClosed(socket: net.Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('close', () => {
      resolve(Buffer.concat(chunks));
    });
    socket.resume();
  });
}

describe('an ordinary answer its client does not read', () => {
  it('is cut once the write deadline passes, counted; the server goes on', async () => {
    const { port, counters, client } = await serve({ writeDeadlineMs: 100 });
    const socket = connect(port);
    socket.pause();
    socket.write('GET /v1/info HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    // Without the cut nothing is ever counted, and this waits until the test times out.
    await counters.counted;
    expect(counters.get('evicted.slow-api-answer')).toBe(1);
    // What the kernel already held reaches the client, then the connection ends short.
    const received = await readUntilClosed(socket);
    expect(received.length).toBeGreaterThan(0);
    expect(received.length).toBeLessThan(BIG.length);
    expect(await client.request('GET', '/health')).toEqual({ status: 200, body: { status: 'ok' } });
  });

  it('is not cut when its client reads it', async () => {
    const { counters, client } = await serve({ writeDeadlineMs: 5_000 });
    const res = await client.request('GET', '/v1/info');
    expect(res.status).toBe(200);
    expect((res.body as { big: string }).big.length).toBe(BIG.length);
    expect(counters.get('evicted.slow-api-answer')).toBe(0);
  });
});

describe('an idle keep-alive connection', () => {
  it('is closed by the server once the keep-alive timeout passes after a complete exchange', async () => {
    const { port } = await serve({ keepAliveTimeoutMs: 100 });
    const socket = connect(port);
    const closed = readUntilClosed(socket);
    socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const text = (await closed).toString('utf8');
    expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(text).toMatch(/Keep-Alive: timeout=0/i);
    expect(text.endsWith('{"status":"ok"}')).toBe(true);
  });
});
