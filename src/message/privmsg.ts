/**
 * The inner text of 685 privmsg and 687 pubmsg lines (docs/protocol.md §4.1) and the nick signature every
 * privmsg carries (docs/protocol.md §5.6). Pure: strings in, strings or typed results out.
 *
 * | line kind | layout                                                     |
 * |-----------|------------------------------------------------------------|
 * | privmsg   | `<from>!<to>!<cmd> <body> <pubkey_hex_66> <sig_base64>`     |
 * | pubmsg    | `<from>!PUBLIC!<cmd> <args>` (several `!cmd` may follow)    |
 *
 * The signed string is `body + hostid`, hostid `onion-network`; the command word and both nicks
 * are not signed (R: src/jmdaemon/message_channel.py `prepare_privmsg`, `on_privmsg`;
 * R: src/jmclient/client_protocol.py `on_JM_REQUEST_MSGSIG`, `on_JM_REQUEST_MSGSIG_VERIFY`).
 */
import { OnionmcError } from '../errors.js';
import { COMMAND_PREFIX, isPrivmsgCommandAllowed } from './commands.js';
import { nickMatchesPublicKey, type NickIdentity } from './nick.js';
import { decodeBase64Strict, decodeHexStrict, verifyMessage } from './signing.js';

/** The hostid of the onion channel, appended to every signed body (docs/protocol.md §5.6; R: onionmc.py). */
export const HOSTID_ONION = 'onion-network';
/** The recipient nick that marks a pubmsg (docs/protocol.md §4.1). */
export const PUBLIC_NICK = 'PUBLIC';

/** Field separator inside a command (docs/protocol.md §5.1). */
const FIELD_SEPARATOR = ' ';

/** A 685/687 `line` split into sender, recipient and message (which starts with `!`). */
export interface ChannelLine {
  /** Sender nick (field 0). */
  readonly from: string;
  /** Recipient nick, or {@link PUBLIC_NICK} for a pubmsg (field 1). */
  readonly to: string;
  /** `!` + the remaining fields rejoined with `!`; may hold several `!cmd` segments. */
  readonly message: string;
}

/**
 * Splits a 685/687 `line` as the reference receiver does (docs/protocol.md §4.1; R: src/jmdaemon/onionmc.py
 * `receive_msg`): split on `!`, field 0 is the sender, field 1 the recipient, and the message is
 * `!` + the other fields rejoined with `!`.
 *
 * @returns `undefined` when there are fewer than 3 fields or either nick is empty.
 */
export function parseChannelLine(line: string): ChannelLine | undefined {
  // Field 0 ends at the first `!`, field 1 at the second; `!` + the rest rejoined is the line from
  // the second `!` on. Sliced, not split: a relayed line is long and only its nicks are needed.
  const first = line.indexOf(COMMAND_PREFIX);
  if (first <= 0) return undefined;
  const second = line.indexOf(COMMAND_PREFIX, first + 1);
  if (second <= first + 1) return undefined;
  return {
    from: line.slice(0, first),
    to: line.slice(first + 1, second),
    message: line.slice(second),
  };
}

/**
 * Builds a pubmsg `line`: `<from>!PUBLIC<message>` (docs/protocol.md §4.1, vectors §11.5). Pubmsgs are not
 * signed (docs/protocol.md §5.6).
 *
 * @param message - one or more commands, starting with `!`, e.g. `!orderbook`.
 * @throws OnionmcError `ERR_PROTOCOL` when `from` is empty or holds `!`, or `message` does not
 *   start with `!`.
 */
export function formatPubmsgLine(from: string, message: string): string {
  assertNick(from, 'sender');
  if (!message.startsWith(COMMAND_PREFIX)) {
    throw new OnionmcError('ERR_PROTOCOL', 'pubmsg message must start with "!"');
  }
  return from + COMMAND_PREFIX + PUBLIC_NICK + message;
}

function assertNick(nick: string, role: string): void {
  if (nick === '' || nick.includes(COMMAND_PREFIX)) {
    throw new OnionmcError('ERR_PROTOCOL', `${role} nick must be non-empty and hold no "!"`);
  }
}

/**
 * Builds a signed privmsg `line` (docs/protocol.md §4.1, §5.6, vectors §11.6):
 * `<identity.nick>!<to>!<cmd> <body> <identity.publicKeyHex> <sig>`, where `sig` signs
 * `body + hostid`.
 *
 * @param to - recipient nick.
 * @param cmd - command word without `!`, e.g. `fill`.
 * @param body - everything between the command word and the signature; for encrypted commands
 *   the base64 box; for offer replies it may carry further `!cmd …` segments (docs/protocol.md §5.1).
 * @param hostid - defaults to {@link HOSTID_ONION}.
 * @throws OnionmcError `ERR_PROTOCOL` when `to` is empty or holds `!`, `cmd` is empty or holds
 *   `!` or a space, or `body` is empty (the reference drops empty bodies).
 */
export function signPrivmsg(
  identity: NickIdentity,
  to: string,
  cmd: string,
  body: string,
  hostid: string = HOSTID_ONION,
): string {
  assertPrivmsgParts(identity.nick, to, cmd, body);
  const signature = identity.sign(body + hostid);
  return formatSignedPrivmsgLine(identity.nick, to, cmd, body, identity.publicKeyHex, signature);
}

function assertPrivmsgParts(from: string, to: string, cmd: string, body: string): void {
  assertNick(from, 'sender');
  assertNick(to, 'recipient');
  if (cmd === '' || cmd.includes(COMMAND_PREFIX) || cmd.includes(FIELD_SEPARATOR)) {
    throw new OnionmcError('ERR_PROTOCOL', 'privmsg command must be one word without "!"');
  }
  if (body === '') throw new OnionmcError('ERR_PROTOCOL', 'privmsg body must not be empty');
}

/**
 * Checks the parts of a privmsg before it is signed elsewhere (an outside nick signer): the same
 * checks as {@link signPrivmsg}.
 * @throws OnionmcError `ERR_PROTOCOL` as {@link signPrivmsg}.
 */
export function checkPrivmsgParts(from: string, to: string, cmd: string, body: string): void {
  assertPrivmsgParts(from, to, cmd, body);
}

/**
 * Builds a privmsg `line` from a signature made elsewhere (docs/protocol.md §4.1, §5.6):
 * `<from>!<to>!<cmd> <body> <publicKeyHex> <signature>`; the same bytes {@link signPrivmsg}
 * writes. The signature is not checked here.
 * @throws OnionmcError `ERR_PROTOCOL` as {@link signPrivmsg}, or when the key or signature is
 *   empty or holds a space or `!`.
 */
export function formatSignedPrivmsgLine(
  from: string,
  to: string,
  cmd: string,
  body: string,
  publicKeyHex: string,
  signature: string,
): string {
  assertPrivmsgParts(from, to, cmd, body);
  for (const token of [publicKeyHex, signature]) {
    if (token === '' || token.includes(FIELD_SEPARATOR) || token.includes(COMMAND_PREFIX))
      throw new OnionmcError('ERR_PROTOCOL', 'privmsg key and signature must be single tokens');
  }
  return [from, to, [cmd, body, publicKeyHex, signature].join(FIELD_SEPARATOR)].join(
    COMMAND_PREFIX,
  );
}

/** A privmsg whose signature and nick binding checked out (docs/protocol.md §5.6). */
export interface VerifiedPrivmsg {
  readonly ok: true;
  /** The first command word, without `!`. */
  readonly cmd: string;
  /**
   * The signed body: tokens[1:-2] rejoined with single spaces. May contain further `!cmd`
   * segments, e.g. `0 27300 1000000 0 0.00002!tbond <b64>`.
   */
  readonly body: string;
  /** The sender's pubkey hex exactly as received. */
  readonly publicKeyHex: string;
  /** The signature base64 exactly as received. */
  readonly signature: string;
}

/** Why {@link verifyPrivmsg} dropped a privmsg, one code per receiver check of docs/protocol.md §5.6. */
export type PrivmsgRejectReason =
  | 'not-a-command'
  | 'command-not-allowed'
  | 'signature-missing'
  | 'empty-body'
  | 'bad-pubkey-encoding'
  | 'bad-signature-encoding'
  | 'bad-signature'
  | 'nick-mismatch';

/** A privmsg {@link verifyPrivmsg} rejected, with the check that failed. */
export interface RejectedPrivmsg {
  readonly ok: false;
  readonly reason: PrivmsgRejectReason;
}

function reject(reason: PrivmsgRejectReason): RejectedPrivmsg {
  return { ok: false, reason };
}

/**
 * Applies the reference receiver checks to a privmsg, in the reference's order (docs/protocol.md §5.6; R:
 * src/jmdaemon/message_channel.py `on_privmsg`; R: src/jmclient/client_protocol.py
 * `on_JM_REQUEST_MSGSIG_VERIFY`):
 * 1. `message` is at least 2 characters and starts with `!` (`not-a-command`);
 * 2. its first space-separated token after `!` is a plaintext or encrypted command
 *    (`command-not-allowed`; `tbond`/`cancel` first are rejected);
 * 3. the last two space tokens are pubkey and signature (`signature-missing`) and the body,
 *    tokens[1:-2] rejoined with single spaces, is not empty (`empty-body`);
 * 4. the pubkey is hex and the signature base64 (`bad-pubkey-encoding`,
 *    `bad-signature-encoding`);
 * 5. the signature verifies over `body + hostid`, or else over `body + hostid.toLowerCase()`
 *    (the reference's IRC workaround) (`bad-signature`);
 * 6. the nick hash of `from` matches the pubkey as received (`nick-mismatch`; uppercase hex
 *    fails, docs/protocol.md §11.8).
 *
 * Never throws.
 *
 * @param from - sender nick from {@link parseChannelLine}.
 * @param message - the message from {@link parseChannelLine}, starting with `!`.
 * @param hostid - defaults to {@link HOSTID_ONION}.
 */
export function verifyPrivmsg(
  from: string,
  message: string,
  hostid: string = HOSTID_ONION,
): VerifiedPrivmsg | RejectedPrivmsg {
  if (message.length < 2 || !message.startsWith(COMMAND_PREFIX)) return reject('not-a-command');
  const tokens = message.slice(1).split(FIELD_SEPARATOR);
  const cmd = tokens[0] ?? '';
  if (!isPrivmsgCommandAllowed(cmd)) return reject('command-not-allowed');
  if (tokens.length < 3) return reject('signature-missing');
  const publicKeyHex = tokens[tokens.length - 2] ?? '';
  const signature = tokens[tokens.length - 1] ?? '';
  const body = tokens.slice(1, -2).join(FIELD_SEPARATOR);
  if (body === '') return reject('empty-body');
  if (decodeHexStrict(publicKeyHex) === undefined) return reject('bad-pubkey-encoding');
  if (decodeBase64Strict(signature) === undefined) return reject('bad-signature-encoding');
  const lowerHostid = hostid.toLowerCase();
  const signatureOk =
    verifyMessage(publicKeyHex, signature, body + hostid) ||
    (lowerHostid !== hostid && verifyMessage(publicKeyHex, signature, body + lowerHostid));
  if (!signatureOk) return reject('bad-signature');
  if (!nickMatchesPublicKey(from, publicKeyHex)) return reject('nick-mismatch');
  return { ok: true, cmd, body, publicKeyHex, signature };
}
