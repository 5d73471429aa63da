/**
 * Handshake admission of a directory node (docs/protocol.md §2.5, §9.2, §9.6): answers a client's 793 with our
 * 795 (accepted or not, with the reason in the motd), runs nick authentication when negotiated,
 * and hands an admitted peer to the node's register. Part of {@link DirectoryNode}
 * (directory-node.ts); it owns no per-connection state beyond what {@link DirectoryPeer} holds.
 */
import {
  buildNickAuthChallengeLine,
  buildNickAuthResultLine,
  createNickAuthChallenge,
  parseNickAuthProofLine,
  verifyNickAuth,
  type NickAuthResultCode,
} from '../message/nick-auth.js';
import {
  encodeDirectoryHandshake,
  evaluateClientHandshake,
  featuresOf,
  isValidNick,
  JM_APP_NAME,
  JM_PROTOCOL_VERSION,
  parseClientHandshake,
} from '../wire/handshake.js';
import { parseLocation } from '../wire/location.js';
import { MessageType } from '../wire/message-types.js';
import type { Counters } from './counters.js';
import type { DirectoryLimits } from './directory-limits.js';
import {
  DEFAULT_MAX_PEERS,
  NICK_AUTH_TIMEOUT_MS,
  type DirectoryNodeOptions,
  type DirectoryPeer,
  type NickAuthPolicy,
} from './directory-types.js';

/** Why a handshake beyond `max_peers` is refused: ng's wording (docs/protocol.md §9.2). */
const MAX_PEERS_REACHED = 'Maximum peers reached';

/** What admission needs of its node. */
export interface AdmissionContext {
  readonly options: DirectoryNodeOptions;
  readonly counters: Counters;
  readonly limits: DirectoryLimits;
  readonly byNick: ReadonlyMap<string, DirectoryPeer>;
  /** Handshaked peers now. */
  handshakedCount(): number;
  /** Makes an admitted peer handshaked (routing tables, counters). */
  register(peer: DirectoryPeer): void;
}

/** Handshake and nick-authentication handling of one directory node. */
export class DirectoryAdmission {
  readonly #ctx: AdmissionContext;
  /** The `features` of our 795: see the constructor. */
  readonly #handshakeFeatures: Record<string, boolean>;

  constructor(ctx: AdmissionContext) {
    this.#ctx = ctx;
    // We challenge exactly when our mode is not `disabled`, and a client expects an 803 exactly
    // when our 795 advertised `nick_auth` (docs/protocol.md §9.6, §10): so `nick_auth` is advertised by the
    // mode, whatever the configured features say.
    const features: Record<string, boolean> = { ...ctx.options.features };
    delete features['nick_auth'];
    if (this.nickAuthMode !== 'disabled') features['nick_auth'] = true;
    this.#handshakeFeatures = features;
  }

  get nickAuthMode(): NickAuthPolicy['mode'] {
    return this.#ctx.options.nickAuth?.mode ?? 'disabled';
  }

  /** A 793 from `peer`. */
  handleHandshake(peer: DirectoryPeer, line: string): void {
    const { options, counters } = this.#ctx;
    if (peer.state !== 'connected') {
      // The reference ignores a second handshake (docs/protocol.md §2.5 rule 1).
      counters.add('ignored.second-handshake');
      return;
    }
    const handshake = parseClientHandshake(line);
    if (handshake === undefined) {
      // Malformed or mistyped: silence, the peer stays connected (docs/protocol.md §2.5 rule 2).
      counters.add('ignored.malformed-handshake');
      peer.conn.logger.info('malformed handshake ignored');
      return;
    }
    const features = featuresOf(handshake.features);
    const mode = this.nickAuthMode;
    const negotiatesNickAuth = mode !== 'disabled' && features.has('nick_auth');
    const reason = this.#refusal(handshake, negotiatesNickAuth);
    const accepted = reason === undefined;
    peer.conn.send(
      MessageType.DN_HANDSHAKE,
      encodeDirectoryHandshake({
        appName: JM_APP_NAME,
        directory: true,
        protoVerMin: JM_PROTOCOL_VERSION,
        protoVerMax: JM_PROTOCOL_VERSION,
        features: this.#handshakeFeatures,
        accepted,
        nick: options.identity.nick,
        network: options.network,
        motd: accepted ? options.motd : `Rejected: ${reason}`,
      }),
    );
    if (!accepted) {
      peer.conn.logger.info({ nick: handshake.nick, reason }, 'handshake rejected');
      counters.add('handshake.rejected');
      // The reference leaves the rejected peer to hang up; we hang up after the 795 is flushed.
      peer.conn.close('rejected');
      return;
    }
    peer.conn.handshakeDone();
    peer.nick = handshake.nick;
    peer.location = handshake.locationString;
    peer.features = features;
    if (negotiatesNickAuth) {
      // 795 accepted, then the 803 challenge; HANDSHAKED only after a good 805 (docs/protocol.md §9.6).
      peer.state = 'authenticating';
      peer.handshakeLine = line;
      peer.challenge = createNickAuthChallenge(
        options.nickAuth?.directoryId ?? options.ownLocation.toLowerCase(),
      );
      peer.conn.send(MessageType.NICK_AUTH_CHALLENGE, buildNickAuthChallengeLine(peer.challenge));
      peer.conn.armHandshakeDeadline(NICK_AUTH_TIMEOUT_MS, () => {
        if (peer.state === 'authenticating') this.#finishNickAuth(peer, 'expired');
      });
      return;
    }
    this.#ctx.register(peer);
  }

  /** Why a well-formed 793 is refused, or undefined when it is admitted. */
  #refusal(
    handshake: NonNullable<ReturnType<typeof parseClientHandshake>>,
    negotiatesNickAuth: boolean,
  ): string | undefined {
    const { options, limits, byNick } = this.#ctx;
    const verdict = evaluateClientHandshake(handshake, { network: options.network });
    if (!verdict.accepted) return verdict.reason;
    if (!isValidNick(handshake.nick)) return 'nick is not a JoinMarket nick';
    if (handshake.nick === options.identity.nick) return 'nick is the directory nick';
    if (this.nickAuthMode === 'require_verified' && !negotiatesNickAuth)
      return 'verified nick authentication required';
    if (this.#full(undefined)) return MAX_PEERS_REACHED;
    if (limits.isBanned(handshake.nick, negotiatesNickAuth))
      return 'nick refused for a while after flooding';
    const accept = options.acceptLocation;
    if (accept !== undefined && !accept(parseLocation(handshake.locationString)))
      return 'location not admitted here';
    // First live owner keeps its nick (ng peer_registry); only a peer about to prove the nick's
    // key may displace the owner: an unverified one, or a verified one with the same key (its
    // stale connection, docs/protocol.md §13.1). An unproven claim of a live nick is refused.
    const owner = byNick.get(handshake.nick);
    if (owner?.conn.isOpen === true && !negotiatesNickAuth) return 'nick already in use';
    return undefined;
  }

  /** An 805 from `peer`. */
  handleNickAuthProof(peer: DirectoryPeer, line: string): void {
    if (
      peer.state !== 'authenticating' ||
      peer.challenge === undefined ||
      peer.nick === undefined
    ) {
      // Any nick-auth message outside a negotiated exchange ends the connection (docs/protocol.md §9.6).
      this.#ctx.counters.add('disconnected.unexpected-nick-auth');
      peer.conn.destroy('protocol-violation');
      return;
    }
    const verdict = verifyNickAuth(
      line,
      peer.challenge.challenge,
      peer.challenge.directoryId,
      peer.handshakeLine,
      peer.nick,
    );
    if (verdict !== 'ok') {
      this.#finishNickAuth(peer, verdict);
      return;
    }
    const provenKey = parseNickAuthProofLine(line)?.pubkey;
    const owner = this.#ctx.byNick.get(peer.nick);
    if (
      owner !== undefined &&
      owner !== peer &&
      owner.conn.isOpen &&
      owner.verified &&
      owner.verifiedKey !== provenKey
    ) {
      this.#finishNickAuth(peer, 'policy');
      return;
    }
    peer.verifiedKey = provenKey;
    this.#finishNickAuth(peer, 'ok');
  }

  /**
   * True when `max_peers` peers are handshaked, not counting `leaving` (a handshaked owner about to
   * be displaced): a peer admitted now would be one too many.
   */
  #full(leaving: DirectoryPeer | undefined): boolean {
    const leaves = leaving?.state === 'handshaked' ? 1 : 0;
    const maxPeers = this.#ctx.options.maxPeers ?? DEFAULT_MAX_PEERS;
    return this.#ctx.handshakedCount() - leaves >= maxPeers;
  }

  #finishNickAuth(peer: DirectoryPeer, code: NickAuthResultCode): void {
    const { counters, byNick } = this.#ctx;
    peer.conn.handshakeDone();
    peer.challenge = undefined;
    peer.handshakeLine = '';
    const found = peer.nick === undefined ? undefined : byNick.get(peer.nick);
    const owner = found === peer ? undefined : found;
    if (code === 'ok' && this.#full(owner)) {
      // The cap was checked at the 793, but peers that all sent theirs before any proof passed
      // that check together: checked again here, or nick auth would let them all in. Our 795
      // already accepted the peer, so the refusal is the 807's: `policy` (docs/protocol.md §9.6),
      // counted as a handshake refusal.
      peer.conn.send(MessageType.NICK_AUTH_RESULT, buildNickAuthResultLine('policy'));
      peer.conn.logger.info({ nick: peer.nick, reason: MAX_PEERS_REACHED }, 'handshake rejected');
      counters.add('handshake.rejected');
      peer.conn.close('rejected');
      return;
    }
    peer.conn.send(MessageType.NICK_AUTH_RESULT, buildNickAuthResultLine(code));
    counters.add(`nick-auth.${code}`);
    if (code !== 'ok') {
      peer.conn.logger.info({ nick: peer.nick, code }, 'nick authentication failed; disconnecting');
      peer.conn.close('rejected');
      return;
    }
    peer.verified = true;
    if (owner !== undefined) {
      // An unverified owner, or a verified one with the same key: its connection is stale (ng
      // peer_registry lets the proven key take over, docs/protocol.md §13.1).
      const kind = owner.verified ? 'same-key' : 'unverified';
      owner.conn.logger.info({ nick: owner.nick, kind }, 'nick owner replaced by a verified peer');
      counters.add(`displaced.${kind}`);
      owner.conn.destroy('replaced');
    }
    this.#ctx.register(peer);
  }
}
