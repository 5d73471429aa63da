/**
 * What a claim of a nick under nick authentication (docs/protocol.md §9.6) may and may not cost
 * others, over loopback: flooding from a connection that has not proven the nick's key gets it
 * disconnected but never the nick refused (docs/limits.md), so nobody can lock a verified peer
 * out of its nick by claiming it; and peers that finish nick authentication are held to
 * `max_peers` as handshakes are (docs/protocol.md §9.2). The clock is frozen: buckets never
 * refill during a test.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parseNickAuthChallengeLine, type NickAuthChallenge } from '../../src/message/nick-auth.js';
import { createNickIdentity } from '../../src/message/nick.js';
import {
  DEFAULT_DIRECTORY_LIMITS,
  type DirectoryNodeOptions,
  type NickAuthPolicy,
} from '../../src/node/directory-node.js';
import { parseDirectoryHandshake } from '../../src/wire/handshake.js';
import { MessageType } from '../../src/wire/message-types.js';
import {
  DirectoryFixture,
  nickAuthProofLine,
  nickAuthResultText,
  type RawClient,
  type TestDirectory,
} from './directory-clients.js';

const fx = new DirectoryFixture();
afterEach(async () => {
  await fx.cleanup();
});

const DIRECTORY_ID = 'nick-claims-test-directory:5222';
const NICK_AUTH = { nick_auth: true };

/**
 * A directory node in nick-auth `mode`; a connection may send 20 lines, then 10 more over the
 * limit, before it is disconnected for flooding.
 */
function nickAuthDirectory(
  mode: NickAuthPolicy['mode'],
  overrides: Partial<DirectoryNodeOptions> = {},
): Promise<TestDirectory> {
  return fx.directory({
    nickAuth: { mode, directoryId: DIRECTORY_ID },
    limits: {
      ...DEFAULT_DIRECTORY_LIMITS,
      messages: { ratePerSecond: 0, burst: 20 },
      offences: { ratePerSecond: 0, burst: 10 },
    },
    ...overrides,
  });
}

/** Sends the client's 793 and reads the 795 (accepted) and the 803 that follow. */
async function challenged(client: RawClient): Promise<NickAuthChallenge> {
  client.sendHandshake();
  const reply = await client.nextEnvelope();
  expect(reply.type).toBe(MessageType.DN_HANDSHAKE);
  expect(parseDirectoryHandshake(reply.line)?.accepted).toBe(true);
  const envelope = await client.nextEnvelope();
  expect(envelope.type).toBe(MessageType.NICK_AUTH_CHALLENGE);
  const challenge = parseNickAuthChallengeLine(envelope.line);
  if (challenge === undefined) throw new Error(`malformed 803: ${envelope.line}`);
  return challenge;
}

/** Answers `challenge` with a correct 805: the client's nick key over its exact 793 line. */
function prove(client: RawClient, challenge: NickAuthChallenge): void {
  client.send(MessageType.NICK_AUTH_PROOF, nickAuthProofLine(client, challenge));
}

/** Connects `client`, authenticates it and expects the 807 `ok`. */
async function verifiedJoin(client: RawClient): Promise<void> {
  prove(client, await challenged(client));
  expect(await client.next()).toBe(nickAuthResultText('ok'));
}

/** Sends 100 lines the node ignores, far past the limits of {@link nickAuthDirectory}. */
function flood(client: RawClient): void {
  for (let i = 0; i < 100; i++) client.send(MessageType.PONG, '');
}

describe('flooding under a nick claim (docs/limits.md)', () => {
  it.each(['prefer_verified', 'require_verified'] as const)(
    '%s: an unproven claimant of a live verified nick is disconnected, the nick not refused',
    async (mode) => {
      const dn = await nickAuthDirectory(mode);
      const identity = createNickIdentity();
      const owner = await fx.connect(dn, { identity, features: NICK_AUTH });
      await verifiedJoin(owner);

      // Claims the owner's nick, offering to prove it (so admitted to the challenge), never
      // answers the 803, and floods.
      const claimant = await fx.connect(dn, { identity, features: NICK_AUTH });
      await challenged(claimant);
      flood(claimant);
      await claimant.waitClosed();
      expect(dn.node.counters.get('disconnected.flooding')).toBe(1);
      expect(dn.node.stats().bannedNicks).toBe(0);

      // The owner keeps its nick, and a new connection of its own (after a circuit reset) is
      // still admitted and takes over the stale one.
      await owner.expectQuiet();
      const again = await fx.connect(dn, { identity, features: NICK_AUTH });
      await verifiedJoin(again);
      await owner.waitClosed();
      expect(dn.node.peers()).toMatchObject([
        { nick: identity.nick, state: 'handshaked', verified: true },
      ]);
    },
  );

  it('an unproven claimant of an absent verified nick is disconnected, the nick not refused', async () => {
    const dn = await nickAuthDirectory('prefer_verified');
    const identity = createNickIdentity();
    const squatter = await fx.connect(dn, { identity, features: NICK_AUTH });
    await challenged(squatter);
    flood(squatter);
    await squatter.waitClosed();
    expect(dn.node.counters.get('disconnected.flooding')).toBe(1);
    expect(dn.node.stats().bannedNicks).toBe(0);

    const owner = await fx.connect(dn, { identity, features: NICK_AUTH });
    await verifiedJoin(owner);
    expect(dn.node.handshakedCount).toBe(1);
  });

  it('a verified peer that floods is disconnected and its nick refused', async () => {
    const dn = await nickAuthDirectory('prefer_verified');
    const identity = createNickIdentity();
    const flooder = await fx.connect(dn, { identity, features: NICK_AUTH });
    await verifiedJoin(flooder);
    flood(flooder);
    await flooder.waitClosed();
    expect(dn.node.counters.get('disconnected.flooding')).toBe(1);
    expect(dn.node.stats().bannedNicks).toBe(1);

    const again = await fx.connect(dn, { identity, features: NICK_AUTH });
    again.sendHandshake();
    const reply = parseDirectoryHandshake((await again.nextEnvelope()).line);
    expect(reply?.accepted).toBe(false);
    expect(reply?.motd).toBe('Rejected: nick refused for a while after flooding');
    await again.waitClosed();
  });

  it('prefer_verified: a nick refused after an unproven flood still admits its key holder', async () => {
    const dn = await nickAuthDirectory('prefer_verified');
    const identity = createNickIdentity();
    // Takes the absent owner's nick without nick authentication (prefer_verified admits that),
    // so the node handshakes it unverified, and floods.
    const squatter = await fx.connect(dn, { identity });
    squatter.sendHandshake();
    expect(parseDirectoryHandshake((await squatter.nextEnvelope()).line)?.accepted).toBe(true);
    flood(squatter);
    await squatter.waitClosed();
    expect(dn.node.counters.get('disconnected.flooding')).toBe(1);
    expect(dn.node.stats().bannedNicks).toBe(1);

    // Another unproven claim of the nick is refused for a while ...
    const unproven = await fx.connect(dn, { identity });
    unproven.sendHandshake();
    const reply = parseDirectoryHandshake((await unproven.nextEnvelope()).line);
    expect(reply?.motd).toBe('Rejected: nick refused for a while after flooding');
    await unproven.waitClosed();
    // ... but the key holder, proving it, is admitted.
    const owner = await fx.connect(dn, { identity, features: NICK_AUTH });
    await verifiedJoin(owner);
    expect(dn.node.peers()).toMatchObject([
      { nick: identity.nick, state: 'handshaked', verified: true },
    ]);
  });
});

describe('max_peers under nick authentication (docs/protocol.md §9.2)', () => {
  it('refuses a peer whose proof comes in once the node is full: 807 policy, then closed', async () => {
    const dn = await nickAuthDirectory('prefer_verified', { maxPeers: 2 });
    // All three pass the cap at their 793 (nobody is handshaked yet).
    const clients = [];
    for (let i = 0; i < 3; i++) clients.push(await fx.connect(dn, { features: NICK_AUTH }));
    const challenges = [];
    for (const client of clients) challenges.push(await challenged(client));
    const [first, second, third] = clients;
    const [c1, c2, c3] = challenges;
    if (!first || !second || !third || !c1 || !c2 || !c3) throw new Error('three clients');

    prove(first, c1);
    expect(await first.next()).toBe(nickAuthResultText('ok'));
    prove(second, c2);
    expect(await second.next()).toBe(nickAuthResultText('ok'));
    prove(third, c3);
    expect(await third.next()).toBe(nickAuthResultText('policy'));
    await third.waitClosed();
    expect(third.peer.lines).toEqual([]);
    expect(dn.node.handshakedCount).toBe(2);
    expect(dn.node.counters.get('handshake.rejected')).toBe(1);
    expect(dn.node.counters.get('handshake.accepted')).toBe(2);
    await first.expectQuiet();
    await second.expectQuiet();
  });

  it('still lets a full node take a proven key over from its stale connection', async () => {
    const dn = await nickAuthDirectory('prefer_verified', { maxPeers: 1 });
    const identity = createNickIdentity();
    const stale = await fx.connect(dn, { identity, features: NICK_AUTH });
    const fresh = await fx.connect(dn, { identity, features: NICK_AUTH });
    const staleChallenge = await challenged(stale);
    const freshChallenge = await challenged(fresh);
    prove(stale, staleChallenge);
    expect(await stale.next()).toBe(nickAuthResultText('ok'));
    prove(fresh, freshChallenge);
    expect(await fresh.next()).toBe(nickAuthResultText('ok'));
    await stale.waitClosed();
    expect(dn.node.counters.get('displaced.same-key')).toBe(1);
    expect(dn.node.counters.get('handshake.rejected')).toBe(0);
    await fresh.expectQuiet();
    expect(dn.node.peers()).toMatchObject([
      { nick: identity.nick, state: 'handshaked', verified: true },
    ]);
  });
});
