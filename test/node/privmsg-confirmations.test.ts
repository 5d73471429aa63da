/**
 * Confirmed privmsgs (docs/protocol.md §13.2, src/node/client-confirmations.ts): a privmsg sent
 * with `privmsgConfirmed` resolves only once the route answered a 798 sent after it; a route that
 * closes or does not answer in time is replaced by another one or the send fails; a route
 * without `ping` is never sent a 798 and answers `confirmed: false`. Scripted directory nodes on
 * loopback show each line the taker writes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { hasCode } from '../../src/errors.js';
import { createNickIdentity } from '../../src/message/nick.js';
import {
  DIRECTORY_PROBE_IDLE_MS,
  DIRECTORY_PROBE_TIMEOUT_MS,
  type ClientNode,
  type Delivery,
} from '../../src/node/client-node.js';
import type { ScriptedPeer } from '../integration/transcript.js';
import { PEER, startClient, startDirectory, takerWithDirectories } from './harness.js';

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

const PING = '{"type": 798, "line": ""}';
const PONG = '{"type": 799, "line": ""}';

/** Records when a delivery settles, so a test can check that it has not yet. */
function watch(promise: Promise<Delivery>): {
  promise: Promise<Delivery>;
  settled: () => boolean;
} {
  let settled = false;
  const watched = promise.finally(() => {
    settled = true;
  });
  watched.catch(() => undefined);
  return { promise: watched, settled: () => settled };
}

const privmsgLine = (taker: ClientNode, body: string): RegExp =>
  new RegExp(
    `^\\{"type": 685, "line": "${taker.nick}!${PEER}!error ${body} [0-9a-f]{66} \\S+"\\}$`,
  );

describe('confirmed privmsgs through a directory node that advertised ping', () => {
  it('resolve on the pong to the 798 written after them; one ping covers a turn, the next waits', async () => {
    const { taker, links } = await takerWithDirectories(stops, 1);
    const [link] = links as [ScriptedPeer];
    const first = [1, 2, 3].map((n) => watch(taker.privmsgConfirmed(PEER, 'error', `m${n}`)));
    for (const n of [1, 2, 3]) expect(await link.next()).toMatch(privmsgLine(taker, `m${n}`));
    expect(await link.next()).toBe(PING);
    // Written while that ping is outstanding: covered by the next ping, not this one.
    const later = watch(taker.privmsgConfirmed(PEER, 'error', 'm4'));
    expect(await link.next()).toMatch(privmsgLine(taker, 'm4'));
    expect(first.some((d) => d.settled())).toBe(false);
    link.send(PONG);
    for (const d of first)
      expect(await d.promise).toEqual({
        via: { kind: 'directory', location: expect.any(String) as string },
        confirmed: true,
        attempts: 1,
      });
    // The pong answered the first ping only; the second goes out now.
    expect(later.settled()).toBe(false);
    expect(await link.next()).toBe(PING);
    link.send(PONG);
    expect((await later.promise).confirmed).toBe(true);
    expect(taker.pendingConfirmations).toBe(0);
    expect(taker.counters.get('privmsg.confirmed')).toBe(4);
  });

  it('are re-sent, byte for byte, through another directory node when the first closes before its pong', async () => {
    const { taker, links, locations } = await takerWithDirectories(stops, 2);
    const [a, b] = links as [ScriptedPeer, ScriptedPeer];
    const delivery = watch(
      taker.privmsgConfirmed(PEER, 'error', 'resend', {
        route: 'directory',
        directory: locations[0] ?? '',
      }),
    );
    const written = await a.next();
    expect(written).toMatch(privmsgLine(taker, 'resend'));
    expect(await a.next()).toBe(PING);
    a.end();
    // The same signed line (every route signs with the hostid onion-network, docs/protocol.md §5.6).
    expect(await b.next()).toBe(written);
    expect(await b.next()).toBe(PING);
    expect(delivery.settled()).toBe(false);
    b.send(PONG);
    expect(await delivery.promise).toEqual({
      via: { kind: 'directory', location: locations[1] },
      confirmed: true,
      attempts: 2,
    });
    expect(taker.counters.get('privmsg.resent')).toBe(1);
  });

  it('fail with ERR_NOT_DELIVERED when the only route closes before its pong', async () => {
    const { taker, links } = await takerWithDirectories(stops, 1);
    const [link] = links as [ScriptedPeer];
    const delivery = taker.privmsgConfirmed(PEER, 'error', 'lost');
    delivery.catch(() => undefined);
    expect(await link.next()).toMatch(privmsgLine(taker, 'lost'));
    expect(await link.next()).toBe(PING);
    link.end();
    const err = await delivery.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(hasCode(err, 'ERR_NOT_DELIVERED')).toBe(true);
    expect(taker.pendingConfirmations).toBe(0);
  });

  it('fail with ERR_TIMEOUT when the only route does not answer within the deadline', async () => {
    const { taker, links } = await takerWithDirectories(stops, 1, {
      client: { privmsgConfirmTimeoutMs: 100 },
    });
    const [link] = links as [ScriptedPeer];
    const delivery = taker.privmsgConfirmed(PEER, 'error', 'slow');
    delivery.catch(() => undefined);
    expect(await link.next()).toMatch(privmsgLine(taker, 'slow'));
    expect(await link.next()).toBe(PING);
    const err = await delivery.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(hasCode(err, 'ERR_TIMEOUT')).toBe(true);
    // A pong arriving late confirms nothing twice and breaks nothing.
    link.send(PONG);
    const next = taker.privmsgConfirmed(PEER, 'error', 'after');
    expect(await link.next()).toMatch(privmsgLine(taker, 'after'));
    expect(await link.next()).toBe(PING);
    link.send(PONG);
    expect((await next).confirmed).toBe(true);
  });

  it('refuse with ERR_BUSY beyond maxPendingConfirmations, sending nothing', async () => {
    const { taker, links } = await takerWithDirectories(stops, 1, {
      client: { maxPendingConfirmations: 2 },
    });
    const [link] = links as [ScriptedPeer];
    const waiting = [1, 2].map((n) => taker.privmsgConfirmed(PEER, 'error', `w${n}`));
    const err = await taker.privmsgConfirmed(PEER, 'error', 'w3').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(hasCode(err, 'ERR_BUSY')).toBe(true);
    expect(await link.next()).toMatch(privmsgLine(taker, 'w1'));
    expect(await link.next()).toMatch(privmsgLine(taker, 'w2'));
    expect(await link.next()).toBe(PING);
    link.send(PONG);
    await Promise.all(waiting);
    expect(taker.pendingConfirmations).toBe(0);
  });

  it('fail with ERR_CLOSED when the node stops first', async () => {
    const { taker, links } = await takerWithDirectories(stops, 1);
    const [link] = links as [ScriptedPeer];
    const delivery = taker.privmsgConfirmed(PEER, 'error', 'stop');
    delivery.catch(() => undefined);
    expect(await link.next()).toMatch(privmsgLine(taker, 'stop'));
    await taker.stop();
    const err = await delivery.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(hasCode(err, 'ERR_CLOSED')).toBe(true);
  });
});

describe('keepalive probes and confirmations share the pings', () => {
  it('a probe sent while a confirmation ping waits covers the privmsgs written since; pongs answer in order', async () => {
    let now = 1_000_000;
    const { taker, links } = await takerWithDirectories(stops, 1, { client: { now: () => now } });
    const [link] = links as [ScriptedPeer];
    const first = watch(taker.privmsgConfirmed(PEER, 'error', 'p1'));
    expect(await link.next()).toMatch(privmsgLine(taker, 'p1'));
    expect(await link.next()).toBe(PING);
    const second = watch(taker.privmsgConfirmed(PEER, 'error', 'p2'));
    expect(await link.next()).toMatch(privmsgLine(taker, 'p2'));
    // The link has been silent long enough: the keepalive probe's 798 also covers p2.
    now += DIRECTORY_PROBE_IDLE_MS;
    taker.probeDirectories();
    expect(await link.next()).toBe(PING);
    link.send(PONG);
    expect((await first.promise).confirmed).toBe(true);
    expect(second.settled()).toBe(false);
    link.send(PONG);
    expect((await second.promise).confirmed).toBe(true);
    expect(taker.counters.get('directory.probe')).toBe(1);
    // Nothing more was sent: the next line is a pubmsg of ours.
    taker.pubmsg('!marker');
    expect(await link.next()).toBe(`{"type": 687, "line": "${taker.nick}!PUBLIC!marker"}`);
  });
});

describe('a directory node that stays silent after a confirmation ping', () => {
  it('is dropped by the keepalive as after a probe, and the privmsg goes through another one', async () => {
    let now = 1_000_000;
    const { taker, links, locations } = await takerWithDirectories(stops, 2, {
      client: { now: () => now },
    });
    const [a, b] = links as [ScriptedPeer, ScriptedPeer];
    // Later than the last line received (a line received at the ping's time counts as its answer).
    now += 1_000;
    const delivery = taker.privmsgConfirmed(PEER, 'error', 'silent', {
      route: 'directory',
      directory: locations[0] ?? '',
    });
    delivery.catch(() => undefined);
    const written = await a.next();
    expect(await a.next()).toBe(PING);
    // Nothing arrives on the first link within the probe timeout (a dead Tor circuit).
    now += DIRECTORY_PROBE_TIMEOUT_MS;
    taker.probeDirectories();
    expect(taker.counters.get('directory.probe-timeout')).toBe(1);
    expect(await b.next()).toBe(written);
    expect(await b.next()).toBe(PING);
    b.send(PONG);
    expect(await delivery).toEqual({
      via: { kind: 'directory', location: locations[1] },
      confirmed: true,
      attempts: 2,
    });
  });
});

describe('a route that cannot confirm', () => {
  it('a directory node without ping (a reference one) is never sent a 798: confirmed false', async () => {
    const { taker, links } = await takerWithDirectories(stops, 1, { ping: false });
    const [link] = links as [ScriptedPeer];
    expect(await taker.privmsgConfirmed(PEER, 'error', 'ref')).toEqual({
      via: { kind: 'directory', location: expect.any(String) as string },
      confirmed: false,
      attempts: 1,
    });
    expect(await link.next()).toMatch(privmsgLine(taker, 'ref'));
    // Lines on one connection arrive in order: had a 798 been sent, it would come next.
    taker.pubmsg('!marker');
    expect(await link.next()).toBe(`{"type": 687, "line": "${taker.nick}!PUBLIC!marker"}`);
  });

  it('nor is a directory node that advertised ping when we did not (it would not answer)', async () => {
    const { taker, links } = await takerWithDirectories(stops, 1, {
      client: { features: { peerlist_features: true } },
    });
    const [link] = links as [ScriptedPeer];
    expect((await taker.privmsgConfirmed(PEER, 'error', 'noping')).confirmed).toBe(false);
    expect(await link.next()).toMatch(privmsgLine(taker, 'noping'));
    taker.pubmsg('!marker');
    expect(await link.next()).toBe(`{"type": 687, "line": "${taker.nick}!PUBLIC!marker"}`);
  });
});

/**
 * An onionmc directory node with the features the daemon gives it (src/daemon/daemon.ts
 * directoryFeatures), a maker (with `makerFeatures` when given) that published an offer, and a
 * taker that has heard it; all stopped after the test.
 */
async function makerAndTakerOnDirectory(makerFeatures?: Record<string, boolean>): Promise<{
  dn: Awaited<ReturnType<typeof startDirectory>>;
  maker: Awaited<ReturnType<typeof startClient>>;
  taker: Awaited<ReturnType<typeof startClient>>;
}> {
  const dn = await startDirectory({ features: { peerlist_features: true, ping: true } });
  stops.push(() => dn.node.stop());
  const maker = await startClient(
    'maker',
    [dn.location],
    makerFeatures !== undefined ? { features: makerFeatures } : {},
  );
  stops.push(() => maker.node.stop());
  const taker = await startClient('taker', [dn.location]);
  stops.push(() => taker.node.stop());
  maker.node.setOffers([
    { type: 'sw0reloffer', oid: 0, minsize: 1000, maxsize: 100000, txfee: 0, cjfee: '0.0002' },
  ]);
  await taker.events.waitFor('the offer pubmsg', (e) => e.name === 'pubmsg');
  return { dn, maker, taker };
}

describe('onionmc directory node and direct links', () => {
  it('confirms through an onionmc directory node and over a direct link', async () => {
    const { dn, maker, taker } = await makerAndTakerOnDirectory();
    // No direct link yet: through the directory node, and a direct dial starts (docs/protocol.md §4.3 step 4).
    const viaDirectory = await taker.node.privmsgConfirmed(maker.node.nick, 'error', 'one');
    expect(viaDirectory).toEqual({
      via: { kind: 'directory', location: dn.location },
      confirmed: true,
      attempts: 1,
    });
    await maker.events.waitFor(
      'the privmsg at the maker',
      (e) => e.name === 'privmsg' && (e.data as { body: string }).body === 'one',
    );
    await taker.events.waitFor(
      'the direct link',
      (e) => e.name === 'peer' && (e.data as { up: boolean }).up,
    );
    const direct = await taker.node.privmsgConfirmed(maker.node.nick, 'error', 'two');
    expect(direct).toEqual({ via: { kind: 'direct' }, confirmed: true, attempts: 1 });
  });
});

describe('a direct link to a peer without ping', () => {
  it('answers confirmed: false (a 798 is sent only where ping was advertised)', async () => {
    // A maker that does not advertise ping (as ng makers on their direct links).
    const { maker, taker } = await makerAndTakerOnDirectory({ peerlist_features: true });
    expect((await taker.node.privmsgConfirmed(maker.node.nick, 'error', 'one')).confirmed).toBe(
      true,
    );
    await taker.events.waitFor(
      'the direct link',
      (e) => e.name === 'peer' && (e.data as { up: boolean }).up,
    );
    expect(await taker.node.privmsgConfirmed(maker.node.nick, 'error', 'two')).toEqual({
      via: { kind: 'direct' },
      confirmed: false,
      attempts: 1,
    });
    await maker.events.waitFor(
      'the direct privmsg',
      (e) => e.name === 'privmsg' && (e.data as { body: string }).body === 'two',
    );
  });
});

describe('a !fill that is not sent', () => {
  it('leaves no NaCl session behind when the nick has no route', async () => {
    const { taker } = await takerWithDirectories(stops, 1);
    const stranger = createNickIdentity().nick;
    expect(() => taker.privmsg(stranger, 'fill', '0 50000 Pcommitment')).toThrow(
      expect.objectContaining({ code: 'ERR_NOT_ROUTABLE' }) as Error,
    );
    expect(taker.sessionKeys(stranger)).toBeUndefined();
    const err = await taker.privmsgConfirmed(stranger, 'fill', '0 50000 Pcommitment').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(hasCode(err, 'ERR_NOT_ROUTABLE')).toBe(true);
    expect(taker.sessionKeys(stranger)).toBeUndefined();
  });

  it('keeps the session of an earlier !fill when a new one cannot be sent', async () => {
    const { taker, links } = await takerWithDirectories(stops, 1, { ping: false });
    const [link] = links as [ScriptedPeer];
    taker.privmsg(PEER, 'fill', '0 50000 Pcommitment');
    const before = taker.sessionKeys(PEER);
    expect(before?.own).toMatch(/^[0-9a-f]{64}$/);
    // The directory goes away: the nick has no route any more.
    link.end();
    await link.waitClosed();
    await new Promise<void>((resolve) => {
      const off = taker.on('directory', (e) => {
        if (!e.up) {
          off();
          resolve();
        }
      });
      if (!taker.hasDirectory) resolve();
    });
    expect(() => taker.privmsg(PEER, 'fill', '1 60000 Pother')).toThrow(
      expect.objectContaining({ code: 'ERR_NOT_ROUTABLE' }) as Error,
    );
    expect(taker.sessionKeys(PEER)).toEqual(before);
  });

  it('drops the session it started when the confirmation fails', async () => {
    const { taker, links } = await takerWithDirectories(stops, 1);
    const [link] = links as [ScriptedPeer];
    const delivery = taker.privmsgConfirmed(PEER, 'fill', '0 50000 Pcommitment');
    delivery.catch(() => undefined);
    await link.next(); // the !fill
    expect(taker.sessionKeys(PEER)).toBeDefined();
    link.end();
    const err = await delivery.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(hasCode(err, 'ERR_NOT_DELIVERED')).toBe(true);
    expect(taker.sessionKeys(PEER)).toBeUndefined();
  });
});
