/**
 * The CI share of the src/tor and SOCKS fuzz properties (test/fuzz/props/tor.ts): each runs a
 * scaled-down count (env FUZZ_SCALE, see test/fuzz/property.ts); `npm run fuzz` runs the full
 * counts. Regression tests for what the properties found sit beside them.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { SocksError } from '../../src/errors.js';
import { socksDial } from '../../src/tor/socks-dialer.js';
import { CI_PROPERTY_TIME_LIMIT_MS, checkProperty, fuzzScale, scaledRuns } from './property.js';
import { torProperties } from './props/tor.js';

const scale = fuzzScale();

describe('fuzz: src/tor and SOCKS', () => {
  for (const p of torProperties) {
    it(p.name, async () => {
      await checkProperty(p, scaledRuns(p, scale), undefined, CI_PROPERTY_TIME_LIMIT_MS);
    });
  }

  it('regression: a proxy that answers 05 00 05 00 00 00 1f 90 at once and resets rejects, nothing uncaught', async () => {
    // Found by the socks property: the CONNECT request hits EPIPE, whose error came on the next
    // tick after the `socks` client had let go of the socket: an uncaught exception.
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown): void => {
      uncaught.push(err);
    };
    process.on('uncaughtException', onUncaught);
    const server = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.write(Uint8Array.from([5, 0, 5, 0, 0, 0, 0x1f, 0x90]));
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    try {
      for (let i = 0; i < 5; i++) {
        const outcome = await socksDial({
          proxy: { kind: 'tcp', host: '127.0.0.1', port },
          host: 'example.onion',
          port: 5222,
          timeoutMs: 2_000,
        }).then(
          (socket) => {
            socket.on('error', () => undefined);
            socket.destroy();
            return 'connected';
          },
          (err: unknown) => (err instanceof SocksError ? 'ERR_SOCKS' : String(err)),
        );
        // Another turn of the event loop lets a late error surface.
        await new Promise((resolve) => setTimeout(resolve, 10));
        expect(uncaught).toEqual([]);
        expect(['ERR_SOCKS', 'connected']).toContain(outcome);
      }
    } finally {
      process.off('uncaughtException', onUncaught);
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
    }
  });
});
