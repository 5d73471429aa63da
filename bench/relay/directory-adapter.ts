/**
 * The one place the benchmark touches onionmc's directory node API: starts a DirectoryNode on
 * loopback in testing-mode shape (docs/protocol.md §8.4), nick-auth disabled, logging silenced,
 * as `onionmc run` would for a directory in testing mode. When the DirectoryNode constructor or
 * its transport changes, only this function changes.
 */
import { silentLogger } from '../../src/log.js';
import { createNickIdentity } from '../../src/message/nick.js';
import { DirectoryNode } from '../../src/node/directory-node.js';
import { TcpServerTransport } from '../../src/peer/transport.js';

/** A running relay under test. */
export interface RunningRelay {
  /** The loopback TCP port it listens on. */
  readonly port: number;
  /** The 789 entry it puts first in relay peerlists (`nick;host:port`). */
  readonly ownEntry: string;
  close(): Promise<void>;
}

/**
 * Starts onionmc's directory node at 127.0.0.1:`port`, accepting on the listening socket `fd`
 * that the caller bound there (its location names the port, so the caller binds first).
 */
export async function startOnionmcDirectory(port: number, fd: number): Promise<RunningRelay> {
  const identity = createNickIdentity();
  const ownLocation = `127.0.0.1:${port}`;
  const server = new TcpServerTransport('127.0.0.1', port, undefined, fd);
  const node = new DirectoryNode({
    identity,
    network: 'testnet',
    ownLocation,
    motd: 'onionmc relay benchmark',
    server,
    logger: silentLogger(),
    features: {},
    nickAuth: { mode: 'disabled', directoryId: ownLocation },
  });
  await node.start();
  return {
    port,
    ownEntry: `${identity.nick};${ownLocation}`,
    close: () => server.close(),
  };
}
