/**
 * SOCKS5 dialing through Tor's SocksPort (TCP or unix socket), on top of the `socks` package.
 *
 * This module owns one outbound stream set-up: connect to the proxy, run the SOCKS5 greeting,
 * the optional username/password sub-negotiation (Tor's stream isolation) and CONNECT, and turn
 * every failure into a {@link SocksError} that names the target, the proxy and, when the proxy
 * answered, its reply code and that code's meaning.
 *
 * Wire exchange (RFC 1928 §3-§6, RFC 1929 §2), client bytes first:
 *
 * | step     | client sends                                     | proxy answers                  |
 * | -------- | ------------------------------------------------ | ------------------------------ |
 * | greeting | `05 01 00` (no auth) or `05 02 00 02` (+userpass)  | `05 METHOD` (`FF`: none fits)  |
 * | userpass | `01 ULEN UNAME PLEN PASSWD` (only if METHOD=02)  | `01 STATUS` (`00` = success)   |
 * | CONNECT  | `05 01 00 03 LEN <host> PORT(2, big endian)`     | `05 REP 00 ATYP BND.ADDR PORT` |
 *
 * The host always travels as a DOMAINNAME (ATYP 3) unless it is an IP literal, so a `.onion` name
 * is resolved by Tor and never by a local DNS lookup.
 *
 * Sources: RFC 1928 (SOCKS5), RFC 1929 (username/password), Tor's socks-extensions spec
 * (https://spec.torproject.org/socks-extensions: IsolateSOCKSAuth, extended error codes),
 * tor proposal 304 and tor(1) `SocksPort ... ExtendedErrors` (reply codes 0xF0-0xF7, checked
 * against the tor 0.4.9.11 manual), docs/protocol.md §8.3 (`socks` with `existing_socket` for a
 * unix SocksPort).
 */
import net from 'node:net';
import { SocksClient } from 'socks';
import { SocksError } from '../errors.js';
import { connectWithTimeout, describeConnectFailure } from '../net/connect.js';
import { formatEndpoint, type Endpoint } from './endpoint.js';

export type { Endpoint } from './endpoint.js';

/** Options of {@link socksDial}. */
export interface SocksDialOptions {
  /** Tor's SocksPort: TCP (`127.0.0.1:9050`) or a unix socket (`SocksPort unix:/path`). */
  proxy: Endpoint;
  /**
   * Destination host name, passed to the proxy as is (ATYP 3, DOMAINNAME) so Tor resolves it:
   * a `<56 chars>.onion` name for onion services. 1-255 bytes of printable ASCII.
   */
  host: string;
  /** Destination port, 1-65535. */
  port: number;
  /**
   * Deadline for the whole dial in milliseconds: TCP/unix connect to the proxy, SOCKS5
   * negotiation and Tor's reply to CONNECT (which includes building the onion circuit).
   */
  timeoutMs: number;
  /**
   * SOCKS5 username/password (RFC 1929), 1-255 bytes each. Tor does not check them but, with
   * its default `IsolateSOCKSAuth`, never shares a circuit between streams whose credentials
   * differ (Tor socks-extensions spec, "stream isolation").
   */
  isolation?: { username: string; password: string };
  /** Aborts the dial: the socket is destroyed and the promise rejects with a {@link SocksError}. */
  signal?: AbortSignal;
}

/** SOCKS protocol version byte (RFC 1928 §3). */
const SOCKS_VERSION_5 = 0x05;
/** METHOD value "username/password" (RFC 1928 §3, RFC 1929). */
const SOCKS_METHOD_USERPASS = 0x02;
/** METHOD value "no acceptable methods" (RFC 1928 §3). */
const SOCKS_METHOD_NONE_ACCEPTABLE = 0xff;
/** Username/password sub-negotiation status "success" (RFC 1929 §2). */
const SOCKS_USERPASS_STATUS_SUCCESS = 0x00;
/** REP value "succeeded" (RFC 1928 §6). */
const SOCKS_REPLY_SUCCEEDED = 0x00;
/** Longest DOMAINNAME, username or password: a one-byte length prefix (RFC 1928 §5, RFC 1929 §2). */
const SOCKS_MAX_FIELD_BYTES = 255;
/**
 * How many bytes of the proxy's answers are kept to find the reply code: method selection (2)
 * + username/password status (2) + reply header (2) is all that is read.
 */
const SOCKS_RECORD_LIMIT_BYTES = 64;

/**
 * Meanings of SOCKS5 reply codes. 0x01-0x08: RFC 1928 §6. 0xF0-0xF7: Tor's onion service
 * extended errors, sent only on a `SocksPort` with the `ExtendedErrors` flag (tor proposal 304,
 * tor(1) `SocksPort`, Tor socks-extensions spec). The 0x06 note is from the tests of this
 * project's private Tor network: Tor answers 0x06 when `SocksTimeout` expires, for example when
 * an onion service went away without its tor dying.
 */
export const SOCKS5_REPLY_MEANINGS: ReadonlyMap<number, string> = new Map([
  [0x01, 'general SOCKS server failure'],
  [0x02, 'connection not allowed by ruleset'],
  [0x03, 'network unreachable'],
  [0x04, 'host unreachable'],
  [0x05, 'connection refused'],
  [0x06, "TTL expired (tor: the stream timed out, e.g. after the client's SocksTimeout)"],
  [0x07, 'command not supported'],
  [0x08, 'address type not supported'],
  [
    0xf0,
    'onion service descriptor can not be found (not on the hashring: the service is not running or has not published yet)',
  ],
  [0xf1, 'onion service descriptor is invalid (cannot be parsed or its signature is bad)'],
  [
    0xf2,
    'onion service introduction failed (the introduction points NACKed or timed out: the service is likely not running)',
  ],
  [0xf3, 'onion service rendezvous failed (every rendezvous circuit timed out)'],
  [0xf4, 'onion service missing client authorization'],
  [0xf5, 'onion service wrong client authorization'],
  [0xf6, 'onion service invalid address (bad checksum, key or encoding of the .onion name)'],
  [0xf7, 'onion service introduction timed out (every introduction attempt timed out)'],
]);

/**
 * `0xF2 (onion service introduction failed ...)`: a reply code in hex and its meaning from
 * {@link SOCKS5_REPLY_MEANINGS} (`unassigned reply code` for others).
 */
export function describeSocksReply(reply: number): string {
  const hex = `0x${reply.toString(16).toUpperCase().padStart(2, '0')}`;
  return `${hex} (${SOCKS5_REPLY_MEANINGS.get(reply) ?? 'unassigned reply code'})`;
}

/** The torrc line that makes tor listen on `proxy` as a SocksPort (tor(1) `SocksPort`). */
function torrcSocksPortLine(proxy: Endpoint): string {
  if (proxy.kind === 'unix') return `SocksPort unix:${proxy.path}`;
  const isDefaultHost = proxy.host === '127.0.0.1' || proxy.host === 'localhost';
  return isDefaultHost ? `SocksPort ${proxy.port}` : `SocksPort ${formatEndpoint(proxy)}`;
}

/** What the proxy's recorded answers say about how far the negotiation got. */
type ProxyAnswer =
  | { step: 'none' }
  | { step: 'not-socks5'; firstByte: number }
  | { step: 'no-acceptable-method' }
  | { step: 'userpass-rejected'; status: number }
  | { step: 'awaiting-reply' }
  | { step: 'reply'; reply: number };

/** Reads the proxy's first bytes (method selection, userpass status, reply header). */
function parseProxyAnswer(bytes: Buffer): ProxyAnswer {
  const version = bytes[0];
  const method = bytes[1];
  if (version === undefined) return { step: 'none' };
  if (version !== SOCKS_VERSION_5) return { step: 'not-socks5', firstByte: version };
  if (method === undefined) return { step: 'none' };
  if (method === SOCKS_METHOD_NONE_ACCEPTABLE) return { step: 'no-acceptable-method' };
  let offset = 2;
  if (method === SOCKS_METHOD_USERPASS) {
    const status = bytes[3];
    if (status === undefined) return { step: 'awaiting-reply' };
    if (status !== SOCKS_USERPASS_STATUS_SUCCESS) return { step: 'userpass-rejected', status };
    offset = 4;
  }
  const replyVersion = bytes[offset];
  const reply = bytes[offset + 1];
  if (replyVersion === undefined || reply === undefined) return { step: 'awaiting-reply' };
  if (replyVersion !== SOCKS_VERSION_5) return { step: 'not-socks5', firstByte: replyVersion };
  return { step: 'reply', reply };
}

/** Throws a {@link SocksError} when an option is out of range (checked before any I/O). */
function validateOptions(options: SocksDialOptions, target: string, via: string): void {
  const problems: string[] = [];
  if (!/^[\x21-\x7e]{1,255}$/.test(options.host)) {
    problems.push(`host must be 1-${SOCKS_MAX_FIELD_BYTES} printable ASCII characters`);
  }
  if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
    problems.push('port must be an integer in 1-65535');
  }
  if (!Number.isFinite(options.timeoutMs) || options.timeoutMs <= 0) {
    problems.push('timeoutMs must be a positive number of milliseconds');
  }
  if (options.proxy.kind === 'tcp') {
    const { port } = options.proxy;
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      problems.push('proxy port must be an integer in 1-65535');
    }
  } else if (options.proxy.path.length === 0) {
    problems.push('proxy unix socket path is empty');
  }
  if (options.isolation !== undefined) {
    for (const field of ['username', 'password'] as const) {
      const bytes = Buffer.byteLength(options.isolation[field]);
      if (bytes < 1 || bytes > SOCKS_MAX_FIELD_BYTES) {
        problems.push(`isolation ${field} must be 1-${SOCKS_MAX_FIELD_BYTES} bytes (RFC 1929)`);
      }
    }
  }
  if (problems.length > 0) {
    throw new SocksError(`invalid SOCKS5 dial to ${target} via ${via}: ${problems.join('; ')}`, {
      code: 'ERR_SOCKS_INVALID_REQUEST',
    });
  }
}

/**
 * Opens a stream to `host:port` through Tor's SOCKS5 proxy and resolves with the connected socket,
 * ready for application bytes (paused data already read is re-emitted by the `socks` package).
 *
 * The caller owns the returned socket: attach an `'error'` listener at once and destroy it when
 * done. Nothing is left open when the promise rejects.
 *
 * @throws {SocksError} on every failure, `code` one of {@link SocksErrorCode} (by the proxy's
 *   reply code when it answered CONNECT; `ERR_SOCKS_TIMEOUT`, `ERR_ABORTED`,
 *   `ERR_SOCKS_PROXY_UNREACHABLE`, ... otherwise); its message names the target
 *   `host:port` and the proxy:
 *   - the proxy is unreachable (ECONNREFUSED, ENOENT, ...): the message names the proxy address
 *     and the torrc line that would open it (`SocksPort 9050`, `SocksPort unix:/path`);
 *   - the proxy refused CONNECT: `reply` is the SOCKS5 reply code and the message shows it in hex
 *     with its meaning (see {@link SOCKS5_REPLY_MEANINGS}; 0xF0-0xF7 need `ExtendedErrors`);
 *   - the proxy is not SOCKS5, accepted no offered method or rejected the username/password;
 *   - the proxy closed the connection during the negotiation;
 *   - `timeoutMs` elapsed (the message says `timed out after N ms (timeoutMs)` and in which step);
 *   - `signal` aborted (the error's `cause` is `signal.reason`);
 *   - an option is out of range (before any I/O).
 */
export async function socksDial(options: SocksDialOptions): Promise<net.Socket> {
  const { proxy, host, port, timeoutMs, isolation, signal } = options;
  const target = `${host}:${port}`;
  const via = `Tor SOCKS proxy ${formatEndpoint(proxy)}`;
  validateOptions(options, target, via);
  const startedAt = Date.now();
  const socket = await connectWithTimeout(proxy, {
    timeoutMs,
    signal,
    toError: (failure) => {
      switch (failure.kind) {
        case 'aborted':
          return new SocksError(
            `SOCKS5 dial to ${target} via ${via} aborted while connecting to the proxy`,
            { cause: failure.reason, code: 'ERR_ABORTED' },
          );
        case 'timeout':
          return new SocksError(
            `SOCKS5 dial to ${target} via ${via} timed out after ${timeoutMs} ms (timeoutMs) ` +
              'while connecting to the proxy',
            { code: 'ERR_SOCKS_TIMEOUT' },
          );
        case 'error':
          return new SocksError(
            `cannot reach ${via} (${describeConnectFailure(failure)}) to dial ${target}: is tor ` +
              `running, with "${torrcSocksPortLine(proxy)}" in its torrc?`,
            { cause: failure.error, code: 'ERR_SOCKS_PROXY_UNREACHABLE' },
          );
      }
    },
  });
  if (proxy.kind === 'tcp') socket.setNoDelay(true);
  const remainingMs = Math.max(1, timeoutMs - (Date.now() - startedAt));
  return negotiate(socket, {
    proxy,
    host,
    port,
    isolation,
    signal,
    target,
    via,
    timeoutMs,
    remainingMs,
  });
}

/** Runs the SOCKS5 negotiation on a socket connected to the proxy (see {@link socksDial}). */
function negotiate(
  socket: net.Socket,
  context: {
    proxy: Endpoint;
    host: string;
    port: number;
    isolation: SocksDialOptions['isolation'];
    signal: AbortSignal | undefined;
    target: string;
    via: string;
    timeoutMs: number;
    remainingMs: number;
  },
): Promise<net.Socket> {
  const { proxy, host, port, isolation, signal, target, via, timeoutMs, remainingMs } = context;
  return new Promise<net.Socket>((resolve, reject) => {
    let isSettled = false;
    let proxyClosed = false;
    const recorded: Buffer[] = [];
    let recordedBytes = 0;

    const recordAnswer = (chunk: Buffer): void => {
      if (recordedBytes >= SOCKS_RECORD_LIMIT_BYTES) return;
      recorded.push(chunk);
      recordedBytes += chunk.length;
    };
    const answer = (): ProxyAnswer => parseProxyAnswer(Buffer.concat(recorded));
    const onProxyClose = (): void => {
      proxyClosed = true;
    };

    const cleanup = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.removeListener('data', recordAnswer);
      socket.removeListener('close', onProxyClose);
      socket.removeListener('error', onLateError);
    };
    const fail = (err: SocksError): void => {
      if (isSettled) return;
      isSettled = true;
      cleanup();
      socket.destroy();
      reject(err);
    };

    const currentStep = (): string =>
      answer().step === 'awaiting-reply'
        ? "waiting for the proxy's reply to CONNECT"
        : 'in the SOCKS5 negotiation';
    const timer = setTimeout(() => {
      fail(
        new SocksError(
          `SOCKS5 dial to ${target} via ${via} timed out after ${timeoutMs} ms (timeoutMs) ` +
            `while ${currentStep()}`,
          { code: 'ERR_SOCKS_TIMEOUT' },
        ),
      );
    }, remainingMs);

    const onAbort = (): void => {
      fail(
        new SocksError(`SOCKS5 dial to ${target} via ${via} aborted while ${currentStep()}`, {
          cause: signal?.reason,
          code: 'ERR_ABORTED',
        }),
      );
    };
    if (signal?.aborted === true) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    // Registered before the `socks` client's own listeners, so it runs first.
    socket.once('close', onProxyClose);
    socket.on('data', recordAnswer);
    // The `socks` client drops its 'error' listener as soon as it reads a success reply, but a
    // write that failed earlier in the same read (the proxy sent its answers and closed, so the
    // CONNECT request hit EPIPE) reports its error on the next tick, before the caller can
    // listen: without this listener that error is uncaught and ends the process.
    const onLateError = (err: Error): void => {
      fail(translateNegotiationError(err, answer(), { target, via, proxyClosed }));
    };
    socket.on('error', onLateError);
    SocksClient.createConnection({
      // With `existing_socket` the library never connects to proxy.host/port itself, but it
      // validates them: a unix proxy gets a placeholder.
      proxy: {
        host: proxy.kind === 'tcp' ? proxy.host : '127.0.0.1',
        port: proxy.kind === 'tcp' ? proxy.port : 9050,
        type: 5,
        ...(isolation !== undefined
          ? { userId: isolation.username, password: isolation.password }
          : {}),
      },
      command: 'connect',
      destination: { host, port },
      // Our own timer enforces timeoutMs; the library's fires only if ours somehow did not.
      timeout: remainingMs + 1000,
      existing_socket: socket,
    }).then(
      (info) => {
        if (isSettled) {
          info.socket.destroy();
          return;
        }
        isSettled = true;
        cleanup();
        resolve(socket);
      },
      (err: unknown) => {
        fail(translateNegotiationError(err, answer(), { target, via, proxyClosed }));
      },
    );
  });
}

/**
 * Maps a failed negotiation to a {@link SocksError}: from the proxy's recorded answer and whether
 * it hung up, never from the `socks` package's message text.
 */
function translateNegotiationError(
  err: unknown,
  seen: ProxyAnswer,
  context: { target: string; via: string; proxyClosed: boolean },
): SocksError {
  const { target, via, proxyClosed } = context;
  const prefix = `SOCKS5 dial to ${target} via ${via} failed`;
  switch (seen.step) {
    case 'reply':
      if (seen.reply !== SOCKS_REPLY_SUCCEEDED) {
        return new SocksError(`${prefix}: proxy replied ${describeSocksReply(seen.reply)}`, {
          cause: err,
          reply: seen.reply,
        });
      }
      break;
    case 'not-socks5':
      return new SocksError(
        `${prefix}: the proxy does not speak SOCKS5 (it answered with byte ` +
          `0x${seen.firstByte.toString(16).padStart(2, '0')}): is this tor's SocksPort?`,
        { cause: err, code: 'ERR_SOCKS_NOT_SOCKS5' },
      );
    case 'no-acceptable-method':
      return new SocksError(
        `${prefix}: the proxy accepted none of the offered authentication methods`,
        { cause: err, code: 'ERR_SOCKS_AUTH_REJECTED' },
      );
    case 'userpass-rejected':
      return new SocksError(
        `${prefix}: the proxy rejected the isolation username/password (status ` +
          `0x${seen.status.toString(16).padStart(2, '0')})`,
        { cause: err, code: 'ERR_SOCKS_AUTH_REJECTED' },
      );
    case 'none':
    case 'awaiting-reply':
      break;
  }
  if (proxyClosed) {
    return new SocksError(`${prefix}: the proxy closed the connection during the negotiation`, {
      cause: err,
      code: 'ERR_SOCKS_PROXY_CLOSED',
    });
  }
  const detail = err instanceof Error ? err.message : String(err);
  return new SocksError(`${prefix}: ${detail}`, { cause: err, code: 'ERR_SOCKS_PROTOCOL' });
}
