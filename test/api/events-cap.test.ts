/**
 * A `/v1/events` client that does not read is cut once its unsent events pass the cap
 * (docs/limits.md), while a directory node relays a privmsg flood; the node goes on.
 */
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { API_CLOSE_DRAIN_MS, ApiServer } from '../../src/api/server.js';
import { silentLogger } from '../../src/log.js';
import { DirectoryFixture, waitUntil } from '../node/directory-clients.js';

const fx = new DirectoryFixture();
const unlimited = { ratePerSecond: 1e9, burst: 1e9 };
afterEach(async () => {
  await fx.cleanup();
});

describe('/v1/events buffer cap', () => {
  it('cuts a stream that does not read once its unsent events pass the cap', async () => {
    const dn = await fx.directory({
      limits: {
        messages: unlimited,
        readBytes: unlimited,
        deliveries: unlimited,
        orderbook: unlimited,
        getpeerlist: unlimited,
        globalDeliveries: unlimited,
        offences: unlimited,
        banMs: 1,
      },
    });
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'onionmc-events-'));
    const socketPath = path.join(dir, 'api.sock');
    const api = new ApiServer(
      { info: () => ({}), client: undefined, directory: dn.node },
      silentLogger(),
    );
    api.maxEventBufferBytes = 64 * 1024;
    await api.listen({ kind: 'unix', path: socketPath });
    try {
      // A raw HTTP client that sends its request and never reads.
      const client = net.createConnection(socketPath);
      client.pause();
      const closed = new Promise<void>((resolve) => {
        client.once('close', () => {
          resolve();
        });
      });
      client.on('error', () => undefined);
      let received = 0;
      client.on('data', (chunk: Buffer) => {
        received += chunk.length;
      });
      client.write('GET /v1/events HTTP/1.1\r\nHost: localhost\r\n\r\n');
      const sender = await fx.join(dn);
      const recipient = await fx.join(dn);
      const body = 'x'.repeat(20_000);
      // 300 privmsgs of 20 kB: 6 MB of relay events, far past the socket buffers and the cap.
      for (let sent = 0; sent < 300; sent += 5) {
        for (let i = 0; i < 5; i++) sender.privmsg(recipient.nick, 'tx', body);
        await waitUntil('the relays', () => dn.node.counters.get('relayed.privmsg') === sent + 5);
      }
      // Read now: the stream must end (cut by the server), not go on.
      client.resume();
      await closed;
      expect(received).toBeLessThan(6_000_000);
      expect(dn.node.counters.get('evicted.slow-event-stream')).toBe(1);
      // The node goes on relaying.
      expect(dn.node.stats().handshaked).toBe(2);
    } finally {
      await api.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

describe('close with stalled clients', () => {
  it('cuts off, after API_CLOSE_DRAIN_MS, a request whose body never completes', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'onionmc-api-close-'));
    const socketPath = path.join(dir, 'api.sock');
    const api = new ApiServer(
      { info: () => ({}), client: undefined, directory: undefined },
      silentLogger(),
    );
    await api.listen({ kind: 'unix', path: socketPath });
    try {
      const client = net.createConnection(socketPath);
      client.on('error', () => undefined);
      const closed = new Promise<void>((resolve) =>
        client.once('close', () => {
          resolve();
        }),
      );
      await new Promise<void>((resolve) =>
        client.once('connect', () => {
          resolve();
        }),
      );
      // Node's own request timeout is 300 s: without the cut-off, close() waits that long.
      client.write(
        'POST /v1/pubmsg HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{"message": "',
      );
      await waitUntil('the request to reach the server', () => client.bytesWritten > 0);
      const startedAt = Date.now();
      await api.close();
      const closeMs = Date.now() - startedAt;
      expect(closeMs).toBeGreaterThanOrEqual(API_CLOSE_DRAIN_MS - 50);
      expect(closeMs).toBeLessThan(API_CLOSE_DRAIN_MS + 2_000);
      await closed;
    } finally {
      await api.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

describe('events after close', () => {
  it('drops an event emitted after close() ended the streams instead of writing after the end', async () => {
    let emit: ((name: string, payload: unknown) => void) | undefined;
    const api = new ApiServer(
      {
        info: () => ({}),
        client: undefined,
        directory: undefined,
        subscribe: (listener) => {
          emit = listener;
          return () => undefined;
        },
      },
      silentLogger(),
    );
    await api.listen({ kind: 'tcp', host: '127.0.0.1', port: 0 });
    const endpoint = api.endpoint;
    if (endpoint?.kind !== 'tcp') throw new Error('the API did not listen on TCP');
    const client = net.createConnection(endpoint.port, '127.0.0.1');
    client.on('error', () => undefined);
    const subscribed = new Promise<void>((resolve) => {
      client.once('data', () => {
        resolve();
      });
    });
    client.write('GET /v1/events HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await subscribed;
    const closing = api.close();
    // The daemon stopping still emits (a peer link closing): an uncaught write-after-end before.
    expect(() => emit?.('peer', { nick: 'J5xxxxxxxxxxxxxx' })).not.toThrow();
    client.destroy();
    await closing;
  });
});
