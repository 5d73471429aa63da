/**
 * End to end in testing mode (issue 11 point 4), in process: a directory node and two
 * joinmarketd servers in this test's process, whose message channel is onionmc's real ClientNode
 * (NodeCore, configured from JMInit's `chan_configs`), each driven by a scripted wallet
 * (scenario.ts). process-e2e.test.ts runs the same scenarios on `onionmc` processes. Everything is
 * on loopback, ports are read back from port 0.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { nodeCoreFactory } from '../../src/joinmarketd/node-core.js';
import { startJoinmarketd, type JoinmarketdServer } from '../../src/joinmarketd/server.js';
import type { DirectoryNode } from '../../src/node/directory-node.js';
import { startDirectory, TEST_BACKOFF } from '../node/harness.js';
import { AmpTestClient } from './amp-client.js';
import { readable } from './amp-client.js';
import { bondScenario, upToFill, Wallet, wholeNegotiation, type Rig } from './scenario.js';

const servers: JoinmarketdServer[] = [];
const links: AmpTestClient[] = [];
let directory: DirectoryNode | undefined;
let dir: string | undefined;
afterEach(async () => {
  for (const link of links.splice(0)) link.close();
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await directory?.stop();
  directory = undefined;
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

/**
 * A directory node and in-process joinmarketd servers: one per wallet, or with `shared` one
 * server for every wallet (one connection each, as several jmclients on one daemon).
 */
async function inProcessRig(shared = false): Promise<Rig> {
  dir = await mkdtemp(path.join(tmpdir(), 'onionmc-jmd-e2e-'));
  const dn = await startDirectory();
  directory = dn.node;
  const newServer = async (): Promise<JoinmarketdServer> => {
    const server = await startJoinmarketd({
      host: '127.0.0.1',
      port: 0,
      logger: silentLogger(),
      createCore: nodeCoreFactory({ logger: silentLogger(), backoff: TEST_BACKOFF }),
    });
    servers.push(server);
    return server;
  };
  return {
    directoryLocation: dn.location,
    dir,
    startWallet: async () => {
      const server = shared ? (servers[0] ?? (await newServer())) : await newServer();
      const link = await AmpTestClient.connect(server.port);
      links.push(link);
      return new Wallet(link);
    },
  };
}

describe('joinmarketd on the real node, testing mode', () => {
  it('maker and taker: offers, orderbook, !fill, every privmsg signed and verified by the wallets', async () => {
    await upToFill(await inProcessRig());
  });

  it('the whole negotiation: !pubkey, !auth, !ioauth, !tx, !sig, !push', async () => {
    await wholeNegotiation(await inProcessRig());
  });

  it('maker with a fidelity bond: proof made for the taker, !tbond, JMOffers fidelitybonds', async () => {
    await bondScenario(await inProcessRig());
  });

  it("JMShutdown and a disconnect stop that wallet's channel only, on a shared daemon", async () => {
    const rig = await inProcessRig(true);
    const [a, b, taker] = [
      await rig.startWallet(),
      await rig.startWallet(),
      await rig.startWallet(),
    ];
    await a.start('MAKER', rig.directoryLocation, path.join(rig.dir, 'a-blacklist'));
    await b.start('MAKER', rig.directoryLocation, path.join(rig.dir, 'b-blacklist'));
    await taker.start('TAKER', rig.directoryLocation, path.join(rig.dir, 'taker-blacklist'));
    const onDirectory = (): string[] =>
      (directory?.peers() ?? []).map((p) => p.nick ?? '').filter((n) => n !== '');
    const offerNicks = async (): Promise<string[]> => {
      await taker.call('JMRequestOffers');
      const offers = await taker.expectRequest('JMOffers');
      const book = JSON.parse(offers['orderbook.0'] ?? '[]') as { counterparty: string }[];
      return book.map((o) => o.counterparty).sort();
    };
    await vi.waitFor(async () => {
      expect(await offerNicks()).toEqual([a.nick, b.nick].sort());
    }, 10_000);

    // B's JMShutdown: its node leaves the directory node, its offer the taker's orderbook; its
    // AMP link stays open (jmdaemon keeps the connection), A and the taker stay on.
    expect(readable(await b.call('JMShutdown')).accepted).toBe('True');
    await vi.waitFor(async () => {
      expect(onDirectory()).not.toContain(b.nick);
      expect(await offerNicks()).toEqual([a.nick]);
    }, 10_000);
    expect(b.link.closed).toBe(false);
    expect(onDirectory()).toEqual(expect.arrayContaining([a.nick, taker.nick]));
    expect(servers[0]?.sessions.size).toBe(3);

    // A disconnects: its channel stops, the taker's goes on.
    a.link.close();
    await vi.waitFor(async () => {
      expect(onDirectory()).not.toContain(a.nick);
      expect(await offerNicks()).toEqual([]);
    }, 10_000);
    expect(onDirectory()).toContain(taker.nick);
    expect(servers[0]?.sessions.size).toBe(2);

    // B starts again on the same connection and is found by the taker.
    await b.start('MAKER', rig.directoryLocation, path.join(rig.dir, 'b-blacklist'));
    await vi.waitFor(async () => {
      expect(await offerNicks()).toEqual([b.nick]);
    }, 10_000);
  });
});
