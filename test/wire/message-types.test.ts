import { describe, expect, it } from 'vitest';
import {
  isSendableType,
  MessageType,
  messageTypeName,
  NEVER_SEND_TYPES,
} from '../../src/wire/message-types.js';

describe('message types (§1.4, §10)', () => {
  it('has the spec numbers', () => {
    expect(MessageType).toEqual({
      PRIVMSG: 685,
      PUBMSG: 687,
      PEERLIST: 789,
      GETPEERLIST: 791,
      HANDSHAKE: 793,
      DN_HANDSHAKE: 795,
      PING: 798,
      PONG: 799,
      NICK_AUTH_CHALLENGE: 803,
      NICK_AUTH_PROOF: 805,
      NICK_AUTH_RESULT: 807,
    });
    expect([...NEVER_SEND_TYPES]).toEqual([785, 787, 797, 801]);
  });

  it('allows exactly the named types', () => {
    for (const t of Object.values(MessageType)) expect(isSendableType(t)).toBe(true);
    for (const t of NEVER_SEND_TYPES) expect(isSendableType(t)).toBe(false);
    for (const t of [0, -1, 684, 686, 688, 790, 796, 800, 802, 804, 806, 808, 685.5, Number.NaN]) {
      expect(isSendableType(t)).toBe(false);
    }
  });

  it('names types for logs', () => {
    expect(messageTypeName(685)).toBe('privmsg');
    expect(messageTypeName(795)).toBe('dn-handshake');
    expect(messageTypeName(798)).toBe('ping');
    expect(messageTypeName(807)).toBe('nick-auth-result');
    expect(messageTypeName(801)).toBe('ref-disconnect');
    expect(messageTypeName(12345)).toBe('unknown(12345)');
  });

  it('cannot be mutated', () => {
    expect(() => (NEVER_SEND_TYPES as number[]).push(1)).toThrow(TypeError);
  });
});
