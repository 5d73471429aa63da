/**
 * What the joinmarketd service needs from onionmc's node: the message channel, the E2E session
 * model, the orderbook, and hooks that let the jmclient hold the nick key. The service speaks AMP
 * to the jmclient and JoinMarket's CoinJoin policy (jmdaemon's `daemon_protocol.py`) to this
 * interface; the node behind it is the same one the HTTP API serves (issue 11 point 3), so there
 * is one session model and one orderbook, not two.
 *
 * Division of work, as in jmdaemon + its `OnionMessageChannel`:
 * - the core routes pubmsgs and privmsgs (directory nodes, direct links), owns the NaCl session
 *   keys (inserts its key in `!fill` / `!pubkey`, encrypts and decrypts `!auth`, `!ioauth`, `!tx`,
 *   `!sig`), keeps the orderbook and fidelity-bond proofs it hears;
 * - it never holds the nick key: every privmsg it sends is signed through {@link NickSigner} and
 *   every privmsg it receives is checked through {@link NickVerifier} before it is decrypted and
 *   delivered (jmdaemon asks its client with JMRequestMsgSig / JMRequestMsgSigVerify);
 * - it does not answer `!orderbook` itself: the service does, per taker (a fidelity-bond proof is
 *   specific to the taker's nick).
 */

/** The hostid of the onion message channel: appended to every signed privmsg text (anti-replay). */
export const ONION_HOSTID = 'onion-network';

/** A privmsg to sign, as the core has it ready for the wire. */
export interface NickSignRequest {
  /** The recipient. */
  readonly nick: string;
  /** The command, without `!`. */
  readonly cmd: string;
  /** The wire body: for an encrypted command the base64 ciphertext, for `!fill`/`!pubkey` with the NaCl key inserted. */
  readonly msg: string;
  /** {@link ONION_HOSTID}; the signature covers `msg + hostid`. */
  readonly hostid: string;
}

/**
 * Signs a privmsg with the nick key. Resolves to the signed body `msg + " " + pubkeyHex + " " +
 * sigBase64` that follows `!cmd ` on the wire (jmdaemon's `msg_to_return`); rejects when the
 * signer is gone or times out (the privmsg is then not sent).
 */
export type NickSigner = (request: NickSignRequest) => Promise<string>;

/** A received privmsg to check against its sender's nick. */
export interface NickVerifyRequest {
  /** The sender. */
  readonly nick: string;
  /** The signed text: the body without command, pubkey and signature, followed by the hostid. */
  readonly msg: string;
  /** The whole received message, `!cmd body pubkey sig`. */
  readonly fullmsg: string;
  readonly sig: string;
  readonly pubkey: string;
  readonly hostid: string;
}

/** Resolves true when the signature is valid and the pubkey belongs to the nick. */
export type NickVerifier = (request: NickVerifyRequest) => Promise<boolean>;

/** A verified privmsg for us, decrypted. */
export interface CorePrivmsgEvent {
  readonly from: string;
  /** The command, without `!`. */
  readonly cmd: string;
  /**
   * The body without pubkey and signature; decrypted for `auth`, `ioauth`, `tx`, `sig`; for
   * `fill` (`oid amount commitment`) and `pubkey` (what follows the key) without the NaCl key.
   */
  readonly body: string;
  readonly hostid: string;
  /** `fill` (maker side): the taker's NaCl key; `pubkey` (taker side): the maker's. 64 hex. */
  readonly peerKeyHex?: string;
  /** `fill` (maker side): our session key made for this taker (jmdaemon's `kphex`). 64 hex. */
  readonly ownKeyHex?: string;
}

/** A pubmsg (unsigned). */
export interface CorePubmsgEvent {
  readonly from: string;
  /** Starts with `!`; may hold several commands. */
  readonly message: string;
  readonly hostid: string;
}

/** Events of a {@link MessageChannelCore}. */
export interface CoreEvents {
  privmsg: CorePrivmsgEvent;
  pubmsg: CorePubmsgEvent;
  /** The channel is usable (first directory node handshaked); jmdaemon's `on_welcome`. */
  up: Record<string, never>;
  /** No directory node is connected any more. */
  down: Record<string, never>;
  /** No directory carries this nick any more. */
  nickLeave: { readonly nick: string };
}

/** One offer in the orderbook, with the keys of jmdaemon's `orderbook` table. */
export interface CoreOffer {
  readonly counterparty: string;
  readonly oid: number;
  readonly ordertype: string;
  readonly minsize: number;
  readonly maxsize: number;
  readonly txfee: number;
  /** As received (a decimal fraction, or integer sats for an absolute offer). */
  readonly cjfee: string;
}

/** A fidelity-bond proof a maker sent us with its offers (`!tbond`), as jmdaemon's table holds it. */
export interface CoreFidelityBond {
  readonly counterparty: string;
  /** Our nick at the time: the proof is made for it. */
  readonly takernick: string;
  readonly proof: string;
}

/** The node as the joinmarketd service uses it. */
export interface MessageChannelCore {
  /** Our nick (given by the jmclient in JMStartMC). */
  readonly nick: string;
  /** {@link ONION_HOSTID}. */
  readonly hostid: string;
  /** Connects to the directory nodes (and serves, for a maker); `up` follows. Idempotent. */
  start(): Promise<void>;
  /** Closes every link, wipes the session keys. Idempotent. */
  stop(): Promise<void>;
  /** True while at least one directory node is handshaked. */
  readonly isUp: boolean;
  /**
   * Sends a pubmsg (`message` starts with `!`) to every connected directory node.
   * @throws OnionmcError `ERR_NOT_ROUTABLE` when none is connected.
   */
  pubmsg(message: string): void;
  /**
   * Sends privmsg `!cmd body` to `nick`: inserts the NaCl key for `fill` (body `oid amount
   * commitment`) and `pubkey` (body `""`), encrypts `auth`/`ioauth`/`tx`/`sig`, signs through the
   * {@link NickSigner}, and routes it. Resolves once sent.
   * @throws OnionmcError `ERR_NOT_ROUTABLE` (no route), `ERR_CRYPTO` (no session), `ERR_TIMEOUT`
   *   or `ERR_CLOSED` (the signer did not answer).
   */
  privmsg(nick: string, cmd: string, body: string): Promise<void>;
  /** True when a privmsg to `nick` has a route (jmdaemon's `active_channels` / `nicks_seen`). */
  canReach(nick: string): boolean;
  /** The offers heard (pubmsg and privmsg), every maker, sorted by nick then oid. */
  orderbook(): CoreOffer[];
  /** The `!tbond` proofs heard, one per maker. */
  fidelityBonds(): CoreFidelityBond[];
  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof CoreEvents>(event: K, listener: (event: CoreEvents[K]) => void): () => void;
}

/** The `[MESSAGING:onion]` section the jmclient sends in JMInit's `chan_configs`, validated. */
export interface OnionChannelConfig {
  /** `section-name`, e.g. `MESSAGING:onion`. */
  readonly sectionName: string;
  /** `directory_nodes`, split on commas. */
  readonly directoryNodes: readonly string[];
  readonly socks5Host: string;
  readonly socks5Port: number;
  readonly torControlHost: string;
  readonly torControlPort: number;
  readonly onionServingHost: string;
  readonly onionServingPort: number;
  readonly hiddenServiceDir: string;
  /** A maker serves an onion service (or a port in testing mode); a taker does not. */
  readonly serving: boolean;
  readonly passive: boolean;
  /** `btcnet`: `mainnet`, `testnet`, `signet`, `regtest`. */
  readonly btcnet: string;
  /** `regtest_count` when given (testing mode). */
  readonly regtestCount: string | undefined;
  /** The section as received, for keys this build does not read. */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** What a {@link CoreFactory} gets to build a core for one jmclient. */
export interface CoreContext {
  readonly nick: string;
  readonly config: OnionChannelConfig;
  /** JMInit's `network`. */
  readonly network: string;
  readonly signer: NickSigner;
  readonly verifier: NickVerifier;
}

/** Builds the core for one jmclient connection (after JMStartMC gave the nick). */
export type CoreFactory = (context: CoreContext) => MessageChannelCore;

type CoreListener<K extends keyof CoreEvents> = (event: CoreEvents[K]) => void;

/**
 * The listeners of a {@link MessageChannelCore}'s events, for its implementations: `on` as the
 * interface has it, and `emit` to every listener of an event in the order they subscribed.
 */
export class CoreListeners {
  readonly #sets = new Map<keyof CoreEvents, Set<CoreListener<never>>>();

  /** Adds `listener` for `event`; returns the function that removes it. */
  on<K extends keyof CoreEvents>(event: K, listener: CoreListener<K>): () => void {
    let set = this.#sets.get(event);
    if (set === undefined) {
      set = new Set();
      this.#sets.set(event, set);
    }
    set.add(listener);
    return () => set.delete(listener);
  }

  /**
   * Calls every listener of `event` with `payload`. A listener that throws is reported to
   * `onError` and the others still run; without `onError` the exception propagates.
   */
  emit<K extends keyof CoreEvents>(
    event: K,
    payload: CoreEvents[K],
    onError?: (err: unknown) => void,
  ): void {
    for (const listener of this.#sets.get(event) ?? []) {
      if (onError === undefined) {
        (listener as CoreListener<K>)(payload);
        continue;
      }
      try {
        (listener as CoreListener<K>)(payload);
      } catch (err) {
        onError(err);
      }
    }
  }
}
