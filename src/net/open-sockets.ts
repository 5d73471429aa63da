/**
 * Accepted sockets counted until they close: a connection cap counts these, not the connection
 * objects. A connection we closed keeps its socket until the peer takes our last bytes (up to
 * `CLOSE_DRAIN_TIMEOUT_MS`, src/peer/connection.ts); counted, a peer that keeps refused
 * connections open cannot hold sockets for free (docs/limits.md). The directory node's pending
 * handshakes and a maker's inbound direct links use it.
 */
import type net from 'node:net';

/** Accepted sockets not yet closed. */
export class OpenSockets {
  #count = 0;

  /** Sockets added and not yet closed. */
  get size(): number {
    return this.#count;
  }

  /** Counts `socket` until its `close` event; a socket already closed is not counted. */
  add(socket: net.Socket): void {
    if (socket.closed) return;
    this.#count++;
    socket.once('close', () => {
      this.#count--;
    });
  }
}
