/**
 * Maker and taker policy, in process over loopback: end-to-end encryption owned by the daemon
 * (docs/protocol.md §7), interop with a peer that does the NaCl exchange itself as the reference does,
 * duplicate suppression across directories (docs/protocol.md §4.2), routing (docs/protocol.md §4.3), directory reconnect
 * (docs/protocol.md §4.6) and nick authentication against our directory (docs/protocol.md §9.6).
 */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { hasCode } from '../../src/errors.js';
import {
  decryptFromWire,
  encryptToWire,
  generateBoxKeyPair,
  parseBoxPublicKeyHex,
} from '../../src/message/nacl-box.js';
import {
  DIRECTORY_PROBE_IDLE_MS,
  DIRECTORY_PROBE_TIMEOUT_MS,
  type ClientNode,
  type ClientNodeEvents,
} from '../../src/node/client-node.js';
import { ScriptedServer } from '../integration/transcript.js';
import type { DirectoryNode } from '../../src/node/directory-node.js';
import { pollUntil } from '../helpers/poll.js';
import { BoundServer } from '../helpers/ports.js';
import { directoryHandshake, startClient, startDirectory, type NodeEvent } from './harness.js';

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

function track<T extends ClientNode | DirectoryNode>(node: T): T {
  stops.push(() => node.stop());
  return node;
}

type Privmsg = ClientNodeEvents['privmsg'];
const isPrivmsg = (from: string, cmd: string) => (e: NodeEvent) =>
  e.name === 'privmsg' && (e.data as Privmsg).from === from && (e.data as Privmsg).cmd === cmd;

/** A taker and a maker that have heard each other through the directory (so routes exist). */
async function pair(extra: { takerEndToEnd?: boolean } = {}) {
  const dn = await startDirectory();
  track(dn.node);
  const maker = await startClient('maker', [dn.location]);
  track(maker.node);
  const taker = await startClient(
    'taker',
    [dn.location],
    extra.takerEndToEnd === false ? { endToEnd: false } : {},
  );
  track(taker.node);
  // Each learns a route to the other through the directory: the maker's offer reaches the taker,
  // the taker's !orderbook reaches the maker (docs/protocol.md §4.3: route via a directory that carried it).
  maker.node.setOffers([
    { type: 'sw0reloffer', oid: 0, minsize: 1000, maxsize: 100000, txfee: 0, cjfee: '0.0002' },
  ]);
  await taker.events.waitFor(
    'the offer pubmsg',
    (e) => e.name === 'pubmsg' && (e.data as { from: string }).from === maker.node.nick,
  );
  taker.node.pubmsg('!orderbook');
  await taker.events.waitFor('the signed offer', isPrivmsg(maker.node.nick, 'sw0reloffer'));
  return { dn, maker, taker };
}

describe('end-to-end encryption', () => {
  it('runs fill..sig through a directory that relays only ciphertext for the encrypted commands', async () => {
    const { dn, maker, taker } = await pair();
    const route = { route: 'directory' } as const;
    const T = taker.node.nick;
    const M = maker.node.nick;
    taker.node.privmsg(M, 'fill', '0 50000 Pcommitment', route);
    const fill = await maker.events.waitFor('!fill', isPrivmsg(T, 'fill'));
    expect((fill.data as Privmsg).body).toBe('0 50000 Pcommitment');
    // On the wire the daemon inserted its NaCl key as the third argument (docs/protocol.md §5.2).
    const relayedFill = await dn.relays.waitFor('fill relayed', (r) => r.cmd === 'fill');
    expect(relayedFill.line).toMatch(/!fill 0 50000 [0-9a-f]{64} Pcommitment [0-9a-f]{66} \S+$/);
    maker.node.privmsg(T, 'pubkey', '', route);
    expect(
      ((await taker.events.waitFor('!pubkey', isPrivmsg(M, 'pubkey'))).data as Privmsg).body,
    ).toBe('');
    const steps: [string, 'taker' | 'maker', string][] = [
      ['auth', 'taker', 'secret-auth txid:0|P|P2|sig|e'],
      ['ioauth', 'maker', 'secret-ioauth utxo auth_pub cj change btcsig'],
      ['tx', 'taker', 'secret-tx AAAA'],
      ['sig', 'maker', 'secret-sig BBBB'],
    ];
    for (const [cmd, sender, body] of steps) {
      const [from, to] = sender === 'taker' ? [taker, maker] : [maker, taker];
      from.node.privmsg(to.node.nick, cmd, body, route);
      const got = await to.events.waitFor(`!${cmd}`, isPrivmsg(from.node.nick, cmd));
      expect(got.data).toMatchObject({ body, encrypted: true, via: { kind: 'directory' } });
      const relayed = await dn.relays.waitFor(`${cmd} relayed`, (r) => r.cmd === cmd);
      expect(relayed.line).not.toContain('secret');
      const payload = relayed.line.split(' ')[1] ?? '';
      // base64(nonce 24 ‖ MAC 16 ‖ ciphertext) (docs/protocol.md §7).
      expect(Buffer.from(payload, 'base64').length).toBe(24 + 16 + Buffer.byteLength(body));
    }
  });

  it('refuses an encrypted command before the key exchange, sending nothing', async () => {
    const { dn, maker, taker } = await pair();
    let error: unknown;
    try {
      taker.node.privmsg(maker.node.nick, 'auth', 'too early');
    } catch (err) {
      error = err;
    }
    expect(hasCode(error, 'ERR_CRYPTO')).toBe(true);
    expect(dn.relays.items.some((r) => r.cmd === 'auth')).toBe(false);
    expect(() => maker.node.privmsg(taker.node.nick, 'pubkey', '')).toThrow(/no !fill/);
  });

  it('interoperates with a taker that does the NaCl exchange itself, and drops a forged ciphertext', async () => {
    // A raw-mode taker behaves as the reference: its application owns the keys (docs/protocol.md §7).
    const { maker, taker } = await pair({ takerEndToEnd: false });
    const T = taker.node.nick;
    const M = maker.node.nick;
    const keys = generateBoxKeyPair();
    taker.node.privmsg(M, 'fill', `0 50000 ${Buffer.from(keys.publicKey).toString('hex')} Pcommit`);
    await maker.events.waitFor('!fill', isPrivmsg(T, 'fill'));
    maker.node.privmsg(T, 'pubkey', 'features=neutrino_compat');
    const pubkey = await taker.events.waitFor('!pubkey', isPrivmsg(M, 'pubkey'));
    const [makerKeyHex, features] = (pubkey.data as Privmsg).body.split(' ');
    expect(features).toBe('features=neutrino_compat');
    const makerKey = parseBoxPublicKeyHex(makerKeyHex ?? '');
    taker.node.privmsg(M, 'auth', encryptToWire('revelation', makerKey, keys.secretKey));
    expect((await maker.events.waitFor('!auth', isPrivmsg(T, 'auth'))).data).toMatchObject({
      body: 'revelation',
      encrypted: true,
    });
    maker.node.privmsg(T, 'ioauth', 'maker reply');
    const ioauth = await taker.events.waitFor('!ioauth', isPrivmsg(M, 'ioauth'));
    expect(decryptFromWire((ioauth.data as Privmsg).body, makerKey, keys.secretKey)).toBe(
      'maker reply',
    );
    // A properly signed privmsg whose ciphertext does not authenticate is dropped and reported.
    taker.node.privmsg(M, 'tx', Buffer.alloc(60, 7).toString('base64'));
    const dropped = await maker.events.waitFor('the drop', (e) => e.name === 'dropped');
    expect((dropped.data as { reason: string }).reason).toMatch(/^crypto:/);
    expect(maker.events.items.some(isPrivmsg(T, 'tx'))).toBe(false);
  });

  it('answers a !fill with an invalid NaCl key with !error and does not deliver it', async () => {
    const { maker, taker } = await pair({ takerEndToEnd: false });
    taker.node.privmsg(maker.node.nick, 'fill', '0 50000 nothex Pcommit');
    const error = await taker.events.waitFor('!error', isPrivmsg(maker.node.nick, 'error'));
    expect((error.data as Privmsg).body).toBe('Invalid nacl pubkey');
    expect(maker.events.items.some(isPrivmsg(taker.node.nick, 'fill'))).toBe(false);
  });

  it('keeps one session when !fill goes through the directory and !auth over a direct link', async () => {
    const { maker, taker } = await pair();
    const M = maker.node.nick;
    // The first privmsg goes through the directory and starts a dial: the directory's peerlist
    // after relaying the maker's offer told the taker where the maker is (docs/protocol.md §3.3, §4.3).
    expect(taker.node.privmsg(M, 'fill', '0 50000 Pcommit').kind).toBe('directory');
    await taker.events.waitFor(
      'the direct link at the taker',
      (e) => e.name === 'peer' && (e.data as { up: boolean }).up,
    );
    await maker.events.waitFor(
      'the direct link at the maker',
      (e) => e.name === 'peer' && (e.data as { up: boolean }).up,
    );
    await maker.events.waitFor('!fill', isPrivmsg(taker.node.nick, 'fill'));
    expect(maker.node.privmsg(taker.node.nick, 'pubkey', '').kind).toBe('direct');
    await taker.events.waitFor('!pubkey', isPrivmsg(M, 'pubkey'));
    expect(taker.node.privmsg(M, 'auth', 'over the direct link').kind).toBe('direct');
    const auth = await maker.events.waitFor('!auth', isPrivmsg(taker.node.nick, 'auth'));
    expect(auth.data).toMatchObject({
      body: 'over the direct link',
      encrypted: true,
      via: { kind: 'direct' },
    });
  });
});

describe('routing', () => {
  it('reports a privmsg it cannot route instead of dropping it', async () => {
    const dn = await startDirectory();
    track(dn.node);
    const taker = await startClient('taker', [dn.location]);
    track(taker.node);
    let error: unknown;
    try {
      taker.node.privmsg('J5Ckon1LuuapPSBM', 'orderbook', 'x');
    } catch (err) {
      error = err;
    }
    expect(hasCode(error, 'ERR_NOT_ROUTABLE')).toBe(true);
  });

  it('refuses a command that receivers would drop (docs/protocol.md §5.2)', () => {
    const dn = startDirectory();
    return dn.then(async ({ node, location }) => {
      track(node);
      const taker = await startClient('taker', [location]);
      track(taker.node);
      for (const cmd of ['hello', 'tbond', 'cancel']) {
        let error: unknown;
        try {
          taker.node.privmsg('J5Ckon1LuuapPSBM', cmd, 'x');
        } catch (err) {
          error = err;
        }
        expect(hasCode(error, 'ERR_API'), cmd).toBe(true);
      }
    });
  });

  it('delivers each pubmsg and each privmsg once although two directories carry them', async () => {
    const a = await startDirectory();
    const b = await startDirectory();
    track(a.node);
    track(b.node);
    const maker = await startClient('maker', [a.location, b.location]);
    track(maker.node);
    const taker = await startClient('taker', [a.location, b.location]);
    track(taker.node);
    maker.node.setOffers([
      { type: 'sw0absoffer', oid: 3, minsize: 1000, maxsize: 9000, txfee: 0, cjfee: '100' },
    ]);
    await b.relays.waitFor(
      'the offer through b',
      (r) => r.kind === 'pubmsg' && r.from === maker.node.nick,
    );
    await a.relays.waitFor(
      'the offer through a',
      (r) => r.kind === 'pubmsg' && r.from === maker.node.nick,
    );
    expect(taker.node.pubmsg('!orderbook')).toBe(2);
    await taker.events.waitFor('the signed offer', isPrivmsg(maker.node.nick, 'sw0absoffer'));
    // Both directories carried !orderbook; the maker answered once. Prove no second answer is on
    // its way: a later privmsg from the maker arrives after anything sent before it.
    await a.relays.waitFor(
      'orderbook through a',
      (r) => r.kind === 'pubmsg' && r.from === taker.node.nick,
    );
    await b.relays.waitFor(
      'orderbook through b',
      (r) => r.kind === 'pubmsg' && r.from === taker.node.nick,
    );
    maker.node.privmsg(taker.node.nick, 'error', 'marker');
    await taker.events.waitFor('the marker', isPrivmsg(maker.node.nick, 'error'));
    expect(taker.events.items.filter(isPrivmsg(maker.node.nick, 'sw0absoffer'))).toHaveLength(1);
    expect(
      taker.events.items.filter(
        (e) => e.name === 'pubmsg' && (e.data as { from: string }).from === maker.node.nick,
      ),
    ).toHaveLength(1);
    expect(taker.node.orderbook.entries()).toEqual([
      {
        type: 'sw0absoffer',
        oid: 3,
        minsize: 1000,
        maxsize: 9000,
        txfee: 0,
        cjfee: '100',
        nick: maker.node.nick,
        source: 'privmsg',
      },
    ]);
  });

  it('reconnects to a directory node that comes back, and hears a departed maker leave', async () => {
    const dn = await startDirectory();
    const maker = await startClient('maker', [dn.location]);
    track(maker.node);
    const taker = await startClient('taker', [dn.location]);
    track(taker.node);
    maker.node.setOffers([
      { type: 'sw0reloffer', oid: 0, minsize: 1, maxsize: 2, txfee: 0, cjfee: '0.1' },
    ]);
    await taker.events.waitFor('offer', (e) => e.name === 'pubmsg');
    await maker.node.stop();
    await taker.events.waitFor(
      'the maker leaving',
      (e) => e.name === 'nickLeave' && (e.data as { nick: string }).nick === maker.node.nick,
    );
    expect(taker.node.orderbook.entries()).toEqual([]);
    await dn.node.stop();
    await taker.events.waitFor(
      'directory down',
      (e) => e.name === 'directory' && !(e.data as { up: boolean }).up,
    );
    const again = await startDirectory({ port: dn.port });
    track(again.node);
    const downAt = taker.events.items.findIndex(
      (x) => x.name === 'directory' && !(x.data as { up: boolean }).up,
    );
    await taker.events.waitFor(
      'directory up again',
      (e) =>
        e.name === 'directory' &&
        (e.data as { up: boolean }).up &&
        taker.events.items.indexOf(e) > downAt,
    );
    expect(again.node.handshakedCount).toBe(1);
  });
});

describe('nick authentication', () => {
  it('a maker proves its nick to our directory, which marks it verified', async () => {
    const server = await BoundServer.listen();
    const port = server.port;
    const dn = await startDirectory({
      server,
      ownLocation: server.location,
      features: { peerlist_features: true, ping: true, nick_auth: true },
      nickAuth: { mode: 'require_verified', directoryId: `127.0.0.1:${port}` },
    });
    track(dn.node);
    const maker = await startClient('maker', [dn.location]);
    track(maker.node);
    expect(dn.node.peers()).toEqual([
      expect.objectContaining({ nick: maker.node.nick, state: 'handshaked', verified: true }),
    ]);
    expect(dn.node.counters.get('nick-auth.ok')).toBe(1);
  });

  it('a client refuses to sign a challenge bound to another directory-id', async () => {
    const dn = await startDirectory({
      features: { nick_auth: true },
      nickAuth: { mode: 'prefer_verified', directoryId: 'someoneelse.example:5222' },
    });
    track(dn.node);
    const maker = await startClient('maker', [dn.location], { waitForDirectories: false });
    track(maker.node);
    await pollUntil(
      'the refusal',
      () =>
        Promise.resolve(
          maker.node.counters.get('nick-auth.wrong-directory-id') > 0 ? true : undefined,
        ),
      5_000,
      5,
    );
    expect(maker.node.hasDirectory).toBe(false);
    expect(dn.node.counters.get('nick-auth.ok')).toBe(0);
  });

  it('proves its nick to a directory node whose directory-id is configured for its location (nickAuthDirectoryIds)', async () => {
    const dn = await startDirectory({
      features: { nick_auth: true },
      nickAuth: { mode: 'require_verified', directoryId: 'someoneelse.example:5222' },
    });
    track(dn.node);
    const maker = await startClient('maker', [dn.location], {
      nickAuthDirectoryIds: { [dn.location]: 'someoneelse.example:5222' },
    });
    track(maker.node);
    expect(dn.node.peers()).toEqual([
      expect.objectContaining({ nick: maker.node.nick, state: 'handshaked', verified: true }),
    ]);
    expect(maker.node.counters.get('nick-auth.wrong-directory-id')).toBe(0);
  });

  it('with nick authentication off (no nick_auth feature) joins a directory node unverified', async () => {
    const dn = await startDirectory({
      features: { nick_auth: true },
      nickAuth: { mode: 'prefer_verified', directoryId: 'someoneelse.example:5222' },
    });
    track(dn.node);
    const maker = await startClient('maker', [dn.location], {
      features: { peerlist_features: true, ping: true },
    });
    track(maker.node);
    expect(dn.node.peers()).toEqual([
      expect.objectContaining({ nick: maker.node.nick, state: 'handshaked', verified: false }),
    ]);
    expect(dn.node.counters.get('nick-auth.ok')).toBe(0);
  });
});

describe('a directory node that closes without a 795', () => {
  it('is logged with the inferred reason and counted', async () => {
    // A directory node that reads the 793 and hangs up, as an ng directory node refuses.
    const server = await BoundServer.listen();
    await server.listen((socket) => {
      socket.once('data', () => socket.end());
    });
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(chunk.toString('utf8'));
        callback();
      },
    });
    const taker = await startClient('taker', [server.location], {
      waitForDirectories: false,
      logger: createLogger({ destination }),
    });
    track(taker.node);
    await pollUntil(
      'the close to be counted',
      () =>
        Promise.resolve(
          taker.node.counters.get('directory.closed-without-reply') > 0 ? true : undefined,
        ),
      5_000,
      5,
    );
    await taker.node.stop();
    await server.close();
    const logged = lines
      .map((l) => JSON.parse(l) as { msg: string; reason?: string })
      .find((l) => l.msg === 'directory node closed the connection without a 795');
    expect(logged?.reason).toContain('network mismatch (we sent "testnet")');
  });
});

describe('relocation', () => {
  it('re-handshakes every directory at once under a new location', async () => {
    const dn = await startDirectory();
    track(dn.node);
    // A slow backoff: relocation must not wait for it.
    const maker = await startClient('maker', [dn.location], {
      backoff: {
        initialMs: 60_000,
        factor: 1.5,
        maxMs: 600_000,
        jitterMs: [0, 0],
        stableMs: 60_000,
      },
    });
    track(maker.node);
    const upsBefore = maker.events.items.filter(
      (e) => e.name === 'directory' && (e.data as { up: boolean }).up,
    ).length;
    maker.node.relocate('127.0.0.1:1');
    await maker.events.waitFor(
      'the second handshake',
      () =>
        maker.events.items.filter((e) => e.name === 'directory' && (e.data as { up: boolean }).up)
          .length > upsBefore,
    );
    expect(maker.node.location).toBe('127.0.0.1:1');
    expect(dn.node.peers()).toEqual([
      expect.objectContaining({
        nick: maker.node.nick,
        location: '127.0.0.1:1',
        state: 'handshaked',
      }),
    ]);
  });
});

/** A 795 from a directory that advertises `ping` (as ng's do). */
const DN_HANDSHAKE_WITH_PING = directoryHandshake({ ping: true }, 'J5Ckon1LuuapPSBM');

/** The same 795 without `ping` (as a reference directory sends: `features: {}`). */
const DN_HANDSHAKE_WITHOUT_PING = directoryHandshake({}, 'J5Ckon1LuuapPSBM');

describe('directory liveness', () => {
  it('pings an idle directory that advertised ping and keeps it when it answers', async () => {
    let now = 1_000_000;
    const dn = await ScriptedServer.listen();
    stops.push(() => dn.close());
    const taker = await startClient('taker', [`127.0.0.1:${dn.port}`], {
      now: () => now,
      waitForDirectories: false,
    });
    track(taker.node);
    const link = await dn.connection(0);
    await link.next();
    link.send(DN_HANDSHAKE_WITH_PING);
    await taker.events.waitFor(
      'the handshake',
      (e) => e.name === 'directory' && (e.data as { up: boolean }).up,
    );
    now += DIRECTORY_PROBE_IDLE_MS;
    taker.node.probeDirectories();
    expect(await link.next()).toBe('{"type": 798, "line": ""}');
    // The pong, then a pubmsg: once the pubmsg is delivered, the pong has been processed too.
    link.send('{"type": 799, "line": ""}');
    link.send('{"type": 687, "line": "J5Ckon1LuuapPSBM!PUBLIC!hp2 00"}');
    await taker.events.waitFor('the pubmsg', (e) => e.name === 'pubmsg');
    now += DIRECTORY_PROBE_TIMEOUT_MS;
    taker.node.probeDirectories();
    expect(taker.node.counters.get('directory.probe-timeout')).toBe(0);
    expect(taker.node.hasDirectory).toBe(true);
  });

  it('drops and redials a directory that stays silent after a ping', async () => {
    let now = 1_000_000;
    const silent = await ScriptedServer.listen();
    stops.push(() => silent.close());
    const taker = await startClient('taker', [`127.0.0.1:${silent.port}`], {
      now: () => now,
      waitForDirectories: false,
    });
    track(taker.node);
    const first = await silent.connection(0);
    await first.next(); // the taker's 793
    first.send(DN_HANDSHAKE_WITH_PING);
    await taker.events.waitFor(
      'the handshake',
      (e) => e.name === 'directory' && (e.data as { up: boolean }).up,
    );
    now += DIRECTORY_PROBE_IDLE_MS;
    taker.node.probeDirectories();
    expect(await first.next()).toBe('{"type": 798, "line": ""}');
    now += DIRECTORY_PROBE_TIMEOUT_MS;
    taker.node.probeDirectories();
    expect(taker.node.counters.get('directory.probe-timeout')).toBe(1);
    await first.waitClosed();
    // The link is redialed (test backoff: milliseconds).
    await silent.connection(1);
  });

  it('never sends 798 to a directory that did not advertise ping (a reference directory)', async () => {
    let now = 1_000_000;
    const dn = await ScriptedServer.listen();
    stops.push(() => dn.close());
    const taker = await startClient('taker', [`127.0.0.1:${dn.port}`], {
      now: () => now,
      waitForDirectories: false,
    });
    track(taker.node);
    const link = await dn.connection(0);
    await link.next(); // the taker's 793
    link.send(DN_HANDSHAKE_WITHOUT_PING);
    await taker.events.waitFor(
      'the handshake',
      (e) => e.name === 'directory' && (e.data as { up: boolean }).up,
    );
    now += 10 * DIRECTORY_PROBE_IDLE_MS;
    taker.node.probeDirectories();
    // Lines on one connection arrive in order: had a 798 been sent, it would come first.
    taker.node.pubmsg('!marker');
    expect(await link.next()).toBe(`{"type": 687, "line": "${taker.node.nick}!PUBLIC!marker"}`);
  });
});
