/**
 * What a remote peer can make a maker or taker hold is capped (docs/limits.md "Makers and
 * takers"): inbound direct links, the table of known nicks, offers per nick. Loopback only: a
 * maker's own listener, and a scripted directory node that relays whatever it is told (as a
 * reference directory node does: it does not check the sender nick, docs/protocol.md §4.1).
 */
import { once } from 'node:events';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createNickIdentity } from '../../src/message/nick.js';
import { formatPubmsgLine, signPrivmsg } from '../../src/message/privmsg.js';
import type { ClientNode } from '../../src/node/client-node.js';
import { MAX_KNOWN_NICKS } from '../../src/node/client-context.js';
import { MAX_BOND_PROOF_CHARS, MAX_OFFERS_PER_NICK } from '../../src/node/offers.js';
import { MAX_INBOUND_PEER_LINKS } from '../../src/node/peer-links.js';
import { encodeEnvelope } from '../../src/wire/envelope.js';
import {
  encodeClientHandshake,
  JM_APP_NAME,
  JM_PROTOCOL_VERSION,
} from '../../src/wire/handshake.js';
import { NOT_SERVING_ONION } from '../../src/wire/location.js';
import { ScriptedPeer, ScriptedServer } from '../integration/transcript.js';
import { pollUntil } from '../helpers/poll.js';
import { directoryHandshake, startClient } from './harness.js';

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

/** A taker linked to one scripted directory node; returns the directory's end of the link. */
async function takerBehindScriptedDirectory() {
  const server = await ScriptedServer.listen();
  stops.push(() => server.close());
  const taker = await startClient('taker', [`127.0.0.1:${server.port}`], {
    waitForDirectories: false,
  });
  stops.push(() => taker.node.stop());
  const directory = await server.connection(0);
  await directory.next(); // the taker's 793
  directory.send(directoryHandshake({}, createNickIdentity().nick));
  await taker.events.waitFor('the directory link', () => taker.node.hasDirectory);
  return { taker, directory };
}

function pubmsg(from: string, message: string): string {
  return encodeEnvelope(687, formatPubmsgLine(from, message));
}

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
  it('counts a link it replaced until the peer closes its end too', async () => {
    const maker = await startClient('maker', [], { waitForDirectories: false });
    stops.push(() => maker.node.stop());
    const port = Number(maker.location.split(':')[1]);
    const held: net.Socket[] = [];
    stops.push(() => {
      for (const socket of held) socket.destroy();
      return Promise.resolve();
    });
    const handshake = encodeEnvelope(
      793,
      encodeClientHandshake({
        appName: JM_APP_NAME,
        directory: false,
        locationString: NOT_SERVING_ONION,
        protoVer: JM_PROTOCOL_VERSION,
        features: {},
        nick: createNickIdentity().nick,
        network: 'testnet',
      }),
    );
    // Each connection handshakes under the same nick, so the maker closes the one before
    // ('replaced'); that peer keeps its end open.
    let previousEnded: Promise<unknown> | undefined;
    for (let i = 0; i < MAX_INBOUND_PEER_LINKS; i++) {
      const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
      held.push(socket);
      const ended = once(socket, 'end');
      await once(socket, 'connect');
      const peer = new ScriptedPeer(socket);
      await peer.next(); // the maker's 793
      peer.send(handshake);
      await previousEnded;
      previousEnded = ended;
    }
    const extra = await ScriptedPeer.connect(port);
    held.push(extra.socket);
    await extra.waitClosed();
    expect(extra.lines).toEqual([]);
    expect(maker.node.counters.get('refused.peer-links-full')).toBe(1);
  });
});

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/** The `i`-th of many well-formed nicks (`J5` + 14 base58 characters, docs/protocol.md §2.2). */
function nick(i: number): string {
  let digits = '';
  for (let n = i; digits.length < 14; n = Math.floor(n / 58))
    digits = `${BASE58.charAt(n % 58)}${digits}`;
  return `J5${digits}`;
}

/** Resolves once the taker has handled a pubmsg from `from` (that is `message`, when given). */
function heard(node: { on: ClientNode['on'] }, from: string, message?: string): Promise<void> {
  return new Promise((resolve) => {
    const off = node.on('pubmsg', (e) => {
      if (e.from !== from || (message !== undefined && e.message !== message)) return;
      off();
      resolve();
    });
  });
}

const OFFER = '1000 100000 0 0.0002';

describe('a taker behind a directory node that relays any sender nick', () => {
  it(`remembers at most ${MAX_KNOWN_NICKS} nicks, forgetting the least recently heard`, async () => {
    const { taker, directory } = await takerBehindScriptedDirectory();
    const total = MAX_KNOWN_NICKS + 50;
    const last = heard(taker.node, nick(total - 1));
    for (let start = 0; start < total; start += 500) {
      const lines: string[] = [];
      for (let i = start; i < Math.min(total, start + 500); i++)
        lines.push(pubmsg(nick(i), `!sw0reloffer 0 ${OFFER}`));
      directory.socket.write(`${lines.join('\r\n')}\r\n`);
    }
    await last;
    const makers = new Set(taker.node.orderbook.entries().map((e) => e.nick));
    expect(makers.size).toBe(MAX_KNOWN_NICKS);
    expect(makers.has(nick(0))).toBe(false);
    expect(makers.has(nick(total - 1))).toBe(true);
    expect(taker.node.canReach(nick(49))).toBe(false);
    expect(taker.node.canReach(nick(50))).toBe(true);
    expect(taker.node.counters.get('evicted.known-nick')).toBe(50);
  });

  it(`keeps at most ${MAX_OFFERS_PER_NICK} offers of one nick; its known offers still update`, async () => {
    const { taker, directory } = await takerBehindScriptedDirectory();
    const maker = nick(7);
    for (let oid = 0; oid < MAX_OFFERS_PER_NICK * 4; oid++)
      directory.send(pubmsg(maker, `!sw0reloffer ${oid} ${OFFER}`));
    const update = '!sw0absoffer 0 1000 100000 0 5';
    const done = heard(taker.node, maker, update);
    directory.send(pubmsg(maker, update));
    await done;
    const offers = taker.node.orderbook.entries();
    expect(offers.map((o) => o.oid)).toEqual(
      Array.from({ length: MAX_OFFERS_PER_NICK }, (_, oid) => oid),
    );
    expect(offers[0]?.type).toBe('sw0absoffer');
  });

  it(`keeps a !tbond proof of at most ${MAX_BOND_PROOF_CHARS} characters`, async () => {
    const { taker, directory } = await takerBehindScriptedDirectory();
    const maker = createNickIdentity();
    const send = (proof: string): void => {
      const body = `0 ${OFFER}!tbond ${proof}`;
      directory.send(encodeEnvelope(685, signPrivmsg(maker, taker.node.nick, 'sw0reloffer', body)));
    };
    const bondOf = () => taker.node.orderbook.entries()[0]?.fidelityBond;
    const real = 'A'.repeat(336); // base64 of a 252-byte proof (docs/protocol.md §5.6)
    send(real);
    await taker.events.waitFor('the signed offer', () => bondOf() === real);
    send('B'.repeat(MAX_BOND_PROOF_CHARS + 1));
    // Handled after the long proof: once its offer shows, the long proof was handled.
    directory.send(
      encodeEnvelope(685, signPrivmsg(maker, taker.node.nick, 'sw0reloffer', `1 ${OFFER}`)),
    );
    await taker.events.waitFor(
      'the second offer',
      () => taker.node.orderbook.entries().length === 2,
    );
    expect(taker.node.orderbook.bonds()).toEqual([{ nick: maker.nick, proof: real }]);
  });
});
