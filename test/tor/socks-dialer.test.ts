/**
 * socksDial against a small scripted SOCKS5 server on 127.0.0.1:0 and on a unix socket: the bytes
 * the dialer writes (RFC 1928 §3-§4, RFC 1929 §2) are checked exactly, and every failure the
 * server can produce must come back as a SocksError naming the target and the proxy.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SocksError, hasCode, socksCodeForReply, type ErrorCode } from '../../src/errors.js';
import type { Endpoint } from '../../src/tor/endpoint.js';
import {
  SOCKS5_REPLY_MEANINGS,
  describeSocksReply,
  socksDial,
} from '../../src/tor/socks-dialer.js';

const ONION = 'dvyx2fzobqtnzxrs2cnc2mfvzymq6sotxmwbdpagp3bfgcrcbw7cbqyd.onion';
const ONION_PORT = 5222;

/** What one connection to the fake server sent, message by message. */
interface Exchange {
  greeting?: Buffer;
  auth?: Buffer;
  request?: Buffer;
  /** Resolves when the client side closed the connection. */
  closed: Promise<void>;
}

/** How the fake proxy answers. */
interface Script {
  /** Do not answer anything (a proxy that hangs). */
  silent?: boolean;
  /** Answer the greeting with these raw bytes instead of `05 METHOD`, then close. */
  rawGreetingAnswer?: Buffer;
  /** Close the connection right after reading the greeting. */
  closeAfterGreeting?: boolean;
  /** METHOD to select; default: 02 if offered, else 00. */
  method?: number;
  /** RFC 1929 status; default 00. */
  authStatus?: number;
  /** REP; default 00. */
  reply?: number;
  /** Send the CONNECT reply one byte per write, each on a later turn of the event loop. */
  splitReply?: boolean;
  /** After a successful reply: send this line in the same write, then echo what comes in. */
  banner?: string;
}

/** A scripted SOCKS5 server; one instance serves TCP and a unix socket. */
class FakeSocksServer {
  readonly exchanges: Exchange[] = [];
  script: Script = {};
  private readonly servers: net.Server[] = [];
  private readonly sockets = new Set<net.Socket>();

  async listenTcp(): Promise<Endpoint> {
    const server = this.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address() as net.AddressInfo;
    return { kind: 'tcp', host: '127.0.0.1', port: address.port };
  }

  async listenUnix(path: string): Promise<Endpoint> {
    const server = this.createServer();
    await new Promise<void>((resolve) => server.listen(path, resolve));
    return { kind: 'unix', path };
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((resolve) =>
            s.close(() => {
              resolve();
            }),
          ),
      ),
    );
  }

  private createServer(): net.Server {
    const server = net.createServer((socket) => {
      this.handle(socket);
    });
    this.servers.push(server);
    return server;
  }

  private handle(socket: net.Socket): void {
    this.sockets.add(socket);
    const script = this.script;
    let closedResolve!: () => void;
    const exchange: Exchange = { closed: new Promise((resolve) => (closedResolve = resolve)) };
    this.exchanges.push(exchange);
    socket.on('close', () => {
      this.sockets.delete(socket);
      closedResolve();
    });
    socket.on('error', () => undefined);
    let buffer = Buffer.alloc(0);
    let step: 'greeting' | 'auth' | 'request' | 'echo' | 'done' = 'greeting';
    let method = 0;

    const take = (length: number): Buffer | undefined => {
      if (buffer.length < length) return undefined;
      const bytes = buffer.subarray(0, length);
      buffer = buffer.subarray(length);
      return bytes;
    };

    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        if (step === 'greeting') {
          const nmethods = buffer[1];
          if (nmethods === undefined) return;
          const greeting = take(2 + nmethods);
          if (greeting === undefined) return;
          exchange.greeting = Buffer.from(greeting);
          if (script.silent === true) {
            step = 'done';
            return;
          }
          if (script.closeAfterGreeting === true) {
            socket.destroy();
            return;
          }
          if (script.rawGreetingAnswer !== undefined) {
            socket.end(script.rawGreetingAnswer);
            step = 'done';
            return;
          }
          const offered = [...greeting.subarray(2)];
          method = script.method ?? (offered.includes(0x02) ? 0x02 : 0x00);
          socket.write(Buffer.from([0x05, method]));
          if (method === 0xff) {
            socket.end();
            step = 'done';
            return;
          }
          step = method === 0x02 ? 'auth' : 'request';
        } else if (step === 'auth') {
          const ulen = buffer[1];
          if (ulen === undefined) return;
          const plen = buffer[2 + ulen];
          if (plen === undefined) return;
          const auth = take(3 + ulen + plen);
          if (auth === undefined) return;
          exchange.auth = Buffer.from(auth);
          const status = script.authStatus ?? 0x00;
          socket.write(Buffer.from([0x01, status]));
          if (status !== 0x00) {
            socket.end();
            step = 'done';
            return;
          }
          step = 'request';
        } else if (step === 'request') {
          // VER CMD RSV ATYP=03 LEN HOST PORT
          const hostLength = buffer[4];
          if (hostLength === undefined) return;
          const request = take(5 + hostLength + 2);
          if (request === undefined) return;
          exchange.request = Buffer.from(request);
          const reply = Buffer.from([0x05, script.reply ?? 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
          if (script.splitReply === true) {
            this.writeSplit(socket, reply);
          } else if ((script.reply ?? 0) === 0 && script.banner !== undefined) {
            socket.write(Buffer.concat([reply, Buffer.from(`${script.banner}\n`)]));
          } else {
            socket.write(reply);
          }
          step = (script.reply ?? 0) === 0 ? 'echo' : 'done';
          // A split reply ends the connection itself once its last byte is written.
          if (step === 'done' && script.splitReply !== true) socket.end();
        } else if (step === 'echo') {
          if (buffer.length === 0) return;
          socket.write(take(buffer.length)!);
        } else {
          return;
        }
      }
    });
  }

  private writeSplit(socket: net.Socket, bytes: Buffer): void {
    const writeFrom = (index: number): void => {
      if (index >= bytes.length) {
        socket.end();
        return;
      }
      socket.write(bytes.subarray(index, index + 1), () =>
        setImmediate(() => {
          writeFrom(index + 1);
        }),
      );
    };
    writeFrom(0);
  }
}

/** Resolves with the first line the socket delivers. */
function readLine(socket: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8');
      const newline = text.indexOf('\n');
      if (newline >= 0) {
        socket.removeListener('data', onData);
        resolve(text.slice(0, newline));
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

/** The rejection of `promise`, which must be a SocksError with code `code`. */
async function socksFailure(promise: Promise<unknown>, code: ErrorCode): Promise<SocksError> {
  const err: unknown = await promise.then(
    () => new Error('expected the dial to fail'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SocksError);
  expect((err as SocksError).code).toBe(code);
  expect(hasCode(err, code)).toBe(true);
  return err as SocksError;
}

/** Bytes of a CONNECT request for `host:port` with ATYP 3 (RFC 1928 §4-§5). */
function connectRequest(host: string, port: number): Buffer {
  return Buffer.concat([
    Buffer.from([0x05, 0x01, 0x00, 0x03, host.length]),
    Buffer.from(host, 'ascii'),
    Buffer.from([port >> 8, port & 0xff]),
  ]);
}

describe('socksDial', () => {
  const fake = new FakeSocksServer();
  let tcp: Endpoint;
  let unix: Endpoint;
  let dir: string;
  const opened: net.Socket[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'onionmc-socks-test-'));
    tcp = await fake.listenTcp();
    unix = await fake.listenUnix(join(dir, 'socks.sock'));
  });

  afterEach(() => {
    for (const socket of opened.splice(0)) socket.destroy();
    fake.script = {};
  });

  afterAll(async () => {
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('without isolation offers only "no auth", sends the onion as a DOMAINNAME and yields a working socket', async () => {
    fake.script = { banner: 'hello from the service' };
    const socket = await socksDial({ proxy: tcp, host: ONION, port: ONION_PORT, timeoutMs: 5000 });
    opened.push(socket);
    const exchange = fake.exchanges.at(-1)!;
    expect(exchange.greeting).toEqual(Buffer.from([0x05, 0x01, 0x00]));
    expect(exchange.auth).toBeUndefined();
    expect(exchange.request).toEqual(connectRequest(ONION, ONION_PORT));
    expect(exchange.request?.[3]).toBe(0x03);
    // The banner arrived in the same TCP write as the reply: it must not be lost.
    expect(await readLine(socket)).toBe('hello from the service');
    socket.write('ping\n');
    expect(await readLine(socket)).toBe('ping');
  });

  it('with isolation offers no-auth and username/password and sends RFC 1929 credentials, over a unix socket', async () => {
    const socket = await socksDial({
      proxy: unix,
      host: ONION,
      port: ONION_PORT,
      timeoutMs: 5000,
      isolation: { username: 'peer-7', password: 'circuit-42' },
    });
    opened.push(socket);
    const exchange = fake.exchanges.at(-1)!;
    expect(exchange.greeting).toEqual(Buffer.from([0x05, 0x02, 0x00, 0x02]));
    expect(exchange.auth).toEqual(
      Buffer.concat([
        Buffer.from([0x01, 6]),
        Buffer.from('peer-7'),
        Buffer.from([10]),
        Buffer.from('circuit-42'),
      ]),
    );
    expect(exchange.request).toEqual(connectRequest(ONION, ONION_PORT));
    socket.write('over unix\n');
    expect(await readLine(socket)).toBe('over unix');
  });

  const replyCodes = [
    ...Array.from({ length: 8 }, (_, i) => i + 0x01),
    ...Array.from({ length: 8 }, (_, i) => i + 0xf0),
  ].map((code) => [code.toString(16).padStart(2, '0'), code] as const);

  it.each(replyCodes)(
    'reply 0x%s becomes a SocksError with that reply, its meaning and the target',
    async (_hex, code) => {
      fake.script = { reply: code };
      const err = await socksFailure(
        socksDial({ proxy: tcp, host: ONION, port: ONION_PORT, timeoutMs: 5000 }),
        socksCodeForReply(code),
      );
      expect(err.reply).toBe(code);
      const meaning = SOCKS5_REPLY_MEANINGS.get(code);
      expect(meaning).toBeDefined();
      expect(err.message).toContain(`${ONION}:${ONION_PORT}`);
      expect(err.message).toContain(`127.0.0.1:${(tcp as { port: number }).port}`);
      expect(err.message).toContain(`0x${code.toString(16).toUpperCase().padStart(2, '0')}`);
      expect(err.message).toContain(meaning!);
    },
  );

  it('finds the reply code when the reply arrives one byte at a time, after username/password', async () => {
    fake.script = { reply: 0xf2, splitReply: true };
    const err = await socksFailure(
      socksDial({
        proxy: unix,
        host: ONION,
        port: ONION_PORT,
        timeoutMs: 5000,
        isolation: { username: 'u', password: 'p' },
      }),
      'ERR_SOCKS_ONION_INTRO_FAILED',
    );
    expect(err.reply).toBe(0xf2);
    expect(err.message).toContain('introduction failed');
    expect(err.message).toContain(`unix:${(unix as { path: string }).path}`);
  });

  it('describes codes outside the tables as unassigned', () => {
    expect(describeSocksReply(0x09)).toBe('0x09 (unassigned reply code)');
    expect(describeSocksReply(0xf6)).toMatch(/^0xF6 \(onion service invalid address/);
  });

  it('enforces the timeout against a proxy that never answers, names it and closes the connection', async () => {
    fake.script = { silent: true };
    const startedAt = Date.now();
    const err = await socksFailure(
      socksDial({ proxy: tcp, host: ONION, port: ONION_PORT, timeoutMs: 300 }),
      'ERR_SOCKS_TIMEOUT',
    );
    const elapsedMs = Date.now() - startedAt;
    expect(elapsedMs).toBeGreaterThanOrEqual(290);
    expect(elapsedMs).toBeLessThan(3000);
    expect(err.reply).toBeUndefined();
    expect(err.message).toContain(`${ONION}:${ONION_PORT}`);
    await fake.exchanges.at(-1)!.closed;
  });

  it('names the proxy and the torrc line when the TCP proxy is unreachable', async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) =>
      probe.close(() => {
        resolve();
      }),
    );
    const err = await socksFailure(
      socksDial({
        proxy: { kind: 'tcp', host: '127.0.0.1', port },
        host: ONION,
        port: ONION_PORT,
        timeoutMs: 5000,
      }),
      'ERR_SOCKS_PROXY_UNREACHABLE',
    );
    expect(err.message).toContain(`127.0.0.1:${port}`);
    expect(err.message).toContain('ECONNREFUSED');
    expect(err.message).toContain(`"SocksPort ${port}"`);
    expect(err.message).toContain(`${ONION}:${ONION_PORT}`);
    expect(err.reply).toBeUndefined();
  });

  it('names the socket path and the torrc line when the unix proxy is missing', async () => {
    const path = join(dir, 'no-such.sock');
    const err = await socksFailure(
      socksDial({ proxy: { kind: 'unix', path }, host: ONION, port: ONION_PORT, timeoutMs: 5000 }),
      'ERR_SOCKS_PROXY_UNREACHABLE',
    );
    expect(err.message).toContain(`unix:${path}`);
    expect(err.message).toContain(`"SocksPort unix:${path}"`);
    expect(err.message).toContain('ENOENT');
  });

  it('aborts a pending dial through its signal and closes the connection', async () => {
    fake.script = { silent: true };
    const controller = new AbortController();
    const dial = socksDial({
      proxy: tcp,
      host: ONION,
      port: ONION_PORT,
      timeoutMs: 10_000,
      signal: controller.signal,
    });
    const before = fake.exchanges.length;
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (fake.exchanges.length > before && fake.exchanges.at(-1)!.greeting !== undefined)
          resolve();
        else setImmediate(check);
      };
      check();
    });
    const reason = new Error('shutting down');
    controller.abort(reason);
    const err = await socksFailure(dial, 'ERR_ABORTED');
    expect(err.message).toContain(`${ONION}:${ONION_PORT}`);
    expect(err.cause).toBe(reason);
    await fake.exchanges.at(-1)!.closed;
  });

  it('rejects at once when the signal is already aborted, without connecting', async () => {
    const before = fake.exchanges.length;
    const err = await socksFailure(
      socksDial({
        proxy: tcp,
        host: ONION,
        port: ONION_PORT,
        timeoutMs: 5000,
        signal: AbortSignal.abort(),
      }),
      'ERR_ABORTED',
    );
    expect(err.message).toContain(`${ONION}:${ONION_PORT}`);
    expect(fake.exchanges.length).toBe(before);
  });

  it('reports a rejected username/password', async () => {
    fake.script = { authStatus: 0x01 };
    const err = await socksFailure(
      socksDial({
        proxy: tcp,
        host: ONION,
        port: ONION_PORT,
        timeoutMs: 5000,
        isolation: { username: 'a', password: 'b' },
      }),
      'ERR_SOCKS_AUTH_REJECTED',
    );
    expect(err.message).toContain('(status 0x01)');
  });

  it('reports a proxy that accepts no offered method', async () => {
    fake.script = { method: 0xff };
    await socksFailure(
      socksDial({ proxy: tcp, host: ONION, port: ONION_PORT, timeoutMs: 5000 }),
      'ERR_SOCKS_AUTH_REJECTED',
    );
  });

  it('reports a proxy that does not speak SOCKS5 (e.g. an HTTP port)', async () => {
    fake.script = { rawGreetingAnswer: Buffer.from('HTTP/1.0 400 Bad Request\r\n\r\n') };
    const err = await socksFailure(
      socksDial({ proxy: tcp, host: ONION, port: ONION_PORT, timeoutMs: 5000 }),
      'ERR_SOCKS_NOT_SOCKS5',
    );
    expect(err.message).toContain('0x48');
  });

  it('reports a proxy that closes the connection during the negotiation', async () => {
    fake.script = { closeAfterGreeting: true };
    const err = await socksFailure(
      socksDial({ proxy: tcp, host: ONION, port: ONION_PORT, timeoutMs: 5000 }),
      'ERR_SOCKS_PROXY_CLOSED',
    );
    expect(err.message).toContain(`${ONION}:${ONION_PORT}`);
  });

  it('rejects out-of-range options before any I/O', async () => {
    const before = fake.exchanges.length;
    const badPort = await socksFailure(
      socksDial({ proxy: tcp, host: ONION, port: 0, timeoutMs: 5000 }),
      'ERR_SOCKS_INVALID_REQUEST',
    );
    expect(badPort.message).toContain('port must be an integer in 1-65535');
    const badHost = await socksFailure(
      socksDial({ proxy: tcp, host: 'x'.repeat(256), port: 1, timeoutMs: 5000 }),
      'ERR_SOCKS_INVALID_REQUEST',
    );
    expect(badHost.message).toContain('host must be 1-255');
    const badIsolation = await socksFailure(
      socksDial({
        proxy: tcp,
        host: ONION,
        port: 1,
        timeoutMs: 5000,
        isolation: { username: '', password: 'p' },
      }),
      'ERR_SOCKS_INVALID_REQUEST',
    );
    expect(badIsolation.message).toContain('isolation username must be 1-255 bytes');
    const badTimeout = await socksFailure(
      socksDial({ proxy: tcp, host: ONION, port: 1, timeoutMs: 0 }),
      'ERR_SOCKS_INVALID_REQUEST',
    );
    expect(badTimeout.message).toContain('timeoutMs must be a positive number');
    expect(fake.exchanges.length).toBe(before);
  });
});
