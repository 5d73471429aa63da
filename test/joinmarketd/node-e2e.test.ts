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
import { afterEach, describe, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { nodeCoreFactory } from '../../src/joinmarketd/node-core.js';
import { startJoinmarketd, type JoinmarketdServer } from '../../src/joinmarketd/server.js';
import type { DirectoryNode } from '../../src/node/directory-node.js';
import { startDirectory, TEST_BACKOFF } from '../node/harness.js';
import { AmpTestClient } from './amp-client.js';
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

/** A directory node and in-process joinmarketd servers, one per wallet. */
async function inProcessRig(): Promise<Rig> {
  dir = await mkdtemp(path.join(tmpdir(), 'onionmc-jmd-e2e-'));
  const dn = await startDirectory();
  directory = dn.node;
  return {
    directoryLocation: dn.location,
    dir,
    startWallet: async () => {
      const server = await startJoinmarketd({
        host: '127.0.0.1',
        port: 0,
        logger: silentLogger(),
        createCore: nodeCoreFactory({ logger: silentLogger(), backoff: TEST_BACKOFF }),
      });
      servers.push(server);
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
});
