/**
 * The Tor {@link Dialer}: every outbound stream of a maker or taker in Tor mode goes through Tor's
 * SOCKS5 proxy (docs/protocol.md §8.3: `socks5_host:socks5_port`, remote resolution of `.onion` names), set
 * up by {@link socksDial} (src/tor/socks-dialer.ts, on the `socks` package).
 *
 * What this layer adds to a single SOCKS5 dial:
 *
 * | concern          | rule                                                                         |
 * | ---------------- | ---------------------------------------------------------------------------- |
 * | targets          | v3 onions only (docs/protocol.md §2.1, §8.3: "we disallow clearnet connections")         |
 * | deadline         | `socks5_connect_timeout` (config `socks5ConnectTimeoutMs`, default 120 s, §8.5) |
 * | stream isolation | SOCKS username `onionmc-directory` / `onionmc-peer`, password per dial       |
 * | errors           | name the directory node or peer dialed, the proxy and tor's SOCKS reply       |
 *
 * Stream isolation: tor's default `IsolateSOCKSAuth` never puts two streams whose SOCKS
 * credentials differ on one circuit (Tor socks-extensions spec, "stream isolation"), so links to
 * directory nodes never share a circuit with direct peer links, and neither shares one with other
 * programs using the same tor (ng's `tor_isolation` separates the same two purposes, docs/protocol.md §4.5).
 *
 * The password is a random string per process plus a dial counter, so no two dials share a
 * circuit either. Tor attaches a new stream to an onion service to an open rendezvous circuit to
 * that onion whose isolation matches, and does not move a stream that gets no answer there to
 * another circuit: it waits up to its `SocksTimeout`, where a stream on an ordinary circuit is
 * retried on a new one after 10-15 s (tor's src/core/or/connection_edge.c,
 * `connection_ap_expire_beginning`). A client's tor can keep a rendezvous circuit to a directory
 * node whose tor died open for a minute or more; with one password per process a redial could go
 * onto that dead circuit and wait out the whole dial deadline. A fresh password makes tor build
 * new circuits for every dial.
 */
import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import { OnionmcError, SocksError } from '../errors.js';
import { connectWithTimeout, describeConnectFailure } from '../net/connect.js';
import { formatEndpoint, type Endpoint } from '../tor/endpoint.js';
import { socksDial } from '../tor/socks-dialer.js';
import { isV3OnionHostname } from '../wire/location.js';
import type { Dialer, DialPurpose, DialTarget } from './transport.js';

/** Deadline of {@link SocksDialer.checkProxy}'s connection to the proxy. Our choice. */
export const SOCKS_PROXY_CHECK_TIMEOUT_MS = 10_000;

/** Length of the random per-process isolation password, in bytes (hex-encoded: twice as many characters). */
export const SOCKS_ISOLATION_PASSWORD_BYTES = 16;

/** SOCKS5 username of each dial purpose (RFC 1929); tor isolates streams by it. */
export const SOCKS_ISOLATION_USERNAMES: Readonly<Record<DialPurpose, string>> = Object.freeze({
  directory: 'onionmc-directory',
  peer: 'onionmc-peer',
});

/** Options of a {@link SocksDialer}. */
export interface SocksDialerOptions {
  /** Tor's SocksPort: TCP (`socks5_host`/`socks5_port`) or a unix socket (`socks5_host = unix:/path`). */
  readonly proxy: Endpoint;
  /** Deadline of one dial in ms, CONNECT reply included (config `socks5ConnectTimeoutMs`, docs/protocol.md §8.5). */
  readonly timeoutMs: number;
  /**
   * The start of the isolation password of every dial of this dialer, followed by `-` and the
   * dial's number (1, 2, ...). Default: a fresh random string, so one per daemon process.
   * Injectable for tests.
   */
  readonly isolationPassword?: string;
}

/** `directory node <host:port>` or `peer <host:port>`: how a failure names what was dialed. */
function describeTarget(target: DialTarget, purpose: DialPurpose): string {
  return `${purpose === 'directory' ? 'directory node' : 'peer'} ${target.host}:${target.port}`;
}

/** The torrc line that opens `proxy` as a SocksPort (tor(1) `SocksPort`). */
export function torrcSocksPortLine(proxy: Endpoint): string {
  if (proxy.kind === 'unix') return `SocksPort unix:${proxy.path}`;
  const isDefaultHost = proxy.host === '127.0.0.1' || proxy.host === 'localhost';
  return isDefaultHost ? `SocksPort ${proxy.port}` : `SocksPort ${formatEndpoint(proxy)}`;
}

/** Opens outbound streams through Tor's SOCKS5 proxy (docs/protocol.md §8.3); see the module header. */
export class SocksDialer implements Dialer {
  readonly #proxy: Endpoint;
  readonly #timeoutMs: number;
  readonly #password: string;
  /** Dials so far, which makes each dial's password its own. */
  #dials = 0;

  constructor(options: SocksDialerOptions) {
    this.#proxy = options.proxy;
    this.#timeoutMs = options.timeoutMs;
    this.#password =
      options.isolationPassword ?? randomBytes(SOCKS_ISOLATION_PASSWORD_BYTES).toString('hex');
  }

  /** The proxy this dialer uses. */
  get proxy(): Endpoint {
    return this.#proxy;
  }

  /**
   * Opens a stream to `target` (a v3 onion) through tor. The host goes to tor as a name (ATYP 3),
   * so tor resolves it; nothing is resolved locally.
   * @throws OnionmcError `ERR_DIAL` before any I/O when the host is not a v3 onion (docs/protocol.md §8.3);
   *   SocksError when the proxy is unreachable (`ERR_SOCKS_PROXY_UNREACHABLE`), tor refuses the
   *   stream (`reply` set, code by reply: e.g. 0xF2 `ERR_SOCKS_ONION_INTRO_FAILED`), the deadline
   *   passes (`ERR_SOCKS_TIMEOUT`) or `signal` aborts (`ERR_ABORTED`). The message starts
   *   with `directory node <host:port>` or `peer <host:port>` and carries the proxy address and
   *   tor's reply with its meaning.
   */
  async dial(target: DialTarget, purpose: DialPurpose, signal?: AbortSignal): Promise<net.Socket> {
    const what = describeTarget(target, purpose);
    if (!isV3OnionHostname(target.host)) {
      throw new OnionmcError(
        'ERR_DIAL',
        `${what}: not a v3 onion address; onionmc makes no clearnet connections over Tor (docs/protocol.md §8.3)`,
      );
    }
    try {
      return await socksDial({
        proxy: this.#proxy,
        host: target.host,
        port: target.port,
        timeoutMs: this.#timeoutMs,
        isolation: {
          username: SOCKS_ISOLATION_USERNAMES[purpose],
          password: `${this.#password}-${String(++this.#dials)}`,
        },
        ...(signal !== undefined ? { signal } : {}),
      });
    } catch (err) {
      if (err instanceof SocksError) {
        throw new SocksError(`${what}: ${err.message}`, {
          cause: err,
          code: err.code,
          ...(err.reply !== undefined ? { reply: err.reply } : {}),
        });
      }
      throw err;
    }
  }

  /**
   * Checks that something accepts connections at the proxy address (a connect, then close: no
   * SOCKS bytes are sent), so a missing SocksPort is one clear error at startup rather than a
   * warning per failed dial.
   * @throws SocksError `ERR_SOCKS_PROXY_UNREACHABLE` (or `ERR_SOCKS_TIMEOUT`) naming the proxy address and the torrc line that opens it.
   */
  checkProxy(timeoutMs = SOCKS_PROXY_CHECK_TIMEOUT_MS): Promise<void> {
    const proxy = this.#proxy;
    return connectWithTimeout(proxy, {
      timeoutMs,
      toError: (failure) =>
        new SocksError(
          `cannot reach tor's SOCKS proxy at ${formatEndpoint(proxy)} ` +
            `(${describeConnectFailure(failure)}): is tor running,` +
            ` with "${torrcSocksPortLine(proxy)}" in its torrc? Restart tor after changing torrc.`,
          {
            code: failure.kind === 'timeout' ? 'ERR_SOCKS_TIMEOUT' : 'ERR_SOCKS_PROXY_UNREACHABLE',
            ...(failure.kind === 'error' ? { cause: failure.error } : {}),
          },
        ),
    }).then((socket) => {
      socket.destroy();
    });
  }
}
