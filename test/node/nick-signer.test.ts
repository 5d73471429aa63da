/**
 * A maker and a taker whose nick key is held outside the node (as a jmclient wallet holds it
 * behind `onionmc joinmarketd`): every privmsg is signed and every received one verified through
 * asynchronous hooks, nick authentication goes through the signer, and the bytes are the ones the
 * in-process key writes (the receiving node checks them with its own default verifier).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createNickIdentity, type NickIdentity } from '../../src/message/nick.js';
import { verifyPrivmsg } from '../../src/message/privmsg.js';
import type { ClientNode } from '../../src/node/client-node.js';
import type { DirectoryNode } from '../../src/node/directory-node.js';
import { identitySigner, type NickSigner, type NickVerifier } from '../../src/node/nick-signer.js';
import { BoundServer } from '../helpers/ports.js';
import { startClient, startDirectory } from './harness.js';

const running: (ClientNode | DirectoryNode)[] = [];
function track<T extends ClientNode | DirectoryNode>(node: T): T {
  running.push(node);
  return node;
}
afterEach(async () => {
  await Promise.all(running.splice(0).map((n) => n.stop()));
});

/** A signer that answers on a later turn of the event loop, and counts what it signed. */
function asyncSigner(identity: NickIdentity, knowsKey = true): NickSigner & { signed: string[] } {
  const inner = identitySigner(identity);
  const signed: string[] = [];
  return {
    signed,
    nick: identity.nick,
    publicKeyHex: knowsKey ? identity.publicKeyHex : undefined,
    signPrivmsg: (request) =>
      new Promise((resolve) => {
        setImmediate(() => {
          signed.push(`${request.cmd} ${request.body}`);
          resolve(inner.signPrivmsg(request));
        });
      }),
    signText: (text) =>
      new Promise((resolve) => {
        setImmediate(() => {
          signed.push(text);
          resolve(inner.signText(text));
        });
      }),
  };
}

/** A verifier that answers later and records what it was asked. */
function asyncVerifier(refuse = false): NickVerifier & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    verifyPrivmsg: (from, message, hostid) =>
      new Promise((resolve) => {
        setImmediate(() => {
          asked.push(`${from} ${message}`);
          resolve(
            refuse ? { ok: false, reason: 'bad-signature' } : verifyPrivmsg(from, message, hostid),
          );
        });
      }),
  };
}

describe('outside nick signer and verifier', () => {
  it('signs and verifies privmsgs asynchronously, both ways, with plain nodes reading them', async () => {
    const dn = track((await startDirectory()).node);
    const location = dn.location;
    const makerIdentity = createNickIdentity();
    const signer = asyncSigner(makerIdentity);
    const verifier = asyncVerifier();
    const maker = await startClient('maker', [location], { signer, verifier });
    track(maker.node);
    expect(maker.node.nick).toBe(makerIdentity.nick);
    const taker = await startClient('taker', [location]);
    track(taker.node);

    // Plain taker → outside-verified maker.
    taker.node.pubmsg('!orderbook');
    await maker.events.waitFor('the pubmsg', (e) => e.name === 'pubmsg');
    // The maker answers through its async signer; the plain taker verifies it in process.
    await maker.node.privmsgAsync(taker.node.nick, 'sw0reloffer', '0 27300 1000000 0 0.00002');
    const offer = await taker.events.waitFor(
      'the offer',
      (e) => e.name === 'privmsg' && (e.data as { cmd: string }).cmd === 'sw0reloffer',
    );
    expect(offer.data).toMatchObject({ from: maker.node.nick, body: '0 27300 1000000 0 0.00002' });
    expect(signer.signed).toContain('sw0reloffer 0 27300 1000000 0 0.00002');
    // A sync privmsg with an async signer is refused with a clear error, nothing is sent.
    expect(() => maker.node.privmsg(taker.node.nick, 'error', 'x')).toThrow(/privmsgAsync/);

    taker.node.privmsg(maker.node.nick, 'error', 'hello');
    const got = await maker.events.waitFor(
      'the privmsg',
      (e) => e.name === 'privmsg' && (e.data as { cmd: string }).cmd === 'error',
    );
    expect(got.data).toMatchObject({ from: taker.node.nick, body: 'hello' });
    expect(verifier.asked).toEqual([
      expect.stringMatching(/^J5\S+ !error hello 0[23][0-9a-f]{64} \S+$/),
    ]);
  });

  it('drops a privmsg its verifier refuses', async () => {
    const dn = track((await startDirectory()).node);
    const verifier = asyncVerifier(true);
    const maker = await startClient('maker', [dn.location], { verifier });
    track(maker.node);
    const taker = await startClient('taker', [dn.location]);
    track(taker.node);
    maker.node.pubmsg('!sw0reloffer 0 27300 1000000 0 0.00002');
    await taker.events.waitFor('the pubmsg', (e) => e.name === 'pubmsg');
    taker.node.privmsg(maker.node.nick, 'error', 'hello');
    await maker.events.waitFor(
      'the drop',
      (e) =>
        e.name === 'dropped' && (e.data as { reason: string }).reason.startsWith('bad-signature'),
    );
    expect(maker.events.items.some((e) => e.name === 'privmsg')).toBe(false);
  });

  it('answers nick authentication through the signer, and does not offer it without a key', async () => {
    const server = await BoundServer.listen();
    const dn = await startDirectory({
      server,
      ownLocation: server.location,
      features: { peerlist_features: true, ping: true, nick_auth: true },
      nickAuth: { mode: 'prefer_verified', directoryId: `127.0.0.1:${server.port}` },
    });
    track(dn.node);
    const withKey = asyncSigner(createNickIdentity());
    const maker = await startClient('maker', [dn.location], { signer: withKey });
    track(maker.node);
    const withoutKey = asyncSigner(createNickIdentity(), false);
    const taker = await startClient('taker', [dn.location], { signer: withoutKey });
    track(taker.node);
    expect(dn.node.peers()).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ nick: maker.node.nick, verified: true }),
        expect.objectContaining({ nick: taker.node.nick, verified: false }),
      ]),
    );
    expect(withKey.signed).toEqual([expect.stringMatching(/^nick-auth\|/)]);
    expect(withoutKey.signed).toEqual([]);
  });
});
