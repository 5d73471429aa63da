/**
 * Stopping a maker or taker aborts its pending dials: a SOCKS5 dial to an onion that never
 * answers (tor still building circuits) must not outlive stop(). A loopback SOCKS5 proxy answers
 * the greeting and then never answers the CONNECT.
 */
import net from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { createNickIdentity } from '../../src/message/nick.js';
import { ClientNode } from '../../src/node/client-node.js';
import { SocksDialer } from '../../src/peer/socks-transport.js';
import { TcpDialer, type Dialer } from '../../src/peer/transport.js';
import { encodeEnvelope } from '../../src/wire/envelope.js';
import { ScriptedServer } from '../integration/transcript.js';
import { directoryHandshake, recordEvents } from './harness.js';
import { onionAddressFromPublicKey } from '../../src/wire/location.js';

const ONION = onionAddressFromPublicKey(Uint8Array.from({ length: 32 }, (_, i) => i));

/** A SOCKS5 proxy that accepts no-auth / userpass, then swallows the CONNECT and never replies. */
async function silentSocksProxy(): Promise<{
  port: number;
  connectReceived: Promise<net.Socket>;
  close: () => Promise<void>;
}> {
  let onConnect: (socket: net.Socket) => void = () => undefined;
  const connectReceived = new Promise<net.Socket>((resolve) => {
    onConnect = resolve;
  });
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    let step = 0;
    socket.on('data', (chunk) => {
      if (step === 0) {
        // Greeting: pick username/password when offered (tor isolation), else no-auth.
        const methods = [...chunk.subarray(2, 2 + (chunk[1] ?? 0))];
        const method = methods.includes(0x02) ? 0x02 : 0x00;
        socket.write(Buffer.from([0x05, method]));
        step = method === 0x02 ? 1 : 2;
      } else if (step === 1) {
        socket.write(Buffer.from([0x01, 0x00]));
        step = 2;
      } else if (step === 2) {
        step = 3;
        onConnect(socket); // the CONNECT: never answered
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connectReceived,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          resolve();
        });
      }),
  };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('stop() during a SOCKS dial to an unreachable onion returns at once and closes the dial', async () => {
  const proxy = await silentSocksProxy();
  cleanups.push(proxy.close);
  const taker = new ClientNode({
    role: 'taker',
    identity: createNickIdentity(),
    network: 'testnet',
    ownLocation: 'NOT-SERVING-ONION',
    directories: [`${ONION}:5222`],
    // A dial deadline far beyond the test's: only the abort can end the dial in time.
    dialer: new SocksDialer({
      proxy: { kind: 'tcp', host: '127.0.0.1', port: proxy.port },
      timeoutMs: 600_000,
    }),
    logger: silentLogger(),
  });
  await taker.start();
  const socksConnection = await proxy.connectReceived;
  const closed = new Promise<void>((resolve) =>
    socksConnection.once('close', () => {
      resolve();
    }),
  );
  await taker.stop();
  // The SOCKS stream was torn down by the abort, not by a deadline.
  await closed;
  expect(taker.directoryStatus()[0]?.state).toBe('stopped');
}, 10_000);

it('stop() aborts a pending direct SOCKS dial to a maker', async () => {
  const proxy = await silentSocksProxy();
  cleanups.push(proxy.close);
  const dn = await ScriptedServer.listen();
  cleanups.push(() => dn.close());
  const tcp = new TcpDialer();
  const socks = new SocksDialer({
    proxy: { kind: 'tcp', host: '127.0.0.1', port: proxy.port },
    timeoutMs: 600_000,
  });
  // The directory over loopback TCP, direct links through the silent SOCKS proxy.
  const dialer: Dialer = {
    dial: (target, purpose, signal) =>
      purpose === 'directory'
        ? tcp.dial(target, purpose, signal)
        : socks.dial(target, purpose, signal),
  };
  const taker = new ClientNode({
    role: 'taker',
    identity: createNickIdentity(),
    network: 'testnet',
    ownLocation: 'NOT-SERVING-ONION',
    directories: [`127.0.0.1:${dn.port}`],
    dialer,
    logger: silentLogger(),
  });
  const events = recordEvents(taker);
  await taker.start();
  const link = await dn.connection(0);
  await link.next(); // the taker's 793
  link.send(directoryHandshake({}, 'J5Ckon1LuuapPSBM'));
  const maker = createNickIdentity().nick;
  link.send(encodeEnvelope(789, `${maker};${ONION}:5222`));
  await events.waitFor('the peerlist', (e) => e.name === 'peerlist');
  // No route yet, but the send starts the direct dial (docs/protocol.md §4.3 step 4).
  expect(() => taker.privmsg(maker, 'fill', '0 100000 commitment')).toThrow();
  const socksConnection = await proxy.connectReceived;
  const closed = new Promise<void>((resolve) =>
    socksConnection.once('close', () => {
      resolve();
    }),
  );
  await taker.stop();
  await closed;
}, 10_000);
