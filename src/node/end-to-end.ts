/**
 * End-to-end encryption as the daemon owns it (docs/protocol.md §5.2, §5.3, §7): the NaCl keys
 * spliced into `!fill` and `!pubkey`, and the encrypted commands sealed and opened. In raw mode
 * (`endToEnd: false`) bodies pass unchanged, for an application that does the key exchange
 * itself.
 */
import { OnionmcError } from '../errors.js';
import { isEncryptedCommand } from '../message/commands.js';
import { EncryptionSessions } from './encryption-sessions.js';

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
  open(from: string, cmd: string, body: string): { body: string; encrypted: boolean } {
    if (!this.enabled) return { body, encrypted: false };
    if (isEncryptedCommand(cmd)) {
      // The receiver joins the tokens after the command word without spaces, then decodes and
      // decrypts (docs/protocol.md §5.3).
      return { body: this.#sessions.decrypt(from, body.split(' ').join('')), encrypted: true };
    }
    if (cmd === 'fill') {
      // `oid amount taker_nacl_pubkey commitment` (docs/protocol.md §5.2).
      const args = body.split(' ');
      this.#sessions.acceptFill(from, args[2] ?? '');
      args.splice(2, 1);
      return { body: args.join(' '), encrypted: false };
    }
    if (cmd === 'pubkey') {
      // `maker_nacl_pubkey [features=…]` (docs/protocol.md §5.2, §9.7).
      const args = body.split(' ');
      this.#sessions.acceptPubkey(from, args[0] ?? '');
      return { body: args.slice(1).join(' '), encrypted: false };
    }
    return { body, encrypted: false };
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
