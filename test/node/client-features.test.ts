/**
 * The features of a maker's or taker's 793 from the configuration (src/daemon/daemon.ts
 * `clientFeatures`): `nick_auth_mode = disabled` is the client's off switch for nick
 * authentication, and `features` adds what the application declares (docs/protocol.md §13.2).
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/config.js';
import { clientFeatures } from '../../src/daemon/daemon.js';

function config(extra: string[]): ReturnType<typeof parseConfig> {
  return parseConfig(
    [
      '[BLOCKCHAIN]',
      'network = testnet',
      '[MESSAGING:onion]',
      'type = onion',
      'directory_nodes = 127.0.0.1:5222',
      'regtest_count = 1,1',
      ...extra,
      '',
    ].join('\n'),
    'joinmarket.cfg',
  );
}

describe('clientFeatures', () => {
  it('advertises nick_auth, peerlist_features and ping by default', () => {
    expect(clientFeatures(config([]))).toEqual({
      nick_auth: true,
      peerlist_features: true,
      ping: true,
    });
  });

  it('drops nick_auth when nick_auth_mode = disabled and adds the declared features', () => {
    expect(
      clientFeatures(config(['nick_auth_mode = disabled', 'features = neutrino_compat'])),
    ).toEqual({ peerlist_features: true, ping: true, neutrino_compat: true });
  });
});
