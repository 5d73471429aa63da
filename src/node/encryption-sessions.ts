/**
 * End-to-end encryption sessions (docs/protocol.md §7, §5.3): the daemon, not the application, owns the NaCl
 * keys. Per counterparty nick it makes an ephemeral X25519 key pair, puts the public key in the
 * outgoing `!fill` (taker) or `!pubkey` (maker), learns the other side's key from the incoming one,
 * and from then on encrypts and decrypts `!auth`, `!ioauth`, `!tx` and `!sig`. Sessions are keyed
 * by nick, not by link, so a `!fill` through a directory and an `!auth` over a direct link belong
 * to one session (docs/protocol.md §4.5, §6). Idle sessions expire and their keys are wiped.
 */
import { OnionmcError } from '../errors.js';
import {
  decryptFromWire,
  encryptToWire,
  generateBoxKeyPair,
  parseBoxPublicKeyHex,
  wipe,
} from '../message/nacl-box.js';

/** A session unused this long is dropped and its keys wiped (a whole CoinJoin takes minutes). */
export const ENCRYPTION_SESSION_TTL_MS = 15 * 60_000;
/** At most this many sessions at once; the oldest is dropped beyond it (bounds a fill flood). */
export const MAX_ENCRYPTION_SESSIONS = 10_000;

interface Session {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
  theirPublicKey: Uint8Array | undefined;
  lastUsedAt: number;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

function cryptoError(message: string): OnionmcError {
  return new OnionmcError('ERR_CRYPTO', message);
}

/** The NaCl sessions of one node, by counterparty nick. */
export class EncryptionSessions {
  readonly #sessions = new Map<string, Session>();
  readonly #now: () => number;
  readonly #ttlMs: number;

  constructor(options: { now?: () => number; ttlMs?: number } = {}) {
    this.#now = options.now ?? Date.now;
    this.#ttlMs = options.ttlMs ?? ENCRYPTION_SESSION_TTL_MS;
  }

  /** Number of live sessions. */
  get size(): number {
    return this.#sessions.size;
  }

  #create(nick: string): Session {
    this.#drop(nick);
    if (this.#sessions.size >= MAX_ENCRYPTION_SESSIONS) {
      const oldest = this.#sessions.keys().next().value;
      if (oldest !== undefined) this.#drop(oldest);
    }
    const pair = generateBoxKeyPair();
    const session: Session = {
      publicKey: pair.publicKey,
      secretKey: pair.secretKey,
      theirPublicKey: undefined,
      lastUsedAt: this.#now(),
    };
    this.#sessions.set(nick, session);
    return session;
  }

  #live(nick: string): Session | undefined {
    const session = this.#sessions.get(nick);
    if (session === undefined) return undefined;
    if (this.#now() - session.lastUsedAt >= this.#ttlMs) {
      this.#drop(nick);
      return undefined;
    }
    session.lastUsedAt = this.#now();
    // Keep the map in least-recently-used order, so expiry and eviction look at the front.
    this.#sessions.delete(nick);
    this.#sessions.set(nick, session);
    return session;
  }

  #drop(nick: string): void {
    const session = this.#sessions.get(nick);
    if (session === undefined) return;
    wipe(session.secretKey);
    this.#sessions.delete(nick);
  }

  /**
   * Taker, sending `!fill` to `nick`: starts a new session (replacing any old one).
   * @returns our public key, 64 lowercase hex characters, for the `!fill`'s third argument.
   */
  startAsTaker(nick: string): string {
    return hex(this.#create(nick).publicKey);
  }

  /**
   * Maker, receiving `!fill` from `nick`: starts a new session with the taker's key.
   * @throws OnionmcError `ERR_CRYPTO` "Invalid nacl pubkey" unless it is 64 hex characters (docs/protocol.md §7).
   */
  acceptFill(nick: string, theirPublicKeyHex: string): void {
    const theirs = parseBoxPublicKeyHex(theirPublicKeyHex);
    this.#create(nick).theirPublicKey = theirs;
  }

  /**
   * Maker, sending `!pubkey` to `nick`.
   * @returns our public key for the `!pubkey`'s first argument.
   * @throws OnionmcError `ERR_CRYPTO` when no `!fill` from `nick` started a session.
   */
  makerPublicKey(nick: string): string {
    const session = this.#live(nick);
    if (session?.theirPublicKey === undefined)
      throw cryptoError(`no !fill from ${nick} to answer with !pubkey`);
    return hex(session.publicKey);
  }

  /**
   * Taker, receiving `!pubkey` from `nick`: completes the session we started with `!fill`.
   * @throws OnionmcError `ERR_CRYPTO` when we sent no `!fill` to `nick`, or the key is invalid.
   */
  acceptPubkey(nick: string, theirPublicKeyHex: string): void {
    const session = this.#live(nick);
    if (session === undefined)
      throw cryptoError(`unexpected !pubkey from ${nick}: we sent it no !fill`);
    session.theirPublicKey = parseBoxPublicKeyHex(theirPublicKeyHex);
  }

  /**
   * The session keys with `nick` as hex (64 lowercase characters each), for the application's
   * own checks: the maker signs its `own` key as `btc_sig` in `!ioauth`, the taker verifies that
   * signature over the maker's key, its `peer` key (docs/protocol.md §6, §7). Does not touch the
   * session's idle timer.
   * @returns undefined when there is no live session with `nick`.
   */
  keysOf(nick: string): { own: string; peer: string | undefined } | undefined {
    const session = this.#sessions.get(nick);
    if (session === undefined || this.#now() - session.lastUsedAt >= this.#ttlMs) return undefined;
    return {
      own: hex(session.publicKey),
      peer: session.theirPublicKey === undefined ? undefined : hex(session.theirPublicKey),
    };
  }

  /** True when keys are exchanged with `nick` and the session has not expired. */
  isReady(nick: string): boolean {
    const session = this.#sessions.get(nick);
    return session?.theirPublicKey !== undefined && this.#now() - session.lastUsedAt < this.#ttlMs;
  }

  /**
   * Encrypts `plaintext` for `nick`: base64 of nonce ‖ MAC ‖ ciphertext with a fresh random nonce.
   * @throws OnionmcError `ERR_CRYPTO` before the key exchange (no `!fill`/`!pubkey` yet).
   */
  encrypt(nick: string, plaintext: string): string {
    const session = this.#live(nick);
    if (session?.theirPublicKey === undefined) {
      throw cryptoError(`no encryption session with ${nick}: exchange !fill and !pubkey first`);
    }
    return encryptToWire(plaintext, session.theirPublicKey, session.secretKey);
  }

  /**
   * Decrypts a payload from `nick`.
   * @throws OnionmcError `ERR_CRYPTO` before the key exchange or when authentication fails.
   */
  decrypt(nick: string, wire: string): string {
    const session = this.#live(nick);
    if (session?.theirPublicKey === undefined)
      throw cryptoError(`encrypted message from ${nick} before the key exchange`);
    return decryptFromWire(wire, session.theirPublicKey, session.secretKey);
  }

  /** Drops expired sessions (wiping their keys); returns how many. */
  sweep(): number {
    const now = this.#now();
    let dropped = 0;
    for (const [nick, session] of this.#sessions) {
      if (now - session.lastUsedAt < this.#ttlMs) break;
      this.#drop(nick);
      dropped++;
    }
    return dropped;
  }

  /** Ends the session with `nick` (it left), wiping its keys. */
  end(nick: string): void {
    this.#drop(nick);
  }

  /** Wipes every session. */
  clear(): void {
    for (const nick of [...this.#sessions.keys()]) this.#drop(nick);
  }
}
