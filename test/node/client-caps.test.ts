/**
 * What a remote peer can make a maker or taker hold is capped (docs/limits.md "Makers and
 * takers"): inbound direct links. Loopback only: a maker's own listener.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_INBOUND_PEER_LINKS } from '../../src/node/peer-links.js';
import { ScriptedPeer } from '../integration/transcript.js';
import { pollUntil } from '../helpers/poll.js';
import { startClient } from './harness.js';

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

describe('a maker', () => {
  it(`holds at most ${MAX_INBOUND_PEER_LINKS} inbound direct links; one more is closed at once`, async () => {
    const maker = await startClient('maker', [], { waitForDirectories: false });
    stops.push(() => maker.node.stop());
    const port = Number(maker.location.split(':')[1]);
    const peers: ScriptedPeer[] = [];
    stops.push(() => {
      for (const p of peers) p.socket.destroy();
      return Promise.resolve();
    });
    for (let i = 0; i < MAX_INBOUND_PEER_LINKS; i++) peers.push(await ScriptedPeer.connect(port));
    // Each was accepted: the maker sends its 793 on connect (docs/protocol.md §2.3).
    for (const p of peers) expect((JSON.parse(await p.next()) as { type: number }).type).toBe(793);
    const extra = await ScriptedPeer.connect(port);
    peers.push(extra);
    await extra.waitClosed();
    expect(extra.lines).toEqual([]);
    expect(maker.node.counters.get('refused.peer-links-full')).toBe(1);
    // A slot that frees is taken again.
    peers[0]?.socket.destroy();
    await pollUntil(
      'the maker to see the link close',
      async () => {
        const again = await ScriptedPeer.connect(port);
        peers.push(again);
        return again.next(1_000).then(
          () => true,
          () => undefined,
        );
      },
      5_000,
      20,
    );
  });
});
