/**
 * Plays the maker's and the taker's side of the reference transcript against our directory node
 * and checks that it answers exactly what the reference directory answered, byte for byte (only
 * the order of peerlist entries aside, and the directory's own nick and port, which are ours).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { createNickIdentity } from '../../src/message/nick.js';
import { DirectoryNode } from '../../src/node/directory-node.js';
import { TcpServerTransport } from '../../src/peer/transport.js';
import { normalizePeerlist, ScriptedPeer, T, transcriptEvents } from './transcript.js';

describe('directory node against the reference transcript', () => {
  let node: DirectoryNode | undefined;
  afterEach(async () => {
    await node?.stop();
  });

  it('answers every line exactly as the reference directory did', async () => {
    const server = new TcpServerTransport('127.0.0.1', 0);
    const identity = createNickIdentity();
    // Our location is only known once bound; build the node after a first bind to port 0.
    await server.listen(() => undefined);
    const port = server.port;
    await server.close();
    node = new DirectoryNode({
      identity,
      network: 'testnet',
      ownLocation: `127.0.0.1:${port}`,
      motd: T.motd,
      server: new TcpServerTransport('127.0.0.1', port),
      logger: silentLogger(),
    });
    await node.start();
    // The reference directory's nick and location, as seen in the transcript, become ours.
    const ours = (text: string): string =>
      text.replaceAll(T.dnNick, identity.nick).replaceAll(T.dnLocation, `127.0.0.1:${port}`);

    const peers = new Map<number, ScriptedPeer>();
    let checked = 0;
    for (const event of transcriptEvents()) {
      const involvesDn = event.from === 'DN' || event.to === 'DN';
      if (!involvesDn) continue; // the taker-maker direct link (#3) is not the directory's business
      if (event.kind === 'connect') {
        peers.set(event.conn, await ScriptedPeer.connect(port));
      } else if (event.kind === 'fin') {
        const peer = peers.get(event.conn);
        if (event.from !== 'DN') {
          peer?.end();
          await peer?.waitClosed();
        }
      } else if (event.from !== 'DN') {
        peers.get(event.conn)?.send(event.text);
      } else {
        const got = await peers.get(event.conn)?.next();
        expect(
          got === undefined ? undefined : normalizePeerlist(got),
          `${event.type} on #${event.conn}`,
        ).toBe(normalizePeerlist(ours(event.text)));
        checked++;
      }
    }
    expect(checked).toBe(13);
    for (const [conn, peer] of peers)
      expect(peer.lines, `unexpected extra lines on #${conn}`).toEqual([]);
  });
});
