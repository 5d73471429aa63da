/**
 * Public types of a maker or taker node ({@link ClientNode} in client-node.ts): its options, the
 * events it emits and what its send methods return. Kept apart so the node's parts share them
 * without importing the facade.
 */
import type { Logger } from '../log.js';
import type { NickIdentity } from '../message/nick.js';
import type { Dialer, ServerTransport } from '../peer/transport.js';
import type { BackoffOptions } from './backoff.js';
import type { NickSigner, NickVerifier } from './nick-signer.js';

/** Role of a non-directory node: a maker serves (an onion, or a port in testing mode), a taker does not. */
export type ClientRole = 'maker' | 'taker';

/** Options of a {@link ClientNode}. */
export interface ClientNodeOptions {
  readonly role: ClientRole;
  /**
   * Our nick key, held in process: signs privmsgs and nick-auth proofs. Give this or
   * {@link signer}; with both, {@link signer} signs.
   */
  readonly identity?: NickIdentity;
  /**
   * Signs as our nick when the key is held outside the node (a jmclient wallet behind
   * `onionmc joinmarketd`); may answer asynchronously. Default: {@link identity}.
   */
  readonly signer?: NickSigner;
  /**
   * Checks the nick signature of received privmsgs; may answer asynchronously. Default: the
   * reference receiver checks in process (docs/protocol.md §5.6).
   */
  readonly verifier?: NickVerifier;
  /** The handshake network name (docs/protocol.md §2.2). */
  readonly network: string;
  /** Our location string: `NOT-SERVING-ONION` for a taker (docs/protocol.md §2.1). Can change later (new onion). */
  readonly ownLocation: string;
  /** Directory locations `host:port`, from `directory_nodes`. */
  readonly directories: readonly string[];
  readonly dialer: Dialer;
  /** Where a maker accepts direct links; undefined for a taker. */
  readonly server?: ServerTransport;
  readonly logger: Logger;
  /** Features we advertise in our 793 (docs/protocol.md §9.1). The reference sends `{}`. */
  readonly features?: Readonly<Record<string, boolean>>;
  /**
   * End-to-end encryption by the daemon (docs/protocol.md §7), default true. False is raw mode:
   * `fill`, `pubkey` and the encrypted commands pass between the wire and the application
   * unchanged, for an application that does JoinMarket's key exchange itself, and for replaying
   * captured traffic whose payloads are not real key exchanges.
   */
  readonly endToEnd?: boolean;
  /**
   * Maker: answer a pubmsg `!orderbook` automatically with our offers (one privmsg per offer,
   * docs/protocol.md §13.2), default true. False leaves every answer to the application, which
   * gets an `orderbookRequest` event and answers with {@link ClientNode.answerOrderbook} (to add
   * a `!tbond` proof made for that taker) or its own privmsgs (the joinmarketd service does).
   */
  readonly answerOrderbook?: boolean;
  /**
   * Per directory location (`host:port` as in `directories`): the directory-id it puts in its
   * nick-auth challenge when that is not its own `<onion>:<port>` (an ng directory node with its
   * own `nick_auth_directory_id`, docs/protocol.md §9.6, §13.2).
   */
  readonly nickAuthDirectoryIds?: Readonly<Record<string, string>>;
  /** Reconnect backoff for directory links. */
  readonly backoff?: BackoffOptions;
  /**
   * How long a privmsg sent with {@link ClientNode.privmsgConfirmed} waits for one route's
   * confirmation before that route counts as failed for it; default
   * `PRIVMSG_CONFIRM_TIMEOUT_MS` (60 s, client-confirmations.ts).
   */
  readonly privmsgConfirmTimeoutMs?: number;
  /**
   * How many privmsgs sent with {@link ClientNode.privmsgConfirmed} may wait for confirmation at
   * once; default `MAX_PENDING_CONFIRMATIONS` (256).
   */
  readonly maxPendingConfirmations?: number;
  /** How long we wait for the other side's handshake on any link; default 60 s. */
  readonly handshakeTimeoutMs?: number;
  /** Clock in ms and random source in [0,1): injectable for tests. */
  readonly now?: () => number;
  readonly random?: () => number;
}

/** Where a delivered message came from. */
export type Via =
  { readonly kind: 'direct' } | { readonly kind: 'directory'; readonly location: string };

/** Events an application can subscribe to. */
export interface ClientNodeEvents {
  /**
   * A verified privmsg for us. `body` excludes the pubkey and signature; for an encrypted command
   * it is the decrypted plaintext (`encrypted: true`); for `!fill` and `!pubkey` the NaCl key,
   * which the daemon owns, is taken out.
   */
  privmsg: {
    from: string;
    cmd: string;
    body: string;
    via: Via;
    encrypted: boolean;
    /**
     * Our NaCl session public key with `from`, 64 hex, on `fill`, `pubkey` and the encrypted
     * commands: a maker signs it as `btc_sig` in `!ioauth` (jmdaemon's `kphex`).
     */
    ownKeyHex?: string;
    /**
     * `from`'s NaCl session public key, 64 hex, on the same events: a taker verifies the maker's
     * `btc_sig` over it (it is the key of the maker's `!pubkey`).
     */
    peerKeyHex?: string;
  };
  /** A pubmsg (unsigned, docs/protocol.md §5.6). `message` starts with `!`. */
  pubmsg: { from: string; message: string; via: Via };
  /** No directory carries this nick any more (docs/protocol.md §3.2). */
  nickLeave: { nick: string };
  /**
   * Maker: a taker asked for the orderbook (a pubmsg `!orderbook`). With `answerOrderbook: false`
   * the application answers it ({@link ClientNode.answerOrderbook}); otherwise the node already did.
   */
  orderbookRequest: { from: string; via: Via };
  /** The channel became usable (the first directory link handshaked) or unusable (the last one lost). */
  channel: { up: boolean };
  /** A directory link was handshaked or lost. */
  directory: { location: string; nick: string | undefined; up: boolean; motd?: string };
  /** A direct peer link was handshaked or lost. */
  peer: { nick: string; up: boolean; direction: 'inbound' | 'outbound' };
  /** A directory sent a peerlist (docs/protocol.md §3): how many entries announced a peer or a departure. */
  peerlist: { directory: string; joined: number; left: number };
  /**
   * A message was dropped; `reason` is a {@link DropReason}, followed by `: detail` for
   * `bad-signature` and `crypto`.
   */
  dropped: { from: string | undefined; reason: string };
}

/** What {@link ClientNode.privmsg} did with a message. */
export type SendResult = Via;

/** What {@link ClientNode.privmsgConfirmed} did with a message. */
export interface Delivery {
  /** The route that took it last (the one that confirmed it, when `confirmed`). */
  readonly via: Via;
  /**
   * True: the route handled it (the directory node relayed it, or the peer received it): its
   * pong to a 798 sent after it arrived (docs/protocol.md §13.2). False: the route cannot
   * confirm (it, or we, did not advertise `ping`, e.g. a reference directory node); the message
   * was written to it and nothing more is known.
   */
  readonly confirmed: boolean;
  /** How many routes it was written to: more than 1 after a route failed before confirming. */
  readonly attempts: number;
}

/** Options of {@link ClientNode.privmsg}. */
export interface PrivmsgOptions {
  /** `directory`: never use a direct link nor dial one for this message. Default `any`. */
  readonly route?: 'any' | 'directory';
  /**
   * With `route: 'directory'`: the location of the directory node to use when it is connected and
   * has carried `to`'s messages (e.g. the one a request arrived through); otherwise any such one.
   */
  readonly directory?: string;
}
