/**
 * Transports: how a node opens outbound streams (a {@link Dialer}) and accepts inbound ones (a
 * {@link ServerTransport}). Policy code sees only these interfaces, so the same directory node,
 * maker and taker run over plain loopback TCP (JoinMarket's testing mode, docs/protocol.md §8.4) or over Tor
 * (SOCKS5 dialer, onion service; docs/protocol.md §8.1-§8.3).
 */
import net from 'node:net';
import { ListenError, OnionmcError } from '../errors.js';
import { connectWithTimeout, describeConnectFailure } from '../net/connect.js';

/** Why a stream is opened; Tor dialers use it for stream isolation (docs/protocol.md §4.5, ng tor_isolation). */
export type DialPurpose = 'directory' | 'peer';

/** A host and TCP port to dial (an onion name or, in testing mode, an IP address). */
export interface DialTarget {
  readonly host: string;
  readonly port: number;
}

/** Opens outbound streams. Implementations: {@link TcpDialer} (testing mode), a SOCKS5 dialer (Tor). */
export interface Dialer {
  /**
   * Opens a stream to `target`.
   * @throws OnionmcError naming the target when it fails: `ERR_DIAL_REFUSED`, `ERR_DIAL_TIMEOUT`,
   *   `ERR_DIAL` (other socket errors), `ERR_ABORTED` (the signal), a SocksError's code, or
   *   `ERR_DIAL` for a target the dialer refuses before any I/O.
   */
  dial(target: DialTarget, purpose: DialPurpose, signal?: AbortSignal): Promise<net.Socket>;
}

/** Accepts inbound streams. */
export interface ServerTransport {
  /**
   * Starts accepting; `onConnection` receives each new socket.
   * @throws ListenError (`ERR_LISTEN`, with the errno) when it cannot bind.
   */
  listen(onConnection: (socket: net.Socket) => void): Promise<void>;
  /** Stops accepting; open sockets are left to their owners. Idempotent. */
  close(): Promise<void>;
}

/** Default deadline of a plain TCP connect in testing mode. */
export const TCP_CONNECT_TIMEOUT_MS = 10_000;

/** Plain TCP dialer for JoinMarket's testing mode (docs/protocol.md §8.4: `connectTCP(host, port)`, no SOCKS). */
export class TcpDialer implements Dialer {
  readonly #timeoutMs: number;

  constructor(options: { timeoutMs?: number } = {}) {
    this.#timeoutMs = options.timeoutMs ?? TCP_CONNECT_TIMEOUT_MS;
  }

  dial(target: DialTarget, _purpose: DialPurpose, signal?: AbortSignal): Promise<net.Socket> {
    const where = `${target.host}:${target.port}`;
    return connectWithTimeout(
      { kind: 'tcp', host: target.host, port: target.port },
      {
        timeoutMs: this.#timeoutMs,
        signal,
        toError: (failure) => {
          const message = `cannot connect to ${where}: ${describeConnectFailure(failure)}`;
          switch (failure.kind) {
            case 'aborted':
              return new OnionmcError('ERR_ABORTED', `dial to ${where} aborted`, {
                cause: failure.reason,
              });
            case 'timeout':
              return new OnionmcError('ERR_DIAL_TIMEOUT', message);
            case 'error':
              return new OnionmcError(
                failure.errno === 'ECONNREFUSED' ? 'ERR_DIAL_REFUSED' : 'ERR_DIAL',
                message,
                { cause: failure.error },
              );
          }
        },
      },
    );
  }
}

/**
 * Listen backlog (pending accepts the kernel queues for us): room for a 2,000-handshake reconnect
 * storm; Linux caps it at `net.core.somaxconn` (4,096 on current kernels). Node's default is 511.
 */
export const DEFAULT_LISTEN_BACKLOG = 4_096;

/** Plain TCP listener (testing mode; also the local end of an onion service's port mapping). */
export class TcpServerTransport implements ServerTransport {
  readonly #host: string;
  readonly #port: number;
  readonly #backlog: number;
  readonly #fd: number | undefined;
  #server: net.Server | undefined;

  /**
   * @param backlog see {@link DEFAULT_LISTEN_BACKLOG}.
   * @param fd an already-listening socket handed to us (socket activation, `onionmc run
   *   --listen-fd`): we accept on it instead of binding `host:port`, which then only names it.
   */
  constructor(host: string, port: number, backlog: number = DEFAULT_LISTEN_BACKLOG, fd?: number) {
    this.#host = host;
    this.#port = port;
    this.#backlog = backlog;
    this.#fd = fd;
  }

  /** The bound port, once listening (useful when constructed with port 0). */
  get port(): number {
    const address = this.#server?.address();
    return typeof address === 'object' && address !== null ? address.port : this.#port;
  }

  listen(onConnection: (socket: net.Socket) => void): Promise<void> {
    const where =
      this.#fd === undefined ? `${this.#host}:${this.#port}` : `the socket at fd ${this.#fd}`;
    return new Promise((resolve, reject) => {
      const server = net.createServer({ noDelay: true }, onConnection);
      server.once('error', (err: NodeJS.ErrnoException) => {
        reject(
          new ListenError(`cannot listen on ${where}: ${err.message}`, {
            cause: err,
            ...(err.code !== undefined ? { errno: err.code } : {}),
          }),
        );
      });
      const options =
        this.#fd === undefined
          ? { host: this.#host, port: this.#port, backlog: this.#backlog }
          : { fd: this.#fd, backlog: this.#backlog };
      server.listen(options, () => {
        this.#server = server;
        resolve();
      });
    });
  }

  close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server === undefined) return Promise.resolve();
    return new Promise((resolve) => {
      server.close(() => {
        resolve();
      });
    });
  }
}
