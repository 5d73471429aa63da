/**
 * NodeCore's own checks: testing mode from `regtest_count`, and a wallet whose signature is not
 * by the nick's key (or does not verify) is refused before anything goes on the wire.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { createNickIdentity } from '../../src/message/nick.js';
import type { OnionChannelConfig } from '../../src/joinmarketd/core.js';
import { handshakeNetwork, isTestingMode, NodeCore } from '../../src/joinmarketd/node-core.js';
import { startClient, startDirectory, TEST_BACKOFF } from '../node/harness.js';

const cores: NodeCore[] = [];
const others: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(cores.splice(0).map((c) => c.stop()));
  await Promise.all(others.splice(0).map((n) => n.stop()));
});

function config(directory: string, regtestCount: string | undefined): OnionChannelConfig {
  return {
    sectionName: 'MESSAGING:onion',
    directoryNodes: [directory],
    socks5Host: 'localhost',
    socks5Port: 9050,
    torControlHost: 'localhost',
    torControlPort: 9051,
    onionServingHost: '127.0.0.1',
    onionServingPort: 0,
    hiddenServiceDir: '',
    serving: false,
    passive: false,
    btcnet: 'testnet',
    regtestCount,
    raw: {},
  };
}

describe('NodeCore', () => {
  it('reads testing mode from regtest_count as the reference does', () => {
    expect(isTestingMode(config('x:1', '1,1'))).toBe(true);
    expect(isTestingMode(config('x:1', ' 1, 5'))).toBe(true);
    expect(isTestingMode(config('x:1', '0,0'))).toBe(false);
    expect(isTestingMode(config('x:1', undefined))).toBe(false);
    expect(isTestingMode(config('x:1', 'a,b'))).toBe(false);
    expect(handshakeNetwork('regtest')).toBe('testnet');
    expect(handshakeNetwork('signet')).toBe('signet');
  });

  it('refuses a wallet signature by another key, or one that does not verify', async () => {
    const dn = await startDirectory();
    others.push(dn.node);
    const peer = await startClient('maker', [dn.location]);
    others.push(peer.node);
    const nick = createNickIdentity();
    const other = createNickIdentity();
    let mode: 'other-key' | 'garbage' | 'good' = 'other-key';
    const core = new NodeCore(
      {
        nick: nick.nick,
        config: config(dn.location, '1,1'),
        network: 'testnet',
        signer: (r) => {
          const signedBy = mode === 'other-key' ? other : nick;
          const sig = mode === 'garbage' ? signedBy.sign('x') : signedBy.sign(r.msg + r.hostid);
          return Promise.resolve(`${r.msg} ${signedBy.publicKeyHex} ${sig}`);
        },
        verifier: () => Promise.resolve(true),
      },
      { logger: silentLogger(), backoff: TEST_BACKOFF },
    );
    cores.push(core);
    const up = new Promise<void>((resolve) =>
      core.on('up', () => {
        resolve();
      }),
    );
    await core.start();
    await up;
    // The peer's pubmsg teaches the route.
    const heard = new Promise<void>((resolve) =>
      core.on('pubmsg', () => {
        resolve();
      }),
    );
    peer.node.pubmsg('!sw0reloffer 0 27300 1000000 0 0.00002');
    await heard;
    await expect(core.privmsg(peer.node.nick, 'error', 'hi')).rejects.toThrow(/nick's key/);
    mode = 'garbage';
    await expect(core.privmsg(peer.node.nick, 'error', 'hi')).rejects.toThrow(/does not verify/);
    mode = 'good';
    await core.privmsg(peer.node.nick, 'error', 'hi');
    const got = await peer.events.waitFor('the privmsg', (e) => e.name === 'privmsg');
    expect(got.data).toMatchObject({ from: nick.nick, cmd: 'error', body: 'hi' });
    expect(peer.events.items.filter((e) => e.name === 'privmsg')).toHaveLength(1);
  });
});
