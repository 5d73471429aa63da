import { describe, expect, it } from 'vitest';
import {
  COMMAND_PREFIX,
  ENCRYPTED_COMMANDS,
  isEncryptedCommand,
  isPrivmsgCommandAllowed,
  OFFER_TYPES,
  PLAINTEXT_COMMANDS,
  splitCommands,
} from '../../src/message/commands.js';

const OFFERS = ['reloffer', 'absoffer', 'swreloffer', 'swabsoffer', 'sw0reloffer', 'sw0absoffer'];

describe('command table (docs/protocol.md §5.2)', () => {
  it('lists exactly the reference commands', () => {
    expect(COMMAND_PREFIX).toBe('!');
    expect([...ENCRYPTED_COMMANDS].sort()).toEqual(['auth', 'ioauth', 'sig', 'tx']);
    expect([...OFFER_TYPES].sort()).toEqual([...OFFERS].sort());
    expect([...PLAINTEXT_COMMANDS].sort()).toEqual(
      ['fill', 'error', 'pubkey', 'orderbook', 'push', 'hp2', ...OFFERS].sort(),
    );
  });

  it('tells encrypted commands apart', () => {
    for (const cmd of ['auth', 'ioauth', 'tx', 'sig']) expect(isEncryptedCommand(cmd)).toBe(true);
    for (const cmd of ['fill', 'pubkey', 'push', 'error', 'tbond', 'AUTH', '!auth', '']) {
      expect(isEncryptedCommand(cmd)).toBe(false);
    }
  });

  it('allows plaintext and encrypted commands first in a privmsg, and nothing else', () => {
    for (const cmd of [...PLAINTEXT_COMMANDS, ...ENCRYPTED_COMMANDS]) {
      expect(isPrivmsgCommandAllowed(cmd)).toBe(true);
    }
    for (const cmd of ['tbond', 'cancel', 'Fill', 'fill ', '', 'ping']) {
      expect(isPrivmsgCommandAllowed(cmd)).toBe(false);
    }
  });
});

describe('splitCommands (docs/protocol.md §5.1)', () => {
  it.each([
    ['!a x!b y', ['a x', 'b y']],
    ['!orderbook', ['orderbook']],
    ['!cancel 0!cancel 1', ['cancel 0', 'cancel 1']],
    ['!!a!!', ['a']],
    ['', []],
    ['!', []],
    [
      '!sw0reloffer 0 27300 1000000 0 0.00002!tbond QUJD',
      ['sw0reloffer 0 27300 1000000 0 0.00002', 'tbond QUJD'],
    ],
  ])('splits %j', (message, expected) => {
    expect(splitCommands(message)).toEqual(expected);
  });
});
