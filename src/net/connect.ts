/**
 * The one way onionmc opens a stream: connect to a TCP address or a unix socket with a deadline
 * and an AbortSignal. Used by the plain TCP dialer, the SOCKS5 dialer (its connection to tor's
 * SocksPort), the SOCKS proxy check and the Tor control client. Callers turn a
 * {@link ConnectFailure} into their own typed error (so each names what it was connecting to).
 */
import net from 'node:net';

/** A TCP address or a unix socket path. */
export type ConnectEndpoint =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string };

/** Why a connect failed. */
export type ConnectFailure =
  /** The socket reported an error; `errno` is e.g. `ECONNREFUSED` when the system gave one. */
  | { readonly kind: 'error'; readonly error: Error; readonly errno: string | undefined }
  /** No connection within the deadline. */
  | { readonly kind: 'timeout'; readonly timeoutMs: number }
  /** The caller's signal aborted; `reason` is the signal's reason. */
  | { readonly kind: 'aborted'; readonly reason: unknown };

/** Options of {@link connectWithTimeout}. */
export interface ConnectWithTimeoutOptions {
  /** Deadline of the connect in ms. */
  readonly timeoutMs: number;
  /** Aborts the connect: the socket is destroyed at once. */
  readonly signal?: AbortSignal | undefined;
  /** Turns a failure into the error the promise rejects with. */
  readonly toError: (failure: ConnectFailure) => Error;
}

/**
 * Connects to `endpoint`. Resolves with the connected socket (its listeners removed: the caller
 * owns it and must attach an `'error'` listener); nothing is left open when it rejects.
 * @throws whatever `options.toError` returns, for an error, the deadline or an abort.
 */
export function connectWithTimeout(
  endpoint: ConnectEndpoint,
  options: ConnectWithTimeoutOptions,
): Promise<net.Socket> {
  const { timeoutMs, signal, toError } = options;
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(toError({ kind: 'aborted', reason: signal.reason }));
      return;
    }
    const socket =
      endpoint.kind === 'unix'
        ? net.createConnection({ path: endpoint.path })
        : net.createConnection({ host: endpoint.host, port: endpoint.port });
    const deadline = new AbortController();
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.off('connect', onConnect);
      signal?.removeEventListener('abort', onAbort);
      deadline.signal.removeEventListener('abort', onTimeout);
    };
    const fail = (failure: ConnectFailure): void => {
      cleanup();
      socket.destroy();
      reject(toError(failure));
    };
    const onError = (err: NodeJS.ErrnoException): void => {
      fail({ kind: 'error', error: err, errno: err.code });
    };
    const onAbort = (): void => {
      fail({ kind: 'aborted', reason: signal?.reason });
    };
    const onTimeout = (): void => {
      fail({ kind: 'timeout', timeoutMs });
    };
    const onConnect = (): void => {
      cleanup();
      resolve(socket);
    };
    const timer = setTimeout(() => {
      deadline.abort();
    }, timeoutMs);
    deadline.signal.addEventListener('abort', onTimeout, { once: true });
    socket.once('error', onError);
    socket.once('connect', onConnect);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** `ECONNREFUSED`, or the message when the error has no errno; for error messages. */
export function describeConnectFailure(failure: ConnectFailure): string {
  switch (failure.kind) {
    case 'error':
      return failure.errno ?? failure.error.message;
    case 'timeout':
      return `no connection within ${failure.timeoutMs} ms`;
    case 'aborted':
      return 'aborted';
  }
}
