/**
 * Who signs as our nick and who checks the nick signatures of what we receive (docs/protocol.md
 * §5.5, §5.6, §9.6). By default the node holds its own nick key ({@link identitySigner}) and checks
 * signatures itself ({@link LOCAL_VERIFIER}), synchronously, as the HTTP API path always did. An
 * application that keeps the nick key elsewhere, as jmclient does behind jmdaemon
 * (JMRequestMsgSig / JMRequestMsgSigVerify), plugs in a signer and a verifier that answer
 * asynchronously; the bytes on the wire are the same either way.
 */
import type { NickIdentity } from '../message/nick.js';
import { verifyPrivmsg, type RejectedPrivmsg, type VerifiedPrivmsg } from '../message/privmsg.js';

/** A signature made with the nick key. */
export interface NickSignature {
  /** The nick's compressed public key, 66 lowercase hex characters, as it goes on the wire. */
  readonly publicKeyHex: string;
  /** Base64 DER signature over the Bitcoin message hash of the signed text (docs/protocol.md §5.6). */
  readonly signature: string;
}

/** A privmsg to sign: the signature covers `body + hostid` (docs/protocol.md §5.6). */
export interface PrivmsgSignRequest {
  /** The recipient nick. */
  readonly to: string;
  /** The command word, without `!`. */
  readonly cmd: string;
  /** The body as it goes on the wire (NaCl key inserted, or encrypted). */
  readonly body: string;
  /** `onion-network`. */
  readonly hostid: string;
}

/**
 * Signs as our nick. Methods may answer synchronously (the in-process key) or with a promise (a
 * wallet asked over a link); a rejected promise means the message is not sent.
 */
export interface NickSigner {
  /** Our nick (docs/protocol.md §5.5). */
  readonly nick: string;
  /**
   * The nick's public key (66 lowercase hex) when known before signing anything, else undefined.
   * JMP-0005 nick authentication signs a text that contains it (docs/protocol.md §9.6), so a
   * node whose signer does not know it yet does not answer a nick-auth challenge.
   */
  readonly publicKeyHex: string | undefined;
  /** Signs a privmsg. */
  signPrivmsg(request: PrivmsgSignRequest): NickSignature | Promise<NickSignature>;
  /** Signs an arbitrary text (the nick-auth string, docs/protocol.md §9.6). */
  signText(text: string): NickSignature | Promise<NickSignature>;
}

/** What a {@link NickVerifier} concludes about a received privmsg. */
export type PrivmsgVerdict = VerifiedPrivmsg | RejectedPrivmsg;

/** Checks the nick signature of a received privmsg (docs/protocol.md §5.6). */
export interface NickVerifier {
  /**
   * @param from - the sender nick.
   * @param message - the message as parsed from the line, starting with `!`.
   * @param hostid - `onion-network`.
   */
  verifyPrivmsg(
    from: string,
    message: string,
    hostid: string,
  ): PrivmsgVerdict | Promise<PrivmsgVerdict>;
}

/** The default signer: the node's own in-process nick key. Synchronous. */
export function identitySigner(identity: NickIdentity): NickSigner {
  return {
    nick: identity.nick,
    publicKeyHex: identity.publicKeyHex,
    signPrivmsg: ({ body, hostid }) => ({
      publicKeyHex: identity.publicKeyHex,
      signature: identity.sign(body + hostid),
    }),
    signText: (text) => ({ publicKeyHex: identity.publicKeyHex, signature: identity.sign(text) }),
  };
}

/** The default verifier: the reference receiver checks, in process ({@link verifyPrivmsg}). Synchronous. */
export const LOCAL_VERIFIER: NickVerifier = {
  verifyPrivmsg: (from, message, hostid) => verifyPrivmsg(from, message, hostid),
};

/** True when `value` is a promise (an asynchronous signer or verifier answered). */
export function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return value instanceof Promise;
}
