/**
 * The joinmarketd TCP server (jmdaemon `start_daemon`; `scripts/joinmarketd.py [port] [use_ssl]
 * [host]`): one {@link JoinmarketdSession} per jmclient connection. The AMP link carries no
 * authentication, so it listens on loopback only unless the caller explicitly allows another
 * address, and can be wrapped in TLS as jmdaemon's `use_ssl` (docs/joinmarketd.md).
 */
import net from 'node:net';
import tls from 'node:tls';
import { OnionmcError } from '../errors.js';
import type { Logger } from '../log.js';
import type { CoreFactory } from './core.js';
import { JoinmarketdSession } from './service.js';

/** jmclient's default `daemon_port` (jmclient/configure.py). */
export const JOINMARKETD_DEFAULT_PORT = 27183;
/** jmdaemon's default host. */
export const JOINMARKETD_DEFAULT_HOST = '127.0.0.1';
/**
 * At most this many jmclients at once (each holds a message channel). Counted from the TCP
 * connection, before any TLS handshake, so connections that never finish one count too.
 */
export const JOINMARKETD_MAX_CONNECTIONS = 16;
/** A refused connection is logged at most this often, ms (`refused` counts them all). */
const DROP_LOG_INTERVAL_MS = 10_000;
/** With TLS, a connection that has not finished its handshake after this long is closed, ms. */
export const JOINMARKETD_TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

/** Options of {@link startJoinmarketd}. */
export interface JoinmarketdServerOptions {
  readonly host?: string;
  /** 0 picks a free port (tests). */
  readonly port?: number;
  /** Must be true to listen on an address other than loopback. */
  readonly allowNonLoopback?: boolean;
  /** PEM key and certificate: serve TLS (jmdaemon `use_ssl`). */
  readonly tls?: { readonly key: string | Buffer; readonly cert: string | Buffer };
  readonly createCore: CoreFactory;
  readonly logger: Logger;
  readonly maxConnections?: number;
  /** With `tls`: {@link JOINMARKETD_TLS_HANDSHAKE_TIMEOUT_MS} (tests shorten it). */
  readonly tlsHandshakeTimeoutMs?: number;
}

/** A running joinmarketd server. */
export interface JoinmarketdServer {
  readonly host: string;
  readonly port: number;
  /** Live sessions. */
  readonly sessions: ReadonlySet<JoinmarketdSession>;
  /** Stops accepting, closes every session. Idempotent. */
  close(): Promise<void>;
}

/** True for 127.0.0.0/8, ::1 and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return net.isIPv4(host) && host.startsWith('127.');
}

/**
 * Starts listening.
 * @throws OnionmcError `ERR_CONFIG` for a non-loopback host without `allowNonLoopback`; the
 *   listen error (EADDRINUSE, EACCES) otherwise.
 */
export async function startJoinmarketd(
  options: JoinmarketdServerOptions,
): Promise<JoinmarketdServer> {
  const host = options.host ?? JOINMARKETD_DEFAULT_HOST;
  if (!isLoopbackHost(host) && options.allowNonLoopback !== true)
    throw new OnionmcError(
      'ERR_CONFIG',
      `joinmarketd host ${host} is not loopback: the AMP link is unauthenticated; allow it explicitly (and use TLS)`,
    );
  const sessions = new Set<JoinmarketdSession>();
  const maxConnections = options.maxConnections ?? JOINMARKETD_MAX_CONNECTIONS;
  let counter = 0;
  // Refusals are logged at most once per DROP_LOG_INTERVAL_MS: a connect flood must not flood the log.
  let refused = 0;
  let lastRefusalLogAt = -Infinity;
  const logRefusal = (): void => {
    refused++;
    const now = performance.now();
    if (now - lastRefusalLogAt < DROP_LOG_INTERVAL_MS) return;
    lastRefusalLogAt = now;
    options.logger.warn({ maxConnections, refused }, 'too many jmclients; connection refused');
  };
  const onSocket = (socket: net.Socket): void => {
    if (sessions.size >= maxConnections) {
      logRefusal();
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const logger = options.logger.child({ jmclient: ++counter });
    logger.info(
      { remote: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}` },
      'jmclient connected',
    );
    const session = new JoinmarketdSession(socket, { createCore: options.createCore, logger });
    sessions.add(session);
    session.amp.onClose(() => sessions.delete(session));
  };
  const server =
    options.tls !== undefined
      ? tls.createServer(
          {
            key: options.tls.key,
            cert: options.tls.cert,
            handshakeTimeout: options.tlsHandshakeTimeoutMs ?? JOINMARKETD_TLS_HANDSHAKE_TIMEOUT_MS,
          },
          onSocket,
        )
      : net.createServer(onSocket);
  // The cap counts TCP connections as they are accepted: with TLS, onSocket runs only after a
  // handshake, and connections stalled before it would otherwise escape the cap.
  server.maxConnections = maxConnections;
  server.on('drop', logRefusal);
  // Node only reports a failed or timed-out handshake here; the connection stays open (and
  // counted) until it is destroyed.
  server.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => {
    options.logger.info({ reason: err.message }, 'jmclient TLS handshake failed; closed');
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? JOINMARKETD_DEFAULT_PORT, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => {
    options.logger.error({ err }, 'joinmarketd server error');
  });
  const address = server.address() as net.AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    host,
    port: address.port,
    sessions,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        for (const session of sessions) session.amp.destroy();
      });
      return closing;
    },
  };
}
