import { describe, expect, it } from 'vitest';
import { hasCode } from '../../src/errors.js';
import { EncryptionSessions } from '../../src/node/encryption-sessions.js';

function thrownCode(fn: () => unknown): boolean {
  try {
    fn();
  } catch (err) {
    return hasCode(err, 'ERR_CRYPTO');
  }
  return false;
}

describe('EncryptionSessions', () => {
  it('exchanges keys through fill and pubkey and encrypts both ways', () => {
    const taker = new EncryptionSessions();
    const maker = new EncryptionSessions();
    const takerKey = taker.startAsTaker('M');
    maker.acceptFill('T', takerKey);
    taker.acceptPubkey('M', maker.makerPublicKey('T'));
    expect(taker.isReady('M') && maker.isReady('T')).toBe(true);
    expect(maker.decrypt('T', taker.encrypt('M', 'auth payload'))).toBe('auth payload');
    expect(taker.decrypt('M', maker.encrypt('T', 'ioauth payload'))).toBe('ioauth payload');
    // A fresh random nonce per message (docs/protocol.md §7): the same plaintext never encrypts the same way.
    expect(taker.encrypt('M', 'x')).not.toBe(taker.encrypt('M', 'x'));
  });

  it('refuses what comes out of order and keys that are not 32 bytes of hex', () => {
    const sessions = new EncryptionSessions();
    expect(thrownCode(() => sessions.encrypt('X', 'early'))).toBe(true);
    expect(thrownCode(() => sessions.makerPublicKey('X'))).toBe(true);
    expect(
      thrownCode(() => {
        sessions.acceptPubkey('X', 'ab'.repeat(32));
      }),
    ).toBe(true);
    expect(
      thrownCode(() => {
        sessions.acceptFill('X', 'ab'.repeat(31));
      }),
    ).toBe(true);
    expect(
      thrownCode(() => {
        sessions.acceptFill('X', 'zz'.repeat(32));
      }),
    ).toBe(true);
  });

  it('expires idle sessions and wipes them', () => {
    let now = 0;
    const taker = new EncryptionSessions({ now: () => now, ttlMs: 1_000 });
    const maker = new EncryptionSessions({ now: () => now, ttlMs: 1_000 });
    maker.acceptFill('T', taker.startAsTaker('M'));
    taker.acceptPubkey('M', maker.makerPublicKey('T'));
    now = 999;
    expect(taker.isReady('M')).toBe(true);
    now = 2_500;
    expect(taker.isReady('M')).toBe(false);
    expect(taker.sweep()).toBe(1);
    expect(taker.size).toBe(0);
    expect(thrownCode(() => taker.encrypt('M', 'late'))).toBe(true);
    // An expired session cannot be revived by its counterparty's old key exchange.
    expect(thrownCode(() => maker.decrypt('T', 'AAAA'))).toBe(true);
  });

  it('starts a new session on a new !fill and ends one on request', () => {
    const maker = new EncryptionSessions();
    const taker = new EncryptionSessions();
    maker.acceptFill('T', taker.startAsTaker('M'));
    const first = maker.makerPublicKey('T');
    maker.acceptFill('T', taker.startAsTaker('M'));
    expect(maker.makerPublicKey('T')).not.toBe(first);
    maker.end('T');
    expect(maker.isReady('T')).toBe(false);
  });
});
