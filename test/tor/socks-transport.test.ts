/**
 * SocksDialer (src/peer/socks-transport.ts) against a small SOCKS5 server on a unix socket and on
 * 127.0.0.1:0: stream isolation credentials per purpose and per dial (RFC 1929 sub-negotiation
 * bytes read by the server), onion names passed to the proxy as names, onion-only targets
 * (docs/protocol.md §8.3), errors that name the directory node or peer and tor's reply, the
 * connect deadline, and the start-up check of the proxy address.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hasCode, SocksError } from '../../src/errors.js';
import {
  SOCKS_ISOLATION_USERNAMES,
  SocksDialer,
  torrcSocksPortLine,
} from '../../src/peer/socks-transport.js';
import type { Endpoint } from '../../src/tor/endpoint.js';
import { onionAddressFromPublicKey } from '../../src/wire/location.js';

/** A v3 onion with a valid checksum (Tor rend-spec-v3). */
const ONION = onionAddressFromPublicKey(Uint8Array.from({ length: 32 }, (_, i) => i));

/** What one client sent: RFC 1929 credentials and the CONNECT destination. */
interface Request {
  username: string;
  password: string;
  atyp: number;
  host: string;
  port: number;
}

/** A SOCKS5 server that requires username/password, answers CONNECT with `reply`, then echoes. */
class SocksServer {
  readonly requests: Request[] = [];
  /** REP of the CONNECT answer; 0 = success. */
  reply = 0;
  /** Never answer (a hanging proxy). */
  silent = false;
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();

  constructor() {
    this.#server = net.createServer((socket) => {
      this.#handle(socket);
    });
  }

  listen(where: { path: string } | { port: 0 }): Promise<Endpoint> {
    return new Promise((resolve) => {
      if ('path' in where) {
        this.#server.listen(where.path, () => {
          resolve({ kind: 'unix', path: where.path });
        });
      } else {
        this.#server.listen(0, '127.0.0.1', () => {
          resolve({
            kind: 'tcp',
            host: '127.0.0.1',
            port: (this.#server.address() as net.AddressInfo).port,
          });
        });
      }
    });
  }

  close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    return new Promise((resolve) =>
      this.#server.close(() => {
        resolve();
      }),
    );
  }

  #handle(socket: net.Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffer = Buffer.alloc(0);
    let step: 'greeting' | 'auth' | 'connect' | 'echo' = 'greeting';
    const request: Partial<Request> = {};
    socket.on('data', (chunk: Buffer) => {
      if (this.silent) return;
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        if (step === 'greeting') {
          const n = buffer[1];
          if (n === undefined || buffer.length < 2 + n) return;
          const methods = [...buffer.subarray(2, 2 + n)];
          buffer = buffer.subarray(2 + n);
          if (!methods.includes(0x02)) {
            socket.end(Buffer.from([0x05, 0xff]));
            return;
          }
          socket.write(Buffer.from([0x05, 0x02]));
          step = 'auth';
        } else if (step === 'auth') {
          const ulen = buffer[1];
          if (ulen === undefined) return;
          const plen = buffer[2 + ulen];
          if (plen === undefined || buffer.length < 3 + ulen + plen) return;
          request.username = buffer.subarray(2, 2 + ulen).toString('utf8');
          request.password = buffer.subarray(3 + ulen, 3 + ulen + plen).toString('utf8');
          buffer = buffer.subarray(3 + ulen + plen);
          socket.write(Buffer.from([0x01, 0x00]));
          step = 'connect';
        } else if (step === 'connect') {
          const atyp = buffer[3];
          const len = buffer[4];
          if (atyp === undefined || len === undefined || buffer.length < 5 + len + 2) return;
          request.atyp = atyp;
          request.host = buffer.subarray(5, 5 + len).toString('utf8');
          request.port = buffer.readUInt16BE(5 + len);
          buffer = buffer.subarray(5 + len + 2);
          this.requests.push(request as Request);
          socket.write(Buffer.from([0x05, this.reply, 0x00, 0x01, 0, 0, 0, 0, 0, 0]));
          if (this.reply !== 0) {
            socket.end();
            return;
          }
          step = 'echo';
        } else {
          if (buffer.length === 0) return;
          socket.write(buffer);
          buffer = Buffer.alloc(0);
          return;
        }
      }
    });
  }
}

/** Rejection of `promise` (fails the test if it resolves). */
async function failure(promise: Promise<net.Socket>): Promise<Error> {
  return promise.then(
    (socket) => {
      socket.destroy();
      throw new Error('the dial succeeded');
    },
    (err: unknown) => err as Error,
  );
}

let dir: string;
let server: SocksServer;
let proxy: Endpoint;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'onionmc-socks-transport-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

afterEach(async () => {
  await server.close();
});

describe('SocksDialer.dial', () => {
  it('isolates directory and peer streams by username, and every dial by its own password', async () => {
    server = new SocksServer();
    proxy = await server.listen({ path: join(dir, 'socks-a.sock') });
    const dialer = new SocksDialer({ proxy, timeoutMs: 5_000 });
    const other = new SocksDialer({ proxy, timeoutMs: 5_000 });
    for (const [d, purpose] of [
      [dialer, 'directory'],
      [dialer, 'peer'],
      [dialer, 'directory'],
      [other, 'directory'],
    ] as const) {
      const socket = await d.dial({ host: ONION, port: 5222 }, purpose);
      socket.destroy();
    }
    const [first, second, third, fourth] = server.requests;
    expect(first?.username).toBe('onionmc-directory');
    expect(second?.username).toBe('onionmc-peer');
    expect(third?.username).toBe('onionmc-directory');
    expect(SOCKS_ISOLATION_USERNAMES).toEqual({
      directory: 'onionmc-directory',
      peer: 'onionmc-peer',
    });
    // One random string per dialer (per daemon process), then the dial's number: a redial of the
    // same directory node never shares the circuit of the dial before it.
    const processPart = /^([0-9a-f]{32})-\d+$/.exec(first?.password ?? '')?.[1];
    expect(processPart).toBeDefined();
    expect([first, second, third].map((r) => r?.password)).toEqual(
      [1, 2, 3].map((n) => `${processPart!}-${String(n)}`),
    );
    // Another dialer (another daemon process) gets another random string, so tor isolates them too.
    expect(fourth?.password).toMatch(/^[0-9a-f]{32}-1$/);
    expect(fourth?.password).not.toBe(first?.password);
  });

  it('passes the onion name to the proxy as a name (ATYP 3) and returns a working stream', async () => {
    server = new SocksServer();
    proxy = await server.listen({ port: 0 });
    const dialer = new SocksDialer({ proxy, timeoutMs: 5_000, isolationPassword: 'fixed' });
    const socket = await dialer.dial({ host: ONION, port: 5222 }, 'peer');
    expect(server.requests).toEqual([
      { username: 'onionmc-peer', password: 'fixed-1', atyp: 3, host: ONION, port: 5222 },
    ]);
    const echoed = new Promise<string>((resolve) =>
      socket.once('data', (chunk: Buffer) => {
        resolve(chunk.toString('utf8'));
      }),
    );
    socket.write('ping\n');
    expect(await echoed).toBe('ping\n');
    socket.destroy();
  });

  it('refuses hosts that are not v3 onions before any I/O (no clearnet, docs/protocol.md §8.3)', async () => {
    server = new SocksServer();
    proxy = await server.listen({ path: join(dir, 'socks-b.sock') });
    const dialer = new SocksDialer({ proxy, timeoutMs: 5_000 });
    for (const host of [
      '127.0.0.1',
      'example.com',
      `${'a'.repeat(56)}.onion`,
      ONION.toUpperCase(),
    ]) {
      const err = await failure(dialer.dial({ host, port: 5222 }, 'peer'));
      expect(hasCode(err, 'ERR_DIAL'), host).toBe(true);
      expect(err.message).toContain(`peer ${host}:5222: not a v3 onion address`);
    }
    expect(server.requests).toEqual([]);
  });

  it("names the directory node and tor's reply when tor refuses the stream", async () => {
    server = new SocksServer();
    proxy = await server.listen({ path: join(dir, 'socks-c.sock') });
    server.reply = 0xf2;
    const dialer = new SocksDialer({ proxy, timeoutMs: 5_000 });
    const err = await failure(dialer.dial({ host: ONION, port: 5222 }, 'directory'));
    expect(err).toBeInstanceOf(SocksError);
    expect(err instanceof SocksError ? err.reply : undefined).toBe(0xf2);
    expect(hasCode(err, 'ERR_SOCKS_ONION_INTRO_FAILED')).toBe(true);
    expect(err.message.startsWith(`directory node ${ONION}:5222: `)).toBe(true);
    expect(err.message).toContain('0xF2 (onion service introduction failed');
    expect(err.message).toContain(`unix:${join(dir, 'socks-c.sock')}`);
  });

  it('gives up at the configured deadline, naming the peer', async () => {
    server = new SocksServer();
    proxy = await server.listen({ port: 0 });
    server.silent = true;
    const dialer = new SocksDialer({ proxy, timeoutMs: 150 });
    const startedAt = Date.now();
    const err = await failure(dialer.dial({ host: ONION, port: 5222 }, 'peer'));
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(140);
    expect(hasCode(err, 'ERR_SOCKS_TIMEOUT')).toBe(true);
    expect(err.message.startsWith(`peer ${ONION}:5222: `)).toBe(true);
  });

  it('stops when the signal aborts', async () => {
    server = new SocksServer();
    proxy = await server.listen({ port: 0 });
    server.silent = true;
    const dialer = new SocksDialer({ proxy, timeoutMs: 10_000 });
    const abort = new AbortController();
    const pending = failure(dialer.dial({ host: ONION, port: 5222 }, 'directory', abort.signal));
    abort.abort();
    const err = await pending;
    expect(hasCode(err, 'ERR_ABORTED')).toBe(true);
  });
});

describe('SocksDialer.checkProxy', () => {
  it('resolves when something listens at the proxy address', async () => {
    server = new SocksServer();
    proxy = await server.listen({ path: join(dir, 'socks-d.sock') });
    await new SocksDialer({ proxy, timeoutMs: 1_000 }).checkProxy();
    expect(server.requests).toEqual([]);
  });

  it('names the missing unix socket and the torrc line that opens it', async () => {
    server = new SocksServer();
    const path = join(dir, 'no-such-socks.sock');
    const err = await new SocksDialer({ proxy: { kind: 'unix', path }, timeoutMs: 1_000 })
      .checkProxy()
      .then(
        () => undefined,
        (e: unknown) => e as Error,
      );
    expect(hasCode(err, 'ERR_SOCKS_PROXY_UNREACHABLE')).toBe(true);
    expect(err?.message).toContain(`cannot reach tor's SOCKS proxy at unix:${path} (ENOENT)`);
    expect(err?.message).toContain(`"SocksPort unix:${path}"`);
    expect(err?.message).not.toMatch(/\broot\b|sudo/);
  });

  it('names a closed TCP port and the SocksPort line', async () => {
    server = new SocksServer();
    const closed = await server.listen({ port: 0 });
    await server.close();
    server = new SocksServer();
    if (closed.kind !== 'tcp') throw new Error('expected tcp');
    const err = await new SocksDialer({ proxy: closed, timeoutMs: 1_000 }).checkProxy().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toContain(
      `cannot reach tor's SOCKS proxy at 127.0.0.1:${closed.port} (ECONNREFUSED)`,
    );
    expect(err?.message).toContain(`"SocksPort ${closed.port}"`);
  });
});

describe('torrcSocksPortLine', () => {
  it('writes the SocksPort line for each kind of proxy address', () => {
    expect(torrcSocksPortLine({ kind: 'tcp', host: 'localhost', port: 9050 })).toBe(
      'SocksPort 9050',
    );
    expect(torrcSocksPortLine({ kind: 'tcp', host: '10.0.0.2', port: 9150 })).toBe(
      'SocksPort 10.0.0.2:9150',
    );
    expect(torrcSocksPortLine({ kind: 'unix', path: '/run/tor/socks' })).toBe(
      'SocksPort unix:/run/tor/socks',
    );
  });
});
