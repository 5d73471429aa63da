/**
 * The privmsg path between the client node's parts and the application: an incoming privmsg is
 * shown to the orderbook collector, opened by {@link EndToEnd} (docs/protocol.md §7) and emitted
 * as a `privmsg` event; a privmsg the node sends on its own (the maker's answers, the error for a
 * bad `!fill` key) goes through whichever signer the node has, the in-process key or an outside
 * signer that answers asynchronously (docs/joinmarketd.md).
 */
import type { ClientContext } from './client-context.js';
import type { PrivmsgOptions, SendResult, Via } from './client-types.js';
import type { EndToEnd } from './end-to-end.js';
import type { OrderbookCollector } from './offers-part.js';
import type { Router } from './router.js';

/** Delivers incoming privmsgs and sends the node's own. */
export class PrivmsgDelivery {
  readonly #ctx: ClientContext;
  readonly #router: () => Router;
  readonly #endToEnd: EndToEnd;
  readonly #collector: OrderbookCollector;
  readonly #externalSigner: boolean;

  /**
   * @param router returns the node's router (built after this part).
   * @param externalSigner true when the signer came from the options and may answer later.
   */
  constructor(
    ctx: ClientContext,
    parts: { router: () => Router; endToEnd: EndToEnd; collector: OrderbookCollector },
    externalSigner: boolean,
  ) {
    this.#ctx = ctx;
    this.#router = parts.router;
    this.#endToEnd = parts.endToEnd;
    this.#collector = parts.collector;
    this.#externalSigner = externalSigner;
  }

  /**
   * Sends for the maker: at once with the in-process key; with an outside signer the route is
   * chosen when it answered, so the result names the requested directory.
   * @throws as {@link Router.privmsg} with the in-process key.
   */
  send(to: string, cmd: string, body: string, options: PrivmsgOptions): SendResult {
    if (!this.#externalSigner) return this.#router().privmsg(to, cmd, body, options);
    this.trySend(to, cmd, body, options);
    return { kind: 'directory', location: options.directory ?? '' };
  }

  /** Sends with whichever signer we have; a failure is logged, never thrown. */
  trySend(to: string, cmd: string, body: string, options: PrivmsgOptions = {}): void {
    const fail = (err: unknown): void => {
      this.#ctx.logger.info(
        { to, cmd, reason: err instanceof Error ? err.message : String(err) },
        'could not send',
      );
    };
    if (this.#externalSigner) {
      this.#router().privmsgAsync(to, cmd, body, options).catch(fail);
      return;
    }
    try {
      this.#router().privmsg(to, cmd, body, options);
    } catch (err) {
      fail(err);
    }
  }

  /** An incoming privmsg that passed the router's checks. */
  deliver(from: string, cmd: string, body: string, via: Via): void {
    this.#collector.onPrivmsg(from, cmd, body);
    let opened;
    try {
      opened = this.#endToEnd.open(from, cmd, body);
    } catch (err) {
      this.#ctx.drop(from, 'crypto', err instanceof Error ? err.message : String(err));
      // The reference maker answers a bad key in !fill with an error (docs/protocol.md §7 init_pubkey).
      if (cmd === 'fill') this.trySend(from, 'error', 'Invalid nacl pubkey');
      return;
    }
    this.#ctx.events.emit('privmsg', {
      from,
      cmd,
      body: opened.body,
      via,
      encrypted: opened.encrypted,
      ...(opened.ownKeyHex !== undefined ? { ownKeyHex: opened.ownKeyHex } : {}),
      ...(opened.peerKeyHex !== undefined ? { peerKeyHex: opened.peerKeyHex } : {}),
    });
  }
}
