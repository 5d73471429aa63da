/**
 * Tor control-port session: owns one connection to tor's control port (TCP or unix socket),
 * authenticates it, sends commands and matches replies to them, and routes asynchronous events.
 *
 * The control protocol is strictly in order (control-spec §1: "Servers respond to messages in the
 * order messages are received"), so replies are matched to commands first in, first out; `6xx`
 * replies are events and go to {@link TorControlClient.onEvent} listeners instead. One `data`
 * listener serves the whole connection; framing is done by {@link ControlReplyParser}.
 *
 * Secrets (the auth cookie, a password, HMACs, onion keys in ADD_ONION) are never logged: only the
 * first word of each command is, at debug level.
 */
import { randomBytes as nodeRandomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { TorControlError } from '../errors.js';
import { connectWithTimeout, describeConnectFailure } from '../net/connect.js';
import { silentLogger, type Logger } from '../log.js';
import {
  ControlReplyParser,
  parseKeyValues,
  quoteString,
  type ControlReply,
  type ControlReplyLine,
} from './control-reply.js';
import { formatEndpoint, type Endpoint } from './endpoint.js';

export type { Endpoint } from './endpoint.js';

/** Default deadline for opening the control connection. Our choice. */
export const CONTROL_CONNECT_TIMEOUT_MS = 10_000;
/** Default deadline for tor's answer to one command; after it the connection is closed. Our choice. */
export const CONTROL_COMMAND_TIMEOUT_MS = 30_000;
/** How long {@link TorControlClient.close} waits for tor to answer QUIT and close. Our choice. */
export const CONTROL_QUIT_TIMEOUT_MS = 2_000;
/** Length of tor's authentication cookie file (control-spec §3.5 AUTHENTICATE, COOKIE). */
export const AUTH_COOKIE_BYTES = 32;
/** Length of the SAFECOOKIE client nonce we send (control-spec §3.24 AUTHCHALLENGE: 32 bytes). */
export const SAFECOOKIE_NONCE_BYTES = 32;
/** HMAC key tor uses to prove it knows the cookie (control-spec §3.24 AUTHCHALLENGE). */
export const SAFECOOKIE_SERVER_KEY = 'Tor safe cookie authentication server-to-controller hash';
/** HMAC key we use to prove we know the cookie (control-spec §3.24 AUTHCHALLENGE). */
export const SAFECOOKIE_CLIENT_KEY = 'Tor safe cookie authentication controller-to-server hash';

/** Authentication methods this client speaks, best first (control-spec §3.5, §3.21, §3.24). */
export type AuthMethod = 'SAFECOOKIE' | 'COOKIE' | 'HASHEDPASSWORD' | 'NULL';

/** The answer to `PROTOCOLINFO 1` (control-spec §3.21). */
export interface ProtocolInfo {
  /** Methods tor accepts, e.g. `['COOKIE', 'SAFECOOKIE']`. */
  authMethods: string[];
  /** Path of the cookie file, when a cookie method is offered. */
  cookieFile?: string;
  /** Tor's version string, e.g. `0.4.9.11`. */
  torVersion?: string;
}

/** Options of {@link TorControlClient.connect}. */
export interface ConnectOptions {
  /** Deadline for the connection to open, ms; default {@link CONTROL_CONNECT_TIMEOUT_MS}. */
  timeoutMs?: number;
  /** Default per-command deadline, ms; default {@link CONTROL_COMMAND_TIMEOUT_MS}. */
  commandTimeoutMs?: number;
  /** Parent logger; a child `{ component: 'tor-control' }` is made from it. Default: silent. */
  logger?: Logger;
  /** Aborts the connection attempt (not the connection once open: use `close()` for that). */
  signal?: AbortSignal;
}

/** Options of {@link TorControlClient.authenticate}. */
export interface AuthenticateOptions {
  /** Password for HASHEDPASSWORD (torrc `HashedControlPassword`); used only when tor offers it. */
  password?: string;
  /** Cookie file to read instead of the COOKIEFILE tor names (tor in a container, tests). */
  cookieFile?: string;
  /** Random source for the SAFECOOKIE nonce; default `crypto.randomBytes`. Tests inject a fixed one. */
  randomBytes?: (length: number) => Uint8Array;
}

/** Listener of one event type: the first line of the `650` reply, and the whole reply. */
export type TorEventListener = (line: ControlReplyLine, reply: ControlReply) => void;

interface PendingCommand {
  keyword: string;
  resolve: (reply: ControlReply) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** First word of a command, the only part of it that may be logged or put in a message. */
function keywordOf(line: string): string {
  return line.split(' ', 1)[0] ?? '';
}

/** True for a 2xx status (control-spec §4: 2yz positive completion). */
function isPositive(status: number): boolean {
  return status >= 200 && status <= 299;
}

/** `status text` of a reply, every line's text joined by ` / ` (for error messages). */
function describeReply(reply: ControlReply): string {
  return `${reply.status} ${reply.lines.map((l) => l.text).join(' / ')}`;
}

function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string')
    return err.code;
  return undefined;
}

/** Message for an unreachable control port: what failed and what to put in torrc. */
function unreachableMessage(endpoint: Endpoint, reason: string): string {
  const where = formatEndpoint(endpoint);
  if (endpoint.kind === 'unix') {
    const access = /EACCES|EPERM/.test(reason)
      ? ' The user running onionmc may not open it: add that user to the group tor runs as (debian-tor on Debian and Ubuntu)' +
        ' and make tor create the socket group-writable with "ControlSocketsGroupWritable 1" in torrc.'
      : '';
    return (
      `cannot reach tor's control socket at ${where} (${reason}).${access}` +
      ` Is tor running, and does its torrc contain "ControlSocket ${endpoint.path}" and "CookieAuthentication 1"?` +
      ' Restart tor after changing torrc.'
    );
  }
  return (
    `cannot reach tor's control port at ${where} (${reason}).` +
    ` Is tor running, and does its torrc contain "ControlPort ${endpoint.port}" and "CookieAuthentication 1"` +
    ' (or "ControlSocket /run/tor/control" with "CookieAuthentication 1", and tor_control_host = unix:/run/tor/control)?' +
    ' Restart tor after changing torrc.'
  );
}

/** Message for a cookie file we cannot read. Never contains cookie bytes. */
function cookieUnreadableMessage(path: string, code: string | undefined): string {
  const why = code ?? 'unreadable';
  const missing =
    code === 'ENOENT'
      ? ' The file does not exist here: check "CookieAuthentication 1" in torrc, and if tor runs in a container,' +
        " run onionmc where the path tor reports is readable (e.g. share tor's data folder at the same path)."
      : '';
  return (
    `cannot read tor's authentication cookie file ${path} (${why}).${missing}` +
    " The user running onionmc must be able to read it: add that user to tor's group" +
    ' (debian-tor on Debian and Ubuntu), or set "CookieAuthFileGroupReadable 1" in torrc and restart tor.'
  );
}

/**
 * A connection to tor's control port.
 *
 * Lifecycle: {@link connect} -> {@link authenticate} -> commands -> {@link close} (polite) or
 * {@link destroy} (abrupt). {@link closed} settles when the connection is gone, for whatever
 * reason, so the owner can reconnect.
 */
export class TorControlClient {
  /** Where this client is connected. */
  readonly endpoint: Endpoint;
  /**
   * Resolves (never rejects) once the connection is closed: with `undefined` after
   * {@link close} or a bare {@link destroy}, otherwise with the error that ended it
   * (tor went away: `ERR_TOR_CONTROL`; a lost reply: `ERR_TOR_TIMEOUT`; ...).
   */
  readonly closed: Promise<Error | undefined>;

  readonly #socket: net.Socket;
  readonly #parser = new ControlReplyParser();
  readonly #log: Logger;
  readonly #commandTimeoutMs: number;
  readonly #listeners = new Map<string, Set<TorEventListener>>();
  #pending: PendingCommand[] = [];
  #events: readonly string[] = [];
  #destroyed = false;
  #graceful = false;
  #closeReason: Error | undefined;
  #closing: Promise<void> | undefined;
  #protocolInfo: ProtocolInfo | undefined;
  #authMethod: AuthMethod | undefined;

  private constructor(socket: net.Socket, endpoint: Endpoint, options: ConnectOptions) {
    this.#socket = socket;
    this.endpoint = endpoint;
    this.#commandTimeoutMs = options.commandTimeoutMs ?? CONTROL_COMMAND_TIMEOUT_MS;
    this.#log = (options.logger ?? silentLogger()).child({
      component: 'tor-control',
      endpoint: formatEndpoint(endpoint),
    });
    let resolveClosed: (reason: Error | undefined) => void = () => undefined;
    this.closed = new Promise((resolve) => {
      resolveClosed = resolve;
    });
    socket.on('data', (chunk: Buffer) => {
      this.#onData(chunk);
    });
    socket.on('error', (err) => {
      this.destroy(
        new TorControlError('ERR_TOR_CONTROL', `control connection error: ${err.message}`, {
          cause: err,
        }),
      );
    });
    socket.on('close', () => {
      if (!this.#destroyed) {
        this.destroy(
          this.#graceful
            ? undefined
            : new TorControlError(
                'ERR_TOR_CONTROL',
                `tor closed the control connection at ${formatEndpoint(endpoint)}`,
              ),
        );
      }
      this.#log.debug({ err: this.#closeReason }, 'control connection closed');
      resolveClosed(this.#closeReason);
    });
  }

  /**
   * Opens a control connection (not yet authenticated).
   * @throws TorControlError `ERR_TOR_CONTROL_UNREACHABLE` naming the address and the torrc lines
   *   to add when nothing answers there (refused, missing socket, no permission, timeout);
   *   `ERR_ABORTED` (cause: the signal's reason) when `options.signal` aborts it.
   */
  static connect(endpoint: Endpoint, options: ConnectOptions = {}): Promise<TorControlClient> {
    const where = formatEndpoint(endpoint);
    const timeoutMs = options.timeoutMs ?? CONTROL_CONNECT_TIMEOUT_MS;
    const { signal } = options;
    return connectWithTimeout(endpoint, {
      timeoutMs,
      signal,
      toError: (failure) =>
        failure.kind === 'aborted'
          ? new TorControlError('ERR_ABORTED', `connecting to tor at ${where} was aborted`, {
              cause: failure.reason,
            })
          : new TorControlError(
              'ERR_TOR_CONTROL_UNREACHABLE',
              unreachableMessage(endpoint, describeConnectFailure(failure)),
              failure.kind === 'error' ? { cause: failure.error } : {},
            ),
    }).then((socket) => {
      if (endpoint.kind === 'tcp') socket.setNoDelay(true);
      return new TorControlClient(socket, endpoint, options);
    });
  }

  /** The method {@link authenticate} used, once it succeeded. */
  get authMethod(): AuthMethod | undefined {
    return this.#authMethod;
  }

  /** Event names currently requested with SETEVENTS on this connection. */
  get events(): readonly string[] {
    return this.#events;
  }

  /** True once the connection is closed or closing. */
  get isClosed(): boolean {
    return this.#destroyed || this.#graceful;
  }

  /**
   * Sends `PROTOCOLINFO 1` (once; later calls return the first answer) and parses the answer
   * (control-spec §3.21).
   * @throws TorControlError `ERR_TOR_AUTH` when tor refuses it; `ERR_TOR_CONTROL` when the
   *   answer has no AUTH line.
   */
  async protocolInfo(): Promise<ProtocolInfo> {
    if (this.#protocolInfo !== undefined) return this.#protocolInfo;
    const reply = await this.#exchange('PROTOCOLINFO 1');
    if (!isPositive(reply.status)) {
      throw new TorControlError(
        'ERR_TOR_AUTH',
        `tor refused PROTOCOLINFO: ${describeReply(reply)}`,
        { status: reply.status },
      );
    }
    const info: ProtocolInfo = { authMethods: [] };
    let sawAuth = false;
    for (const line of reply.lines) {
      if (line.text.startsWith('AUTH ')) {
        sawAuth = true;
        const kv = parseKeyValues(line.text);
        info.authMethods = (kv.get('METHODS') ?? '').split(',').filter((m) => m.length > 0);
        const cookieFile = kv.get('COOKIEFILE');
        if (cookieFile !== undefined) info.cookieFile = cookieFile;
      } else if (line.text.startsWith('VERSION ')) {
        const version = parseKeyValues(line.text).get('Tor');
        if (version !== undefined) info.torVersion = version;
      }
    }
    if (!sawAuth)
      throw new TorControlError('ERR_TOR_CONTROL', 'PROTOCOLINFO answer has no AUTH line');
    this.#protocolInfo = info;
    return info;
  }

  /**
   * Authenticates the connection: `PROTOCOLINFO 1`, then the best method tor offers, in this
   * order: SAFECOOKIE (AUTHCHALLENGE with a random 32-byte nonce; tor's SERVERHASH is checked
   * with HMAC-SHA256 in constant time before we answer), COOKIE, HASHEDPASSWORD (only when
   * `options.password` is given), NULL (control-spec §3.5, §3.21, §3.24). When the cookie file
   * cannot be read, HASHEDPASSWORD or NULL are tried if offered, else the cookie error is thrown.
   *
   * After any failure the connection is destroyed (tor closes it too); reconnect to retry.
   * @throws TorControlError `ERR_TOR_AUTH`: no usable method, cookie file unreadable (the message
   *   names the file and the group to join), tor's SERVERHASH wrong (the cookie belongs to another
   *   tor), or tor refused us (`status` and tor's text).
   */
  async authenticate(options: AuthenticateOptions = {}): Promise<void> {
    try {
      await this.#authenticate(options);
    } catch (err) {
      this.destroy(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
  }

  async #authenticate(options: AuthenticateOptions): Promise<void> {
    const info = await this.protocolInfo();
    const offered = new Set(info.authMethods);
    const candidates: AuthMethod[] = [];
    if (offered.has('SAFECOOKIE')) candidates.push('SAFECOOKIE');
    if (offered.has('COOKIE')) candidates.push('COOKIE');
    if (offered.has('HASHEDPASSWORD') && options.password !== undefined)
      candidates.push('HASHEDPASSWORD');
    if (offered.has('NULL')) candidates.push('NULL');
    if (candidates.length === 0) {
      const hint = offered.has('HASHEDPASSWORD')
        ? ' Tor wants a password: configure tor_control_password.'
        : '';
      throw new TorControlError(
        'ERR_TOR_AUTH',
        `no usable authentication method: tor offers ${info.authMethods.join(',') || 'none'}.${hint}` +
          ' Enable "CookieAuthentication 1" in torrc for cookie authentication.',
      );
    }

    let cookieError: TorControlError | undefined;
    for (const method of candidates) {
      if (method === 'SAFECOOKIE' || method === 'COOKIE') {
        if (cookieError !== undefined) continue;
        let cookie: Uint8Array;
        try {
          cookie = await this.#readCookie(options.cookieFile ?? info.cookieFile);
        } catch (err) {
          if (!(err instanceof TorControlError)) throw err;
          cookieError = err;
          continue;
        }
        try {
          if (method === 'SAFECOOKIE')
            await this.#safeCookie(cookie, options.randomBytes ?? nodeRandomBytes);
          else await this.#sendAuthenticate('COOKIE', bytesToHex(cookie).toUpperCase());
        } finally {
          cookie.fill(0);
        }
      } else if (method === 'HASHEDPASSWORD') {
        await this.#sendAuthenticate('HASHEDPASSWORD', quoteString(options.password ?? ''));
      } else {
        await this.#sendAuthenticate('NULL', undefined);
      }
      this.#authMethod = method;
      this.#log.debug({ method }, 'authenticated to tor');
      return;
    }
    throw cookieError ?? new TorControlError('ERR_TOR_AUTH', 'no usable authentication method');
  }

  async #readCookie(path: string | undefined): Promise<Uint8Array> {
    if (path === undefined) {
      throw new TorControlError(
        'ERR_TOR_AUTH',
        'tor offers cookie authentication but names no COOKIEFILE in PROTOCOLINFO',
      );
    }
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (err) {
      throw new TorControlError('ERR_TOR_AUTH', cookieUnreadableMessage(path, errnoCode(err)), {
        cause: err,
      });
    }
    if (bytes.length !== AUTH_COOKIE_BYTES) {
      const length = bytes.length;
      bytes.fill(0);
      throw new TorControlError(
        'ERR_TOR_AUTH',
        `tor's authentication cookie file ${path} has ${length} bytes, not ${AUTH_COOKIE_BYTES}: it is not a tor cookie file`,
      );
    }
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  }

  /** SAFECOOKIE (control-spec §3.24): prove both sides know the cookie without sending it. */
  async #safeCookie(cookie: Uint8Array, random: (length: number) => Uint8Array): Promise<void> {
    const clientNonce = random(SAFECOOKIE_NONCE_BYTES);
    if (clientNonce.length !== SAFECOOKIE_NONCE_BYTES) {
      throw new TorControlError(
        'ERR_TOR_AUTH',
        `the random source gave ${clientNonce.length} bytes, not ${SAFECOOKIE_NONCE_BYTES}`,
      );
    }
    const reply = await this.#exchange(
      `AUTHCHALLENGE SAFECOOKIE ${bytesToHex(clientNonce).toUpperCase()}`,
    );
    if (!isPositive(reply.status)) {
      throw new TorControlError(
        'ERR_TOR_AUTH',
        `tor refused AUTHCHALLENGE: ${describeReply(reply)}`,
        { status: reply.status },
      );
    }
    const kv = parseKeyValues(reply.lines[reply.lines.length - 1]?.text ?? '');
    const serverHashHex = kv.get('SERVERHASH') ?? '';
    const serverNonceHex = kv.get('SERVERNONCE') ?? '';
    if (!/^[0-9A-Fa-f]{64}$/.test(serverHashHex) || !/^[0-9A-Fa-f]{64}$/.test(serverNonceHex)) {
      throw new TorControlError(
        'ERR_TOR_AUTH',
        'malformed AUTHCHALLENGE answer: SERVERHASH and SERVERNONCE must be 64 hex digits each',
      );
    }
    const message = new Uint8Array(cookie.length + clientNonce.length + 32);
    message.set(cookie, 0);
    message.set(clientNonce, cookie.length);
    message.set(hexToBytes(serverNonceHex), cookie.length + clientNonce.length);
    const expected = hmac(sha256, utf8ToBytes(SAFECOOKIE_SERVER_KEY), message);
    const serverHash = hexToBytes(serverHashHex);
    const matches = timingSafeEqual(expected, serverHash);
    expected.fill(0);
    if (!matches) {
      message.fill(0);
      throw new TorControlError(
        'ERR_TOR_AUTH',
        `tor's SERVERHASH does not match the authentication cookie: the cookie file belongs to another tor than the one at ${formatEndpoint(this.endpoint)}, or is stale`,
      );
    }
    const clientHash = hmac(sha256, utf8ToBytes(SAFECOOKIE_CLIENT_KEY), message);
    message.fill(0);
    const hex = bytesToHex(clientHash).toUpperCase();
    clientHash.fill(0);
    await this.#sendAuthenticate('SAFECOOKIE', hex);
  }

  async #sendAuthenticate(method: AuthMethod, argument: string | undefined): Promise<void> {
    const reply = await this.#exchange(
      argument === undefined ? 'AUTHENTICATE' : `AUTHENTICATE ${argument}`,
    );
    if (!isPositive(reply.status)) {
      throw new TorControlError(
        'ERR_TOR_AUTH',
        `tor refused authentication (${method}): ${describeReply(reply)}`,
        {
          status: reply.status,
        },
      );
    }
  }

  /**
   * Sends one command line (without CRLF) and resolves with tor's reply. Commands may be
   * pipelined; replies are matched first in, first out.
   * @param options.timeoutMs deadline for the reply, ms (default: the client's, 30 s); when it
   *   passes the command rejects with `ERR_TOR_TIMEOUT` and the connection is closed, since
   *   every later reply would be matched to the wrong command.
   * @throws TorControlError `ERR_TOR_COMMAND` for a non-2xx reply (`status` and tor's text), or
   *   before sending for a line containing CR, LF or NUL (injection); `ERR_TOR_TIMEOUT`;
   *   `ERR_TOR_CONTROL` when the connection is or gets closed.
   */
  async command(line: string, options: { timeoutMs?: number } = {}): Promise<ControlReply> {
    const reply = await this.#exchange(line, options.timeoutMs);
    if (!isPositive(reply.status)) {
      throw new TorControlError(
        'ERR_TOR_COMMAND',
        `tor rejected ${keywordOf(line)}: ${describeReply(reply)}`,
        {
          status: reply.status,
        },
      );
    }
    return reply;
  }

  /** Sends `line` and resolves with the raw reply, whatever its status. */
  #exchange(line: string, timeoutMs = this.#commandTimeoutMs): Promise<ControlReply> {
    const keyword = keywordOf(line);
    if (/[\r\n\0]/.test(line)) {
      return Promise.reject(
        new TorControlError(
          'ERR_TOR_COMMAND',
          `refusing to send ${JSON.stringify(keyword)}: a command must not contain CR, LF or NUL`,
        ),
      );
    }
    if (line.length === 0)
      return Promise.reject(
        new TorControlError('ERR_TOR_COMMAND', 'refusing to send an empty command'),
      );
    if (this.isClosed) {
      return Promise.reject(
        new TorControlError(
          'ERR_TOR_CONTROL',
          `cannot send ${keyword}: the control connection is closed`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const pending: PendingCommand = {
        keyword,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#onTimeout(pending, timeoutMs);
        }, timeoutMs),
      };
      this.#pending.push(pending);
      this.#log.debug({ command: keyword }, 'control command');
      this.#socket.write(`${line}\r\n`);
    });
  }

  #onTimeout(pending: PendingCommand, timeoutMs: number): void {
    const index = this.#pending.indexOf(pending);
    if (index === -1) return;
    this.#pending.splice(index, 1);
    const err = new TorControlError(
      'ERR_TOR_TIMEOUT',
      `tor did not answer ${pending.keyword} within ${timeoutMs} ms; closing the control connection`,
    );
    pending.reject(err);
    this.destroy(err);
  }

  #onData(chunk: Buffer): void {
    let replies: ControlReply[];
    try {
      replies = this.#parser.push(chunk);
    } catch (err) {
      this.destroy(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    for (const reply of replies) {
      if (this.#destroyed) return;
      if (reply.isAsync) {
        this.#dispatchEvent(reply);
        continue;
      }
      const pending = this.#pending.shift();
      if (pending === undefined) {
        this.destroy(
          new TorControlError(
            'ERR_TOR_CONTROL',
            `tor sent a reply (${reply.status}) to no command`,
          ),
        );
        return;
      }
      clearTimeout(pending.timer);
      pending.resolve(reply);
    }
  }

  #dispatchEvent(reply: ControlReply): void {
    const first = reply.lines[0];
    if (first === undefined) return;
    const name = keywordOf(first.text);
    const listeners = this.#listeners.get(name);
    if (listeners === undefined || listeners.size === 0) return;
    for (const listener of [...listeners]) {
      try {
        listener(first, reply);
      } catch (err) {
        this.#log.warn({ err, event: name }, 'tor event listener threw');
      }
    }
  }

  /**
   * Asks tor for exactly these events (`SETEVENTS`, control-spec §3.4; an empty list turns all
   * off). SETEVENTS replaces the whole set: to add one, pass `[...client.events, 'NAME']`.
   * @throws TorControlError `ERR_TOR_COMMAND` for a malformed name (before sending) or when tor
   *   rejects one (552 Unrecognized event).
   */
  async setEvents(names: readonly string[]): Promise<void> {
    const unique = [...new Set(names)];
    for (const name of unique) {
      if (!/^[A-Z][A-Z0-9_]*$/.test(name)) {
        throw new TorControlError('ERR_TOR_COMMAND', `not an event name: ${JSON.stringify(name)}`);
      }
    }
    await this.command(unique.length === 0 ? 'SETEVENTS' : `SETEVENTS ${unique.join(' ')}`);
    this.#events = unique;
  }

  /**
   * Calls `listener` for every `650` reply whose first word is `name` (e.g. `HS_DESC`). A
   * listener that throws is logged and does not affect others.
   * @returns a function that unsubscribes this listener.
   */
  onEvent(name: string, listener: TorEventListener): () => void {
    let set = this.#listeners.get(name);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(name, set);
    }
    const wrapped: TorEventListener = (line, reply) => {
      listener(line, reply);
    };
    set.add(wrapped);
    return () => {
      set.delete(wrapped);
      if (set.size === 0 && this.#listeners.get(name) === set) this.#listeners.delete(name);
    };
  }

  /**
   * `GETINFO key` (control-spec §3.9): the value, from either `250-key=value` or a data reply
   * `250+key=` (then its data block).
   * @throws TorControlError `ERR_TOR_COMMAND` when tor rejects the key; `ERR_TOR_CONTROL` when
   *   the answer does not carry it.
   */
  async getInfo(key: string): Promise<string> {
    if (!/^[A-Za-z0-9/_.:=-]+$/.test(key))
      throw new TorControlError('ERR_TOR_COMMAND', `not a GETINFO key: ${JSON.stringify(key)}`);
    const reply = await this.command(`GETINFO ${key}`);
    for (const line of reply.lines) {
      if (line.text.startsWith(`${key}=`)) return line.data ?? line.text.slice(key.length + 1);
    }
    throw new TorControlError(
      'ERR_TOR_CONTROL',
      `GETINFO ${key}: the answer does not carry ${key}`,
    );
  }

  /** Tor's version, e.g. `0.4.9.11` (`GETINFO version`). @throws as {@link getInfo}. */
  async getVersion(): Promise<string> {
    return this.getInfo('version');
  }

  /**
   * Closes politely: sends QUIT (waiting at most {@link CONTROL_QUIT_TIMEOUT_MS}), ends the
   * stream, waits for it to close, then destroys it. Idempotent; never throws. Tor removes the
   * onion services this connection added without `Detach` (control-spec §3.27).
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (this.#destroyed) return;
    const quit = this.#exchange('QUIT', CONTROL_QUIT_TIMEOUT_MS);
    this.#graceful = true; // from here on, new commands are refused and tor closing is expected
    try {
      await quit;
    } catch {
      // Tor may already be gone; destroy() below covers it.
    }
    if (!this.#socket.destroyed) {
      this.#socket.end();
      const timer = setTimeout(() => {
        this.destroy();
      }, CONTROL_QUIT_TIMEOUT_MS);
      await this.closed;
      clearTimeout(timer);
    }
    this.destroy();
    await this.closed;
  }

  /**
   * Closes at once: pending commands reject with `ERR_TOR_CONTROL` (cause: `err`), and
   * {@link closed} resolves with `err`. Idempotent.
   */
  destroy(err?: Error): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#closeReason ??= err;
    const pending = this.#pending;
    this.#pending = [];
    for (const command of pending) {
      clearTimeout(command.timer);
      command.reject(
        new TorControlError(
          'ERR_TOR_CONTROL',
          `the control connection closed before tor answered ${command.keyword}${err === undefined ? '' : `: ${err.message}`}`,
          { cause: err },
        ),
      );
    }
    if (err !== undefined && !this.#graceful) this.#log.warn({ err }, 'control connection closed');
    this.#socket.destroy();
  }
}
