/**
 * The cut-off after a polite close: once we end a connection (or decide to), a peer that does not
 * take our last bytes, or never closes its end, must not hold the socket. The peer connections'
 * close (src/peer/connection.ts), the local API's answer to a request Node's parser refused and
 * the AMP link after a fault in the client's stream all use it.
 */
import type { Duplex } from 'node:stream';

/**
 * Destroys `socket` `ms` milliseconds from now unless it closed first. The timer does not keep the
 * process alive and is cleared when the socket closes.
 */
export function destroyUnlessClosedWithin(socket: Duplex, ms: number): void {
  const cutOff = setTimeout(() => socket.destroy(), ms);
  cutOff.unref();
  socket.once('close', () => {
    clearTimeout(cutOff);
  });
}
