/**
 * Exit codes of the `onionmc` command (documented in docs/operating.md, "Exit codes"). A start
 * failure prints one line `onionmc: <what and how to fix it>` on stderr, never a stack trace.
 */
export const EXIT = Object.freeze({
  /** Clean stop (a signal), or a command that did its job. */
  OK: 0,
  /** Runtime failure: tor or a listener unusable at start, a stop past its deadline; a client
   * command whose request the daemon refused. */
  FAILURE: 1,
  /** Configuration or usage error: bad option value, config problems, refused as root. */
  USAGE: 2,
  /** The local API cannot listen: the path holds something that is not a socket, another
   * onionmc serves it, the port is in use, or no permission. Nothing was removed. */
  API_UNAVAILABLE: 3,
  /** A client command (info, peers, orderbook, send, listen) found no daemon on the socket. */
  NO_DAEMON: 4,
  /** A bug: an unexpected exception (EX_SOFTWARE). */
  INTERNAL: 70,
});
