/**
 * Envelope type numbers of the onion message channel (docs/protocol.md §1.4) and the rule for which of them
 * we may send (docs/protocol.md §10).
 *
 * | type | name                | sent by us                                             |
 * |------|---------------------|--------------------------------------------------------|
 * | 685  | privmsg             | yes                                                    |
 * | 687  | pubmsg              | yes                                                    |
 * | 789  | peerlist            | directory role                                         |
 * | 791  | getpeerlist         | to ng directories (reference ones ignore it)           |
 * | 793  | handshake           | yes                                                    |
 * | 795  | dn-handshake        | directory role only                                    |
 * | 798  | ping (ng)           | only to peers that advertised `ping`                   |
 * | 799  | pong (ng)           | only in reply to 798; a reference peer drops the link  |
 * | 803  | nick-auth-challenge | directory, during negotiated nick-auth (§9.6)          |
 * | 805  | nick-auth-proof     | client, during negotiated nick-auth (§9.6)             |
 * | 807  | nick-auth-result    | directory, during negotiated nick-auth (§9.6)          |
 * | 785, 787, 797, 801 | reference local-control codes / unimplemented disconnect | never |
 */

/**
 * The envelope types we understand, by ng's names (docs/protocol.md §1.4; NG: jmcore/src/jmcore/protocol.py
 * `MessageType`; R: src/jmdaemon/onionmc.py `JM_MESSAGE_TYPES`, `CONTROL_MESSAGE_TYPES`).
 */
export const MessageType = {
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
} as const;

/** One of the numbers in {@link MessageType}. */
export type MessageTypeCode = (typeof MessageType)[keyof typeof MessageType];

/**
 * Types that must never go on the wire (docs/protocol.md §1.4, §10): a reference node treats 785, 787 and 797
 * as local control events and mutates its peer table from the `line`, and its handler throws on
 * 801 and drops the connection.
 */
export const NEVER_SEND_TYPES: readonly number[] = Object.freeze([785, 787, 797, 801]);

const SENDABLE: ReadonlySet<number> = new Set<number>(Object.values(MessageType));

/**
 * True for the types in {@link MessageType} (docs/protocol.md §10), false for everything else, including
 * {@link NEVER_SEND_TYPES}. 798/799/803/805/807 pass: whether the peer negotiated them (ping,
 * nick-auth) and whether a 799 answers a 798 is for the caller to decide.
 */
export function isSendableType(type: number): boolean {
  return SENDABLE.has(type);
}

const NAMES: ReadonlyMap<number, string> = new Map<number, string>([
  [MessageType.PRIVMSG, 'privmsg'],
  [MessageType.PUBMSG, 'pubmsg'],
  [MessageType.PEERLIST, 'peerlist'],
  [MessageType.GETPEERLIST, 'getpeerlist'],
  [MessageType.HANDSHAKE, 'handshake'],
  [MessageType.DN_HANDSHAKE, 'dn-handshake'],
  [MessageType.PING, 'ping'],
  [MessageType.PONG, 'pong'],
  [MessageType.NICK_AUTH_CHALLENGE, 'nick-auth-challenge'],
  [MessageType.NICK_AUTH_PROOF, 'nick-auth-proof'],
  [MessageType.NICK_AUTH_RESULT, 'nick-auth-result'],
  [785, 'local-connect'],
  [787, 'local-disconnect'],
  [797, 'local-connect-in/ref-ping'],
  [801, 'ref-disconnect'],
]);

/**
 * A short name for logs: `privmsg`, `dn-handshake`, ..., the reference's local-only names for
 * 785/787/797/801 (docs/protocol.md §1.4), and `unknown(<n>)` for anything else.
 */
export function messageTypeName(type: number): string {
  return NAMES.get(type) ?? `unknown(${String(type)})`;
}
