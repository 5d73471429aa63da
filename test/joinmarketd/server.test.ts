/**
 * The joinmarketd server's connection cap with TLS (src/joinmarketd/server.ts): TCP connections
 * that never finish the TLS handshake count against it, and are closed after the handshake
 * timeout. Raw TCP clients over loopback stand in for stalled jmclients.
 */
import net from 'node:net';
import { Writable } from 'node:stream';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, silentLogger, type Logger } from '../../src/log.js';
import { startJoinmarketd, type JoinmarketdServer } from '../../src/joinmarketd/server.js';

/** A self-signed P-256 certificate for CN=localhost (test only). */
const CERT = `
-----BEGIN CERTIFICATE-----
MIIBfzCCASWgAwIBAgIUCdK7mHJyFkeiAOfwxUQuPd5KM1swCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwMTA1MjQxM1oYDzIxMjYxMTA3
MDUyNDEzWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAQws9/gRpzJqEhZkcmQ9+ToQtXgt9vl8zqJh+hHl0rLgZQqSh0gC0FG
UV9RxEQ6/2NH7PxjFppuifIgASG2OCyvo1MwUTAdBgNVHQ4EFgQUXA/pFaEsU0T8
VGmWpK8isR5WCkEwHwYDVR0jBBgwFoAUXA/pFaEsU0T8VGmWpK8isR5WCkEwDwYD
VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiAR70jgSedlT09MmYgaSsdQ
RvJNfINfG/Z3QV7jHvfLxgIhANwUPJLAbvU3SwtXFkY64HVT9lhaWwyc+2saFwyF
RnTg
-----END CERTIFICATE-----
`;
const KEY = `
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgj6+lpWOLhSA46T6l
sXblxtygtjS2r1o5vGQVO9Ye08ihRANCAAQws9/gRpzJqEhZkcmQ9+ToQtXgt9vl
8zqJh+hHl0rLgZQqSh0gC0FGUV9RxEQ6/2NH7PxjFppuifIgASG2OCyv
-----END PRIVATE KEY-----
`;

let server: JoinmarketdServer | undefined;
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await server?.close();
  server = undefined;
});

async function start(
  tlsHandshakeTimeoutMs?: number,
  logger: Logger = silentLogger(),
): Promise<JoinmarketdServer> {
  server = await startJoinmarketd({
    host: '127.0.0.1',
    port: 0,
    logger,
    tls: { key: KEY, cert: CERT },
    maxConnections: 2,
    ...(tlsHandshakeTimeoutMs === undefined ? {} : { tlsHandshakeTimeoutMs }),
    createCore: () => {
      throw new Error('no core in this test');
    },
  });
  return server;
}

/** A TCP connection that sends nothing (no TLS ClientHello); resolves once connected. */
function rawConnect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
    sockets.push(socket);
  });
}

/** Resolves when `socket` is closed by the other end. */
function closed(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.readableEnded || socket.destroyed) resolve();
    socket.on('error', () => undefined);
    socket.once('close', () => {
      resolve();
    });
    socket.resume();
  });
}

describe('joinmarketd server with TLS', () => {
  it('counts connections before their TLS handshake: one past the cap is closed at once', async () => {
    // Counted only once a handshake finished, 200 silent connections were all held for 120 s.
    const { port } = await start();
    await rawConnect(port);
    await rawConnect(port);
    const third = await rawConnect(port);
    await closed(third);
    // The two within the cap are still open, waiting for their handshake.
    expect(sockets.slice(0, 2).map((s) => s.destroyed)).toEqual([false, false]);
  });

  it('logs refused connections once per interval, however many come', async () => {
    const messages: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        messages.push((JSON.parse(chunk.toString('utf8')) as { msg: string }).msg);
        callback();
      },
    });
    const { port } = await start(undefined, createLogger({ level: 'info', destination }));
    await rawConnect(port);
    await rawConnect(port);
    for (let i = 0; i < 5; i++) await closed(await rawConnect(port));
    expect(messages.filter((m) => m.startsWith('too many jmclients'))).toHaveLength(1);
  });

  it('closes a connection that does not finish its TLS handshake in time', async () => {
    const { port } = await start(200);
    const silent = await rawConnect(port);
    const t0 = Date.now();
    await closed(silent);
    expect(Date.now() - t0).toBeLessThan(4_000);
    // A real TLS client still gets in.
    const client = tls.connect({ host: '127.0.0.1', port, ca: CERT, servername: 'localhost' });
    sockets.push(client);
    await new Promise<void>((resolve, reject) => {
      client.once('secureConnect', resolve);
      client.once('error', reject);
    });
  });
});
