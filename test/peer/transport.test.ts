/**
 * Plain TCP transports: listen failures carry ERR_LISTEN and the errno; a node whose start()
 * failed is undone and can start once the port is free; dial failures carry precise codes.
 */
import net from 'node:net';
import { expect, it } from 'vitest';
import { hasCode, ListenError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { createNickIdentity } from '../../src/message/nick.js';
import { DirectoryNode } from '../../src/node/directory-node.js';
import { TcpDialer, TcpServerTransport } from '../../src/peer/transport.js';

async function occupiedPort(): Promise<{ port: number; release: () => Promise<void> }> {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  return {
    port: (blocker.address() as net.AddressInfo).port,
    release: () =>
      new Promise((resolve) => {
        blocker.close(() => {
          resolve();
        });
      }),
  };
}

it('a listen failure is ERR_LISTEN with the errno; a failed start() is undone and can be retried', async () => {
  const { port, release } = await occupiedPort();
  const node = new DirectoryNode({
    identity: createNickIdentity(),
    network: 'testnet',
    ownLocation: `127.0.0.1:${port}`,
    motd: '',
    server: new TcpServerTransport('127.0.0.1', port),
    logger: silentLogger(),
  });
  const err: unknown = await node.start().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ListenError);
  expect(hasCode(err, 'ERR_LISTEN')).toBe(true);
  expect((err as ListenError).errno).toBe('EADDRINUSE');
  await release();
  await node.start(); // not a no-op: the failed start left nothing "running"
  const socket = await new TcpDialer().dial({ host: '127.0.0.1', port }, 'peer');
  socket.destroy();
  await node.stop();
});

it('a refused dial is ERR_DIAL_REFUSED; an aborted one ERR_ABORTED', async () => {
  const { port, release } = await occupiedPort();
  await release();
  const refused: unknown = await new TcpDialer().dial({ host: '127.0.0.1', port }, 'peer').then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(hasCode(refused, 'ERR_DIAL_REFUSED')).toBe(true);
  const aborted: unknown = await new TcpDialer()
    .dial({ host: '127.0.0.1', port }, 'peer', AbortSignal.abort())
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(hasCode(aborted, 'ERR_ABORTED')).toBe(true);
});
