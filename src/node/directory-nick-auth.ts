/**
 * The client side of nick authentication on a directory link (docs/protocol.md §9.6, §13.2):
 * after both handshakes offered `nick_auth`, the directory node sends a challenge (803), we
 * answer with a signed proof (805) and it tells us the result (807); and the reason we infer
 * when a directory node hangs up instead. Used by directory-links.ts, which owns the link's state.
 */
import {
  buildNickAuthProofLine,
  directoryIdForEndpoint,
  nickAuthSignedString,
  parseNickAuthChallengeLine,
  parseNickAuthResultLine,
} from '../message/nick-auth.js';
import { NOT_SERVING_ONION, parseLocation } from '../wire/location.js';
import { MessageType } from '../wire/message-types.js';
import type { ClientContext, DirectoryLink } from './client-context.js';
import { isPromise, type NickSignature } from './nick-signer.js';

/**
 * The directory-id we expect in a challenge from `link` (docs/protocol.md §9.6, §13.2): the one
 * configured for that location (`nickAuthDirectoryIds`), else its onion, lower-cased.
 */
export function expectedDirectoryId(
  ctx: Pick<ClientContext, 'options'>,
  link: Pick<DirectoryLink, 'location' | 'host' | 'port'>,
): string {
  const configured = ctx.options.nickAuthDirectoryIds?.[link.location.toLowerCase()];
  if (configured !== undefined) return configured;
  return directoryIdForEndpoint(link.host, link.port) ?? link.location.toLowerCase();
}

/**
 * Answers a nick-auth challenge line on `link` with a proof signed by our signer (synchronously
 * or when an outside signer answers). A challenge out of turn, malformed, for another
 * directory-id, or one we cannot sign disconnects the link (`protocol-violation`).
 */
export function answerNickAuthChallenge(
  ctx: ClientContext,
  link: DirectoryLink,
  line: string,
): void {
  const conn = link.conn;
  if (conn === undefined) return;
  const challenge = parseNickAuthChallengeLine(line);
  if (link.state !== 'authenticating' || challenge === undefined) {
    conn.logger.warn('unexpected or malformed nick-auth challenge; disconnecting');
    conn.destroy('protocol-violation');
    return;
  }
  // A proof is bound to the directory-id; sign only for the directory we dialed, so a proof
  // cannot be replayed elsewhere.
  const expected = expectedDirectoryId(ctx, link);
  if (challenge.directoryId !== expected) {
    conn.logger.warn(
      { directoryId: challenge.directoryId, expected },
      'nick-auth challenge for another directory-id; disconnecting (if this directory node really uses that id, list it in nick_auth_directory_ids)',
    );
    ctx.counters.add('nick-auth.wrong-directory-id');
    conn.destroy('protocol-violation');
    return;
  }
  // The signed text holds our public key (docs/protocol.md §9.6); a signer that does not know
  // it is never offered nick_auth (clientHandshakeLine), so this is a safeguard.
  const { signer } = ctx;
  const publicKeyHex = signer.publicKeyHex;
  if (publicKeyHex === undefined) {
    conn.logger.warn('nick-auth challenge but our signer has no public key yet; disconnecting');
    conn.destroy('protocol-violation');
    return;
  }
  const sendProof = (signature: NickSignature): void => {
    if (link.conn !== conn || link.state !== 'authenticating') return;
    conn.send(
      MessageType.NICK_AUTH_PROOF,
      buildNickAuthProofLine({ pubkey: signature.publicKeyHex, signature: signature.signature }),
    );
  };
  const fail = (err: unknown): void => {
    conn.logger.warn(
      { reason: err instanceof Error ? err.message : String(err) },
      'cannot answer the nick-auth challenge; disconnecting',
    );
    conn.destroy('protocol-violation');
  };
  try {
    const signed = signer.signText(
      nickAuthSignedString(
        challenge.challenge,
        challenge.directoryId,
        link.handshakeLine,
        ctx.nick,
        publicKeyHex,
      ),
    );
    if (!isPromise(signed)) {
      sendProof(signed);
      return;
    }
    signed.then((signature) => {
      try {
        sendProof(signature);
      } catch (err) {
        fail(err);
      }
    }, fail);
  } catch (err) {
    fail(err);
  }
}

/**
 * Reads a nick-auth result line on `link`.
 * @returns true when the directory node verified our proof (the link may go up); otherwise the
 *   link is disconnected (`protocol-violation`) and false is returned.
 */
export function acceptNickAuthResult(link: DirectoryLink, line: string): boolean {
  const conn = link.conn;
  if (conn === undefined) return false;
  const result = parseNickAuthResultLine(line);
  if (link.state !== 'authenticating' || result === undefined || !result.verified) {
    conn.logger.warn({ code: result?.code }, 'nick authentication not accepted; disconnecting');
    conn.destroy('protocol-violation');
    return false;
  }
  return true;
}

/**
 * The likely reason a directory node hung up on our 793 without a 795, or during nick
 * authentication without an 807 (ng refuses that way, docs/protocol.md §2.5, §9.6, §13.2), from
 * what we sent: our location, network and nick-auth state.
 */
export function inferDirectoryRefusal(
  ctx: Pick<ClientContext, 'location' | 'options'>,
  link: Pick<DirectoryLink, 'state' | 'location'>,
): string {
  if (link.state === 'authenticating') {
    return ctx.options.nickAuthDirectoryIds?.[link.location.toLowerCase()] === undefined
      ? 'it did not accept our nick-auth proof: if its nick_auth_directory_id is not its address, set it in nick_auth_directory_ids, or set nick_auth_mode = disabled'
      : 'it did not accept our nick-auth proof for the configured directory-id';
  }
  let kind: string;
  try {
    kind = ctx.location === NOT_SERVING_ONION ? 'none' : parseLocation(ctx.location).kind;
  } catch {
    kind = 'bad';
  }
  if (kind !== 'none' && !/\.onion:[0-9]+$/i.test(ctx.location)) {
    return `our location ${ctx.location} is not an onion: an ng directory node admits only onion locations and NOT-SERVING-ONION, and refuses others this way`;
  }
  return `probably a refusal: our nick still held by an earlier connection of ours, a network mismatch (we sent "${ctx.options.network}"), or a full directory node`;
}
