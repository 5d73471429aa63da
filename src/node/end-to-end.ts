/**
 * End-to-end encryption as the daemon owns it (docs/protocol.md §5.2, §5.3, §7): the NaCl keys
 * spliced into `!fill` and `!pubkey`, and the encrypted commands sealed and opened. In raw mode
 * (`endToEnd: false`) bodies pass unchanged, for an application that does the key exchange
 * itself.
 */
import { OnionmcError } from '../errors.js';
import { isEncryptedCommand } from '../message/commands.js';
import { EncryptionSessions } from './encryption-sessions.js';

/** A received body as the application gets it, with the session keys of the NaCl exchange. */
export interface OpenedBody {
  readonly body: string;
  readonly encrypted: boolean;
  /** Our NaCl session public key with the sender, 64 hex (the maker's `kphex`). */
  readonly ownKeyHex?: string;
  /** The sender's NaCl session public key, 64 hex (what a taker checks `btc_sig` over). */
  readonly peerKeyHex?: string;
}

/** Seals outgoing and opens incoming privmsg bodies. */
export class EndToEnd {
  readonly enabled: boolean;
  readonly #sessions: EncryptionSessions;

  constructor(options: { enabled: boolean; now: () => number }) {
    this.enabled = options.enabled;
    this.#sessions = new EncryptionSessions({ now: options.now });
  }

  /**
   * The body as it goes on the wire: NaCl keys inserted, encrypted commands encrypted.
   * @throws OnionmcError `ERR_API` for a malformed `!fill`; `ERR_CRYPTO` before the key exchange.
   */
  seal(to: string, cmd: string, body: string): string {
    if (!this.enabled) return body;
    if (isEncryptedCommand(cmd)) return this.#sessions.encrypt(to, body);
    if (cmd === 'fill') {
      const args = body.split(' ');
      if (args.length !== 3 || args.some((a) => a === '')) {
        throw new OnionmcError(
          'ERR_API',
          '!fill takes "oid amount commitment"; the daemon inserts its NaCl public key',
        );
      }
      const key = this.#sessions.startAsTaker(to);
      return [args[0], args[1], key, args[2]].join(' ');
    }
    if (cmd === 'pubkey') {
      const key = this.#sessions.makerPublicKey(to);
      return body === '' ? key : `${key} ${body}`;
    }
    return body;
  }

  /**
   * What the application gets of a verified privmsg body: decrypted, or with the NaCl key taken
   * out of `!fill` / `!pubkey`.
   * @throws OnionmcError `ERR_CRYPTO` (or another error) when a key or ciphertext is bad.
   */
  open(from: string, cmd: string, body: string): OpenedBody {
    if (!this.enabled) return { body, encrypted: false };
    if (isEncryptedCommand(cmd)) {
      // The receiver joins the tokens after the command word without spaces, then decodes and
      // decrypts (docs/protocol.md §5.3).
      const plain = this.#sessions.decrypt(from, body.split(' ').join(''));
      return { body: plain, encrypted: true, ...this.#keys(from) };
    }
    if (cmd === 'fill') {
      // `oid amount taker_nacl_pubkey commitment` (docs/protocol.md §5.2).
      const args = body.split(' ');
      this.#sessions.acceptFill(from, args[2] ?? '');
      args.splice(2, 1);
      return { body: args.join(' '), encrypted: false, ...this.#keys(from) };
    }
    if (cmd === 'pubkey') {
      // `maker_nacl_pubkey [features=…]` (docs/protocol.md §5.2, §9.7).
      const args = body.split(' ');
      this.#sessions.acceptPubkey(from, args[0] ?? '');
      return { body: args.slice(1).join(' '), encrypted: false, ...this.#keys(from) };
    }
    return { body, encrypted: false };
  }

  #keys(nick: string): { ownKeyHex?: string; peerKeyHex?: string } {
    const keys = this.#sessions.keysOf(nick);
    if (keys === undefined) return {};
    return { ownKeyHex: keys.own, ...(keys.peer !== undefined ? { peerKeyHex: keys.peer } : {}) };
  }

  /** The session keys with `nick` (hex), undefined without a live session; see {@link EncryptionSessions.keysOf}. */
  keysOf(nick: string): { own: string; peer: string | undefined } | undefined {
    return this.enabled ? this.#sessions.keysOf(nick) : undefined;
  }

  /**
   * A `!fill` sealed by {@link seal} was not sent (no route, a signer that failed) or not
   * confirmed: drops the session it started, unless a later `!fill` replaced it.
   */
  abandonFill(to: string, wireBody: string): void {
    if (!this.enabled) return;
    const key = wireBody.split(' ')[2];
    if (key !== undefined && this.#sessions.keysOf(to)?.own === key) this.#sessions.end(to);
  }

  /** Drops expired sessions. */
  sweep(): void {
    this.#sessions.sweep();
  }

  /** Drops every session. */
  clear(): void {
    this.#sessions.clear();
  }
}
