/**
 * The message-channel command table (docs/protocol.md §5.1-§5.3; R: src/jmdaemon/protocol.py lists,
 * R: src/jmdaemon/message_channel.py `on_privmsg`, `on_pubmsg`).
 *
 * | list                 | commands                                                          |
 * |----------------------|-------------------------------------------------------------------|
 * | encrypted (NaCl box) | auth, ioauth, tx, sig                                             |
 * | offer types          | reloffer, absoffer, swreloffer, swabsoffer, sw0reloffer, sw0absoffer |
 * | plaintext            | fill, error, pubkey, orderbook, push, the six offer types, hp2    |
 *
 * `tbond` and `cancel` are valid only after another command (offer replies) or in pubmsgs: a
 * privmsg whose first command is neither plaintext nor encrypted is dropped (docs/protocol.md §5.2). Pure.
 */

/** Every command starts with this character; fields are separated by single spaces (§5.1). */
export const COMMAND_PREFIX = '!';

/** Commands whose arguments are a NaCl box in base64 (docs/protocol.md §5.3, §7). */
export const ENCRYPTED_COMMANDS: ReadonlySet<string> = new Set(['auth', 'ioauth', 'tx', 'sig']);

/** The six offer types (docs/protocol.md §5.2; R: src/jmdaemon/protocol.py `offername_list`). */
export const OFFER_TYPES: ReadonlySet<string> = new Set([
  'reloffer',
  'absoffer',
  'swreloffer',
  'swabsoffer',
  'sw0reloffer',
  'sw0absoffer',
]);

/** The reference's `plaintext_commands`: fill, error, pubkey, orderbook, push, offers, hp2. */
export const PLAINTEXT_COMMANDS: ReadonlySet<string> = new Set([
  'fill',
  'error',
  'pubkey',
  'orderbook',
  'push',
  ...OFFER_TYPES,
  'hp2',
]);

/** True when `cmd` (without `!`) is sent NaCl-encrypted: auth, ioauth, tx, sig (docs/protocol.md §5.3). */
export function isEncryptedCommand(cmd: string): boolean {
  return ENCRYPTED_COMMANDS.has(cmd);
}

/**
 * True when `cmd` (without `!`) may be the first command of a privmsg: plaintext or encrypted.
 * `tbond` and `cancel` first are rejected, as is anything unknown (docs/protocol.md §5.2).
 */
export function isPrivmsgCommandAllowed(cmd: string): boolean {
  return PLAINTEXT_COMMANDS.has(cmd) || ENCRYPTED_COMMANDS.has(cmd);
}

/**
 * Splits a message holding one or more commands on `!` and drops empty pieces, as receivers do
 * (docs/protocol.md §5.1): `'!a x!b y'` gives `['a x', 'b y']`. Pieces are not trimmed; each is
 * `<cmd> <args…>`.
 */
export function splitCommands(message: string): string[] {
  return message.split(COMMAND_PREFIX).filter((piece) => piece.length > 0);
}
