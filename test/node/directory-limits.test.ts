/**
 * Directory node limits over loopback (docs/limits.md): a flooder is limited, then disconnected
 * and its nick refused, while a well-behaved pair gets every message; pubmsgs are charged by
 * fan-out, `!orderbook` and getpeerlist have their own buckets, the node-wide fan-out budget;
 * connection caps refuse at once; a slow reader is cut; churn leaves nothing behind. The clock
 * is injected and frozen, so buckets never refill during a test.
 */
import net from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_DIRECTORY_LIMITS,
  type DirectoryLimitsPolicy,
} from '../../src/node/directory-node.js';
import { fairReadScheduler } from '../../src/peer/fair-reader.js';
import { parseDirectoryHandshake } from '../../src/wire/handshake.js';
import { MessageType } from '../../src/wire/message-types.js';
import { ScriptedPeer } from '../integration/transcript.js';
import { DirectoryFixture, RawClient, waitUntil, type TestDirectory } from './directory-clients.js';

const fx = new DirectoryFixture();
afterEach(async () => {
  await fx.cleanup();
});

/** Small limits so a test stays short; anything not given is effectively unlimited. */
function limits(overrides: Partial<DirectoryLimitsPolicy>): DirectoryLimitsPolicy {
  const big = { ratePerSecond: 1e9, burst: 1e9 };
  return {
    messages: big,
    readBytes: big,
    deliveries: big,
    orderbook: big,
    getpeerlist: big,
    globalDeliveries: big,
    offences: big,
    banMs: DEFAULT_DIRECTORY_LIMITS.banMs,
    ...overrides,
  };
}

/** Reads lines until a privmsg (687) whose line contains `marker`; returns the lines skipped. */
async function nextPrivmsgWith(client: RawClient, marker: string): Promise<void> {
  for (;;) {
    const envelope = await client.nextEnvelope();
    if (envelope.type === MessageType.PRIVMSG && envelope.line.includes(marker)) return;
  }
}

/**
 * Reconnects under `flooder`'s identity and checks that the handshake is refused because its nick
 * was disconnected for flooding.
 */
async function expectNickRefusedAfterFlooding(
  dn: TestDirectory,
  flooder: RawClient,
): Promise<void> {
  const again = await fx.connect(dn, { identity: flooder.identity });
  again.sendHandshake();
  const reply = parseDirectoryHandshake((await again.nextEnvelope()).line);
  expect(reply?.accepted).toBe(false);
  expect(reply?.motd).toBe('Rejected: nick refused for a while after flooding');
}

describe('rate limits', () => {
  it('limits a privmsg flooder, then disconnects it and refuses its nick; the pair loses nothing', async () => {
    const dn = await fx.directory({
      limits: limits({
        messages: { ratePerSecond: 0, burst: 20 },
        offences: { ratePerSecond: 0, burst: 10 },
      }),
    });
    const a = await fx.join(dn);
    const b = await fx.join(dn);
    const flooder = await fx.join(dn);
    for (let i = 0; i < 200; i++) {
      flooder.privmsg(b.nick, 'fill', `flood${i}`);
      if (i % 20 === 0) a.privmsg(b.nick, 'tx', `pair${i}`);
    }
    await flooder.waitClosed();
    // The pair: all 10 privmsgs arrive, in order (each followed by the 789 of docs/protocol.md §3.3).
    for (let i = 0; i < 200; i += 20) await nextPrivmsgWith(b, `pair${i}`);
    const counters = dn.node.counters;
    // 1 handshake + 19 privmsgs within the burst; then 10 tolerated drops and the 11th ends it.
    expect(counters.get('dropped.rate-limited')).toBe(11);
    expect(counters.get('disconnected.flooding')).toBe(1);
    // Reconnecting under the same nick is refused for a while.
    await expectNickRefusedAfterFlooding(dn, flooder);
    // Another nick on another connection is not punished for it.
    await fx.join(dn);
  });

  it('reads a peer over its byte rate slower and counts it, relaying all it sent', async () => {
    const dn = await fx.directory({
      limits: limits({ readBytes: { ratePerSecond: 200_000, burst: 65_536 } }),
    });
    const a = await fx.join(dn);
    const b = await fx.join(dn);
    // 20 privmsgs of about 10 kB: three times the burst.
    for (let i = 0; i < 20; i++) a.privmsg(b.nick, 'tx', `big${i} ${'q'.repeat(10_000)}`);
    for (let i = 0; i < 20; i++) await nextPrivmsgWith(b, `big${i} `);
    const counters = dn.node.counters;
    expect(counters.get('throttled.read-rate')).toBeGreaterThan(0);
    expect(counters.get('dropped.rate-limited')).toBe(0);
    expect(counters.get('disconnected.flooding')).toBe(0);
  });

  it('disconnects a peer that stays over its byte rate and refuses its nick', async () => {
    const dn = await fx.directory({
      limits: limits({
        readBytes: { ratePerSecond: 200_000, burst: 65_536 },
        // 10 offences: 100 ms waited over the read rate (READ_WAIT_MS_PER_OFFENCE).
        offences: { ratePerSecond: 0, burst: 10 },
      }),
    });
    const a = await fx.join(dn);
    const b = await fx.join(dn);
    const flooder = await fx.join(dn);
    // Within the burst (about 60 kB): never throttled, relayed whole.
    for (let i = 0; i < 6; i++) a.privmsg(b.nick, 'tx', `fits${i} ${'q'.repeat(10_000)}`);
    for (let i = 0; i < 6; i++) await nextPrivmsgWith(b, `fits${i} `);
    // About 400 kB: some 1.7 s of waiting at 200 kB/s after the burst.
    for (let i = 0; i < 40; i++) flooder.privmsg(b.nick, 'tx', `big${i} ${'q'.repeat(10_000)}`);
    await flooder.waitClosed();
    const counters = dn.node.counters;
    expect(counters.get('throttled.read-rate')).toBeGreaterThan(0);
    expect(counters.get('disconnected.flooding')).toBe(1);
    expect(counters.get('dropped.rate-limited')).toBe(0);
    await expectNickRefusedAfterFlooding(dn, flooder);
    // The pair is still served.
    a.privmsg(b.nick, 'tx', 'after');
    await nextPrivmsgWith(b, 'after');
  });

  it('charges short waits over the byte rate by their length, not one offence each', async () => {
    const dn = await fx.directory({
      limits: limits({
        readBytes: { ratePerSecond: 1_000_000, burst: 65_536 },
        // 50 offences: 500 ms waited over the read rate.
        offences: { ratePerSecond: 0, burst: 50 },
      }),
    });
    const a = await fx.join(dn);
    const b = await fx.join(dn);
    // 150 lines of about 2 kB, 300 kB: some 235 ms of waiting after the burst, in a hundred waits
    // of 2-3 ms. Counted one offence each, they would cut the peer.
    for (let i = 0; i < 150; i++) a.privmsg(b.nick, 'tx', `short${i} ${'q'.repeat(2_000)}`);
    for (let i = 0; i < 150; i++) await nextPrivmsgWith(b, `short${i} `);
    const counters = dn.node.counters;
    expect(counters.get('throttled.read-rate')).toBeGreaterThan(50);
    expect(counters.get('disconnected.flooding')).toBe(0);
  });

  it('charges a pubmsg by its fan-out', async () => {
    const dn = await fx.directory({
      limits: limits({ deliveries: { ratePerSecond: 0, burst: 5 } }),
    });
    const sender = await fx.join(dn);
    const others = [await fx.join(dn), await fx.join(dn), await fx.join(dn)];
    sender.pubmsg('!hello one'); // 3 deliveries: 2 left
    sender.pubmsg('!hello two'); // 3 more: dropped
    await waitUntil('the drop', () => dn.node.counters.get('dropped.fanout-limited') === 1);
    for (const other of others) {
      expect((await other.nextEnvelope()).line).toContain('!hello one');
      await other.expectQuiet();
    }
    expect(dn.node.counters.get('relayed.pubmsg')).toBe(1);
  });

  it('charges a long pubmsg per started KiB per recipient', async () => {
    const dn = await fx.directory({
      limits: limits({ deliveries: { ratePerSecond: 0, burst: 8 } }),
    });
    const sender = await fx.join(dn);
    const others = [await fx.join(dn), await fx.join(dn)];
    // About 1.5 KiB: 2 units for each of the 2 recipients, 4 in all: 4 left.
    sender.pubmsg('!long ' + 'a'.repeat(1_500));
    // About 2.5 KiB: 3 units each, 6 in all: over what is left, dropped.
    sender.pubmsg('!longer ' + 'b'.repeat(2_500));
    // Short: 1 unit each.
    sender.pubmsg('!short');
    await waitUntil('the drop', () => dn.node.counters.get('dropped.fanout-limited') === 1);
    for (const other of others) {
      expect((await other.nextEnvelope()).line).toContain('!long a');
      expect((await other.nextEnvelope()).line).toContain('!short');
    }
    expect(dn.node.counters.get('relayed.pubmsg')).toBe(2);
  });

  it('charges a pubmsg by the bytes relayed, non-ASCII escaped, not by characters received', async () => {
    const dn = await fx.directory({
      limits: limits({ deliveries: { ratePerSecond: 0, burst: 10 } }),
    });
    const sender = await fx.join(dn);
    const other = await fx.join(dn);
    // 1,026 characters, relayed as \u00e9 escapes: a frame of some 6,050 bytes, 6 units (2 if
    // charged by characters). The first leaves 4 units, too few for the second.
    const accents = 'é'.repeat(1_000);
    sender.pubmsg(`!one ${accents}`);
    sender.pubmsg(`!two ${accents}`);
    sender.pubmsg('!short'); // 1 unit
    await waitUntil('the drop', () => dn.node.counters.get('dropped.fanout-limited') === 1);
    expect((await other.nextEnvelope()).line).toContain('!one é');
    expect((await other.nextEnvelope()).line).toContain('!short');
    expect(dn.node.counters.get('relayed.pubmsg')).toBe(2);
  });

  it('limits !orderbook pubmsgs and getpeerlist apart from other messages', async () => {
    const dn = await fx.directory({
      limits: limits({
        orderbook: { ratePerSecond: 0, burst: 1 },
        getpeerlist: { ratePerSecond: 0, burst: 1 },
      }),
    });
    const taker = await fx.join(dn);
    const maker = await fx.join(dn);
    taker.pubmsg('!orderbook');
    taker.pubmsg('!orderbook');
    taker.pubmsg('!other');
    expect((await maker.nextEnvelope()).line).toContain('!orderbook');
    expect((await maker.nextEnvelope()).line).toContain('!other');
    expect(dn.node.counters.get('dropped.orderbook-limited')).toBe(1);
    taker.send(MessageType.GETPEERLIST, '');
    expect((await taker.nextEnvelope()).type).toBe(MessageType.PEERLIST);
    taker.send(MessageType.GETPEERLIST, '');
    await waitUntil('the drop', () => dn.node.counters.get('dropped.getpeerlist-limited') === 1);
  });

  it('charges every !orderbook request as receivers split it, not only a leading one', async () => {
    const dn = await fx.directory({
      limits: limits({ orderbook: { ratePerSecond: 0, burst: 1 } }),
    });
    const taker = await fx.join(dn);
    const maker = await fx.join(dn);
    // A reference maker splits on `!` and answers each part (docs/protocol.md §5.1): both are
    // orderbook requests. The first takes the one token, the second is over the limit.
    taker.pubmsg('!cancel 0!orderbook');
    taker.pubmsg('!!orderbook');
    taker.pubmsg('!other');
    expect((await maker.nextEnvelope()).line).toContain('!cancel 0!orderbook');
    expect((await maker.nextEnvelope()).line).toContain('!other');
    expect(dn.node.counters.get('dropped.orderbook-limited')).toBe(1);
    expect(dn.node.counters.get('relayed.pubmsg')).toBe(2);
  });

  it('keeps the !orderbook token of an !orderbook dropped for fan-out', async () => {
    const dn = await fx.directory({
      limits: limits({
        orderbook: { ratePerSecond: 0, burst: 1 },
        deliveries: { ratePerSecond: 1, burst: 3 },
      }),
    });
    const taker = await fx.join(dn);
    const makers = [await fx.join(dn), await fx.join(dn)];
    taker.pubmsg('!hello'); // 2 deliveries: 1 left
    taker.pubmsg('!orderbook'); // 2 more: dropped for fan-out, its orderbook token unused
    await waitUntil('the drop', () => dn.node.counters.get('dropped.fanout-limited') === 1);
    dn.clock.now += 1_000; // one more delivery: 2, what an !orderbook to 2 makers costs
    taker.pubmsg('!orderbook');
    for (const maker of makers) {
      expect((await maker.nextEnvelope()).line).toContain('!hello');
      expect((await maker.nextEnvelope()).line).toContain('!orderbook');
    }
    expect(dn.node.counters.get('dropped.orderbook-limited')).toBe(0);
  });

  it('drops pubmsgs over the node-wide fan-out budget without punishing the sender', async () => {
    const dn = await fx.directory({
      limits: limits({
        globalDeliveries: { ratePerSecond: 0, burst: 4 },
        offences: { ratePerSecond: 0, burst: 0 },
      }),
    });
    const first = await fx.join(dn);
    const second = await fx.join(dn);
    const third = await fx.join(dn);
    first.pubmsg('!one'); // 2 deliveries
    second.pubmsg('!two'); // 2 deliveries: the budget is spent
    third.pubmsg('!three'); // dropped
    await waitUntil('the drop', () => dn.node.counters.get('dropped.node-fanout-limited') === 1);
    expect(dn.node.counters.get('disconnected.flooding')).toBe(0);
    expect(dn.node.stats().handshaked).toBe(3);
  });
});

describe('connection caps', () => {
  it('answers a handshake beyond max_peers with accepted:false "Maximum peers reached"', async () => {
    const dn = await fx.directory({ maxPeers: 2 });
    await fx.join(dn);
    await fx.join(dn);
    const third = await fx.connect(dn);
    third.sendHandshake();
    const reply = parseDirectoryHandshake((await third.nextEnvelope()).line);
    expect(reply?.accepted).toBe(false);
    expect(reply?.motd).toBe('Rejected: Maximum peers reached');
    await third.waitClosed();
  });

  it('closes a connection at once when max_pending_handshakes are waiting', async () => {
    const dn = await fx.directory({ maxPendingHandshakes: 2 });
    await fx.connect(dn);
    await fx.connect(dn);
    await waitUntil('two pending', () => dn.node.stats().pendingHandshakes === 2);
    const third = await fx.connect(dn);
    await third.waitClosed();
    expect(dn.node.counters.get('refused.pending-handshakes-full')).toBe(1);
    expect(dn.node.stats().connections).toBe(2);
  });

  it('counts a refused peer that keeps its end open against max_pending_handshakes', async () => {
    const dn = await fx.directory({ maxPendingHandshakes: 2 });
    const held: net.Socket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const socket = net.connect({ host: '127.0.0.1', port: dn.port, allowHalfOpen: true });
        held.push(socket);
        const ended = once(socket, 'end');
        await once(socket, 'connect');
        const client = new RawClient(new ScriptedPeer(socket));
        client.sendHandshake({ network: 'mainnet' }); // refused: another network
        const reply = parseDirectoryHandshake((await client.nextEnvelope()).line);
        expect(reply?.accepted).toBe(false);
        await ended; // the node closed its end; ours stays open, so its socket waits for us
      }
      expect(dn.node.stats().connections).toBe(0);
      const third = await fx.connect(dn);
      await third.waitClosed();
      expect(dn.node.counters.get('refused.pending-handshakes-full')).toBe(1);
    } finally {
      for (const socket of held) socket.destroy();
    }
  });

  it('leaves nothing per connection behind after connect-handshake-disconnect churn', async () => {
    const dn = await fx.directory();
    const stayer = await fx.join(dn);
    for (let round = 0; round < 10; round++) {
      const batch = [];
      for (let i = 0; i < 20; i++) batch.push(await fx.join(dn));
      batch[0]?.privmsg(stayer.nick, 'x', 'y');
      for (const client of batch) client.end();
      await waitUntil('the batch gone', () => dn.node.stats().connections === 1);
    }
    stayer.peer.socket.destroy();
    await waitUntil('everyone gone', () => dn.node.stats().connections === 0);
    expect(dn.node.stats()).toEqual({
      connections: 0,
      pendingHandshakes: 0,
      handshaked: 0,
      nicks: 0,
      relayTargets: 0,
      bannedNicks: 0,
    });
    expect(fairReadScheduler.waiting).toBe(0);
  });
});

describe('bounded memory', () => {
  it('cuts a peer that does not read while the others get every pubmsg', async () => {
    const dn = await fx.directory({
      maxQueuedBytes: 256 * 1024,
      // 18 MB from one sender: its read rate out of the way (the default would take 18 s).
      limits: { ...DEFAULT_DIRECTORY_LIMITS, readBytes: { ratePerSecond: 1e9, burst: 1e9 } },
    });
    const sender = await fx.join(dn);
    const reader = await fx.join(dn);
    const slow = await fx.join(dn);
    slow.peer.socket.pause();
    const body = 'x'.repeat(30_000);
    const count = 600; // 18 MB: more than the kernel's loopback buffers hold
    let received = 0;
    // The reading peer keeps up (the sender waits for it, at most 4 lines = 120 kB ahead, under
    // the cap even on a loaded machine); only the peer that never reads builds up a queue.
    let onReceived: (() => void) | undefined;
    const done = (async () => {
      while (received < count) {
        const envelope = await reader.nextEnvelope();
        if (envelope.type === MessageType.PUBMSG) {
          received++;
          onReceived?.();
        }
      }
    })();
    for (let i = 0; i < count; i++) {
      while (i - received >= 4) {
        await new Promise<void>((resolve) => (onReceived = resolve));
      }
      sender.pubmsg(`!big ${i} ${body}`);
    }
    await done;
    await waitUntil('the slow reader cut', () => dn.node.stats().handshaked === 2, 10_000);
    expect(received).toBe(count);
    expect(dn.node.counters.get('evicted.slow-reader')).toBe(1);
  }, 30_000);
});
