/**
 * The local API: HTTP/1.1 on a unix socket (mode 0660 by default, optionally given a group; see
 * src/api/unix-socket.ts) or a loopback TCP port, for the
 * applications that use the daemon (wallets, bots) and for operators. JSON in, JSON out; live
 * events as Server-Sent Events. Every message accepted here is either handed to a directory node
 * or a peer link (a privmsg: and confirmed by it, docs/api.md "Delivery"), or the request fails
 * with a reason: nothing is dropped silently.
 *
 * | method | path           | body / answer                                                      |
 * |--------|----------------|--------------------------------------------------------------------|
 * | GET    | /              | the status page (HTML; /status.js, /status.css beside it)          |
 * | GET    | /health        | `{"status":"ok"}`                                                  |
 * | GET    | /metrics       | Prometheus text (src/daemon/metrics.ts)                            |
 * | GET    | /v1/info       | version, state, uptime, tor, nick, role, location, network, directories, peers, counters, memory |
 * | GET    | /v1/counters   | `{"counters":{…},"memory":{…}}`: /v1/info's cheap part, for polling |
 * | POST   | /v1/gc         | full garbage collection (node --expose-gc) -> `{"before":{…},"after":{…},"durationMs"}` |
 * | GET    | /v1/events     | SSE: privmsg, pubmsg, nickLeave, directory, peer, peerlist, dropped,
 *                           orderbookRequest, channel; on a directory node: relay |
 * | POST   | /v1/pubmsg     | `{"message":"!orderbook"}` -> `{"directories":n,"confirmed":b}`   |
 * | POST   | /v1/privmsg    | `{"to":nick,"cmd":"fill","body":"…","route":"any"|"directory"}` -> `{"via":{…},"confirmed":bool,"attempts":n}` once confirmed |
 * | PUT    | /v1/offers     | `{"offers":[{type,oid,minsize,maxsize,txfee,cjfee}]}` (maker)      |
 * | GET    | /v1/orderbook  | `{"offers":[…], "fidelityBonds":[{nick, proof}]}`                   |
 * | POST   | /v1/orderbook/answer | `{"to":nick,"fidelityBond":"…"}` -> `{"privmsgs":n}` (maker)  |
 * | GET    | /v1/reach      | `?nick=J5…` -> `{"nick","reachable"}`                               |
 *
 * Errors answer `{"error":{"code":"ERR_…","message":"…"}}` with 400 (bad request), 403 (on a TCP
 * port, a request only a web page would send: see `refuseCrossSite`), 404, 405,
 * 409 (`ERR_NOT_ROUTABLE`: no route now; `ERR_API`: the node is not running yet), 413 (body too
 * large), 500, for a privmsg or pubmsg 502 (`ERR_NOT_DELIVERED`), 503 (`ERR_BUSY`, `ERR_CLOSED`)
 * or 504 (`ERR_TIMEOUT`), 503 `ERR_BUSY` for a `/v1/events` past {@link API_MAX_EVENT_STREAMS}
 * or a body past {@link API_MAX_BODY_BYTES_IN_FLIGHT}, and 501
 * (`POST /v1/gc` without `--expose-gc`). A request Node's HTTP parser refuses gets the same JSON
 * error (`ERR_API`) with 400, 431 (head over 16 KiB) or 408 (not complete in time), and its
 * connection closed (see {@link ApiServer} `#clientError`).
 */
import fs from 'node:fs/promises';
import http from 'node:http';
import type stream from 'node:stream';
import { hasCode, HttpError, OnionmcError } from '../errors.js';
import { destroyUnlessClosedWithin } from '../net/cut-off.js';
import { fullGc, memoryFigures } from './memory.js';
import { STATUS_CSS, STATUS_HTML, STATUS_JS } from './status-page.js';
import { ApiListenError, claimSocketPath, resolveGroup, withUmask } from './unix-socket.js';
import type { Logger } from '../log.js';
import type { ClientNode, ClientNodeEvents } from '../node/client-node.js';
import type { DirectoryNode } from '../node/directory-node.js';
import { offerProblems, type Offer } from '../node/offers.js';

/** Largest request body we read, in bytes (a maximum-size line is 40,000 bytes, docs/protocol.md §1.3). */
export const API_MAX_BODY_BYTES = 1024 * 1024;

/**
 * Bytes of request bodies the API holds at once, all requests together. A request whose body
 * would pass it is answered 503 `ERR_BUSY` once its body has been read (what it sent is discarded,
 * not kept). Without it, {@link API_MAX_CONNECTIONS} slow bodies of {@link API_MAX_BODY_BYTES} could
 * pin 1 GiB for {@link API_REQUEST_TIMEOUT_MS}; real bodies are small (a privmsg is at most some
 * 40 kB, 100 offers some 15 kB), so 8 MiB is never reached by a well-behaved client.
 */
export const API_MAX_BODY_BYTES_IN_FLIGHT = 8 * 1024 * 1024;

/**
 * Bytes of unsent events a `/v1/events` client may leave waiting before its stream is cut: a
 * client that does not read costs at most this much (docs/limits.md).
 */
export const API_MAX_EVENT_BUFFER_BYTES = 1024 * 1024;

/**
 * Offers a `PUT /v1/offers` may set at most. Each is one pubmsg to every directory node at once
 * and one privmsg per `!orderbook` answer: 100 stay within a directory node's default message
 * burst (1,000) and, with up to 400 peers there, its pubmsg fan-out burst (docs/limits.md), where
 * thousands got the maker disconnected for flooding. JoinMarket makers announce a handful.
 */
export const API_MAX_OFFERS = 100;

/**
 * `/v1/events` streams open at once at most; another is answered 503 `ERR_BUSY`. With
 * {@link API_MAX_EVENT_BUFFER_BYTES} each, this bounds what stalled streams hold: 32 MiB
 * (docs/limits.md).
 */
export const API_MAX_EVENT_STREAMS = 32;

/**
 * Connections to the API open at once at most (each holds a file descriptor); one more is closed
 * as soon as it is accepted, nothing read (Node's `maxConnections`), and counted
 * `refused.api-connections-full` (docs/limits.md). A connection that sends no complete request
 * head within {@link API_HEADERS_TIMEOUT_MS} is answered 408 and closed.
 */
export const API_MAX_CONNECTIONS = 1024;

/**
 * Time a connection has to send a whole request head (request line and headers), ms (Node's
 * `headersTimeout`); past it the request is answered 408 `ERR_API` (docs/limits.md "Local API").
 */
export const API_HEADERS_TIMEOUT_MS = 60_000;

/**
 * Time a connection has to send a whole request, head and body, ms (Node's `requestTimeout`);
 * past it the request is answered 408 `ERR_API`.
 */
export const API_REQUEST_TIMEOUT_MS = 300_000;

/**
 * Time an ordinary answer (anything but a `/v1/events` stream) has to be taken by its client once
 * written, ms. An answer that still has more than {@link API_MAX_UNSENT_ANSWER_BYTES} not handed to
 * the kernel when it passes is cut (the connection destroyed), counted `evicted.slow-api-answer`;
 * one that has less gets a second such time, then is cut if still not all handed over. A client
 * on the host reads a 5 MB orderbook in milliseconds; 10 s is 500 KB/s even through a tunnel.
 */
export const API_WRITE_DEADLINE_MS = 10_000;

/**
 * Bytes of an ordinary answer not yet handed to the kernel that a client may still leave waiting
 * at {@link API_WRITE_DEADLINE_MS} (see there); the same as a `/v1/events` stream's cap.
 */
export const API_MAX_UNSENT_ANSWER_BYTES = 1024 * 1024;

/**
 * Time an idle keep-alive connection is kept after a complete exchange, ms (Node's
 * `keepAliveTimeout`, whose default this is): then it is closed.
 */
export const API_KEEP_ALIVE_TIMEOUT_MS = 5_000;

/** A connection refused past {@link API_MAX_CONNECTIONS} is logged at most this often, ms. */
const DROP_LOG_INTERVAL_MS = 10_000;

/**
 * How long {@link ApiServer.close} lets a client take what was written to it before cutting it
 * off, ms: within the daemon's stop bound (docs/operating.md "Stopping").
 */
export const API_CLOSE_DRAIN_MS = 1_000;

/**
 * Every route the API serves, `METHOD /path`. A request for one of these paths with another method
 * is answered 405 with an `Allow` header listing this table's methods for the path; any other path
 * 404. `#handle`'s switch has a case for each (checked by the compiler).
 */
const ROUTES = [
  'GET /',
  'GET /index.html',
  'GET /status.js',
  'GET /status.css',
  'GET /health',
  'GET /metrics',
  'GET /v1/info',
  'GET /v1/counters',
  'POST /v1/gc',
  'GET /v1/events',
  'GET /v1/orderbook',
  'POST /v1/orderbook/answer',
  'GET /v1/reach',
  'POST /v1/pubmsg',
  'POST /v1/privmsg',
  'PUT /v1/offers',
] as const;

/** One of {@link ROUTES}. */
type Route = (typeof ROUTES)[number];

const isRoute = (route: string): route is Route => (ROUTES as readonly string[]).includes(route);

/** The methods {@link ROUTES} serve `path` with, in the table's order (none: an unknown path). */
function methodsOf(path: string): string[] {
  return ROUTES.filter((route) => route.slice(route.indexOf(' ') + 1) === path).map((route) =>
    route.slice(0, route.indexOf(' ')),
  );
}

/** Where the API listens. */
export type ApiEndpoint =
  { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

/**
 * What the API serves from: a maker or taker (`client`) or a directory node (`directory`), read
 * at each request (the API listens before the node starts).
 */
export interface ApiBackend {
  info(): Record<string, unknown>;
  readonly client: ClientNode | undefined;
  readonly directory: DirectoryNode | undefined;
  /**
   * Subscribes to the node's events whichever node runs now or later; without it, a stream
   * subscribes to the `client` or `directory` present when it opens.
   */
  subscribe?(listener: (name: string, payload: unknown) => void): () => void;
  /** The Prometheus exposition of `/metrics`; without it `/metrics` answers 404. */
  metrics?(): Promise<{ contentType: string; body: string }>;
}

/** Options of an {@link ApiServer}. */
export interface ApiServerOptions {
  /** Permission bits of a unix socket; default 0660 (config `api_socket_mode`). */
  readonly socketMode?: number;
  /** Group name or gid given to a unix socket (config `api_socket_group`); default none. */
  readonly socketGroup?: string | undefined;
  /**
   * See {@link API_HEADERS_TIMEOUT_MS}; default that (tests set less). Node checks the deadlines
   * every half of this, at most every 30 s, so a late head is answered within 1.5 times it.
   */
  readonly headersTimeoutMs?: number;
  /** See {@link API_REQUEST_TIMEOUT_MS}; default that, and never less than `headersTimeoutMs`. */
  readonly requestTimeoutMs?: number;
  /** See {@link API_WRITE_DEADLINE_MS}; default that (tests set less). */
  readonly writeDeadlineMs?: number;
  /** See {@link API_KEEP_ALIVE_TIMEOUT_MS}; default that (tests set less). */
  readonly keepAliveTimeoutMs?: number;
}

/** Default permission bits of the API's unix socket: owner and group. */
export const API_SOCKET_MODE = 0o660;

/** The events of a maker or taker that `/v1/events` streams. */
export const CLIENT_EVENT_NAMES: readonly (keyof ClientNodeEvents)[] = [
  'privmsg',
  'pubmsg',
  'nickLeave',
  'directory',
  'peer',
  'peerlist',
  'dropped',
  'orderbookRequest',
  'channel',
];

/** The local HTTP API server. */
export class ApiServer {
  readonly #backend: ApiBackend;
  readonly #logger: Logger;
  readonly #server: http.Server;
  #endpoint: ApiEndpoint | undefined;
  readonly #streams = new Set<http.ServerResponse>();
  /** Cancels each POST /v1/privmsg or /v1/pubmsg waiting for its confirmation (see {@link close}). */
  readonly #confirmationWaits = new Set<() => void>();
  readonly #socketMode: number;
  readonly #socketGroup: string | undefined;
  /** See {@link API_MAX_EVENT_BUFFER_BYTES}; settable (tests, configuration). */
  maxEventBufferBytes = API_MAX_EVENT_BUFFER_BYTES;
  /** See {@link API_MAX_EVENT_STREAMS}; settable (tests). */
  maxEventStreams = API_MAX_EVENT_STREAMS;
  /** See {@link API_MAX_UNSENT_ANSWER_BYTES}; settable (tests). */
  maxUnsentAnswerBytes = API_MAX_UNSENT_ANSWER_BYTES;
  /** See {@link API_MAX_BODY_BYTES_IN_FLIGHT}; settable (tests). */
  maxBodyBytesInFlight = API_MAX_BODY_BYTES_IN_FLIGHT;
  #bodyBytesInFlight = 0;
  readonly #writeDeadlineMs: number;
  #lastDropLogAt = -Infinity;

  constructor(backend: ApiBackend, logger: Logger, options: ApiServerOptions = {}) {
    this.#backend = backend;
    this.#socketMode = options.socketMode ?? API_SOCKET_MODE;
    this.#socketGroup = options.socketGroup;
    this.#logger = logger.child({ component: 'api' });
    this.#writeDeadlineMs = options.writeDeadlineMs ?? API_WRITE_DEADLINE_MS;
    const headersTimeout = options.headersTimeoutMs ?? API_HEADERS_TIMEOUT_MS;
    const requestTimeout = Math.max(
      headersTimeout,
      options.requestTimeoutMs ?? API_REQUEST_TIMEOUT_MS,
    );
    const serverOptions: http.ServerOptions = {
      headersTimeout,
      requestTimeout,
      keepAliveTimeout: options.keepAliveTimeoutMs ?? API_KEEP_ALIVE_TIMEOUT_MS,
      // Node's default, 30 s, for the default headersTimeout; shorter for a shorter one.
      connectionsCheckingInterval: Math.max(1, Math.min(30_000, Math.floor(headersTimeout / 2))),
      // Node answers an HTTP/1.1 request without Host with a bare 400; #handle answers it with the
      // API's JSON error instead.
      requireHostHeader: false,
    };
    this.#server = http.createServer(serverOptions, (req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        this.#logger.error({ err }, 'api handler failed');
        if (!res.headersSent)
          this.#json(res, 500, { error: { code: 'ERR_API', message: 'internal error' } });
        else res.destroy();
      });
    });
    this.#server.maxConnections = API_MAX_CONNECTIONS;
    this.#server.on('drop', () => {
      this.#count('refused.api-connections-full');
      const now = Date.now();
      if (now - this.#lastDropLogAt < DROP_LOG_INTERVAL_MS) return;
      this.#lastDropLogAt = now;
      this.#logger.warn(
        { maxConnections: this.#server.maxConnections },
        'too many API connections; new ones are closed at once',
      );
    });
    this.#server.on('clientError', (err: Error, socket: stream.Duplex) => {
      this.#clientError(err, socket);
    });
  }

  /**
   * A request Node's HTTP parser refused, or a request not complete in time, or an error of the
   * connection (`'clientError'`). Node's own answer is a bare status line; here it gets the API's
   * JSON error like any other refused request: 431 for a head over Node's `maxHeaderSize`, 408
   * for a request not complete within {@link API_HEADERS_TIMEOUT_MS} /
   * {@link API_REQUEST_TIMEOUT_MS}, 413 for chunk extensions over Node's limit, 400 for anything
   * else malformed (with the parser's reason), always with `Connection: close`; then the
   * connection is closed. Counted `refused.api-bad-request` or `refused.api-request-timeout`.
   * Nothing is answered (the connection is destroyed) when the connection cannot be written any
   * more, when an answer of this connection has already started (a second one would corrupt
   * it), or for an error of the connection itself (ECONNRESET, EPIPE, ...). The request's bytes
   * (`err.rawPacket`) are never logged: they may carry a cookie or credentials.
   */
  #clientError(err: Error & { code?: string; reason?: string }, socket: stream.Duplex): void {
    const code = err.code ?? '';
    const timeout = code === 'ERR_HTTP_REQUEST_TIMEOUT';
    if (!timeout && !code.startsWith('HPE_')) {
      socket.destroy();
      return;
    }
    // Node's own test before it answers (lib/_http_server.js socketOnError): the response of a
    // request of this connection whose head is complete, if any, must not have started.
    const inFlight = (socket as { _httpMessage?: http.ServerResponse | null })._httpMessage;
    this.#count(timeout ? 'refused.api-request-timeout' : 'refused.api-bad-request');
    this.#logger.debug({ code }, 'API request refused by the HTTP parser');
    if (!socket.writable || inFlight?.headersSent === true) {
      socket.destroy();
      return;
    }
    const [status, message] = timeout
      ? [
          408,
          inFlight === undefined || inFlight === null
            ? `request head not complete within ${seconds(this.#server.headersTimeout)}`
            : `request not complete within ${seconds(this.#server.requestTimeout)}`,
        ]
      : code === 'HPE_HEADER_OVERFLOW'
        ? [431, `request head over ${http.maxHeaderSize} bytes`]
        : code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW'
          ? [413, "chunk extensions of the request body over Node's limit"]
          : code === 'HPE_INVALID_EOF_STATE'
            ? [400, 'request incomplete: the client closed its side of the connection mid-request']
            : [400, `malformed request: ${err.reason ?? code}`];
    const body = JSON.stringify({ error: { code: 'ERR_API', message } });
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\n` +
        'Content-Type: application/json\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
    );
    // A client that neither reads the answer nor closes cannot hold the connection.
    destroyUnlessClosedWithin(socket, API_CLOSE_DRAIN_MS);
  }

  /** The node that runs now, if any: the directory node or the maker or taker. */
  #node(): DirectoryNode | ClientNode | undefined {
    return this.#backend.directory ?? this.#backend.client;
  }

  /** Counts `name` where operators read counters (/v1/info, /v1/counters, /metrics). */
  #count(name: string): void {
    this.#node()?.counters.add(name);
  }

  /** Bytes of request bodies held now, all requests together (see {@link API_MAX_BODY_BYTES_IN_FLIGHT}). */
  get bodyBytesInFlight(): number {
    return this.#bodyBytesInFlight;
  }

  /** See {@link API_MAX_CONNECTIONS}; settable (tests). */
  get maxConnections(): number {
    return this.#server.maxConnections;
  }

  set maxConnections(value: number) {
    this.#server.maxConnections = value;
  }

  /** The address actually bound (the port is filled in when 0 was asked for). */
  get endpoint(): ApiEndpoint | undefined {
    return this.#endpoint;
  }

  /**
   * Listens on `endpoint`. A unix socket path must be free, or hold a stale socket (replaced);
   * the socket is created with the configured mode (never wider at any moment) and group.
   * @throws ApiListenError (`ERR_API`) naming the endpoint: `not-a-socket`, `in-use` (another
   *   onionmc answers there), `group`, `listen` (EADDRINUSE, EACCES, ...). Nothing is removed
   *   but a stale socket.
   */
  async listen(endpoint: ApiEndpoint): Promise<void> {
    const where =
      endpoint.kind === 'unix' ? `unix:${endpoint.path}` : `${endpoint.host}:${endpoint.port}`;
    let gid: number | undefined;
    if (endpoint.kind === 'unix') {
      if (this.#socketGroup !== undefined) gid = await resolveGroup(this.#socketGroup);
      if (await claimSocketPath(endpoint.path, fs))
        this.#logger.info({ path: endpoint.path }, 'replaced a stale API socket');
    }
    try {
      await new Promise<void>((resolve, reject) => {
        this.#server.once('error', reject);
        const done = (): void => {
          this.#server.off('error', reject);
          resolve();
        };
        if (endpoint.kind === 'unix') {
          // bind() creates the socket inside this synchronous call with mode 0777 & ~umask: the
          // final mode at once, or owner-only while a group is still to be given.
          const createMode = gid === undefined ? this.#socketMode : this.#socketMode & 0o700;
          withUmask(0o777 & ~createMode, () => this.#server.listen(endpoint.path, done));
        } else this.#server.listen(endpoint.port, endpoint.host, done);
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new ApiListenError(
        'listen',
        `the local API cannot listen on ${where} (${code})${code === 'EADDRINUSE' ? ': another program uses it' : code === 'EACCES' ? ': no permission to create it there' : ''}`,
        { cause: err },
      );
    }
    if (endpoint.kind === 'unix') {
      if (gid !== undefined) {
        try {
          await fs.chown(endpoint.path, -1, gid);
          // Opened to the group only now that the group is right.
          await fs.chmod(endpoint.path, this.#socketMode);
        } catch (err) {
          await this.close();
          throw new ApiListenError(
            'group',
            `cannot give ${endpoint.path} the group ${this.#socketGroup ?? ''} (${(err as NodeJS.ErrnoException).code ?? 'error'}): the daemon's user must be a member of it`,
            { cause: err },
          );
        }
      }
      this.#endpoint = endpoint;
    } else {
      const address = this.#server.address();
      this.#endpoint = {
        ...endpoint,
        port: typeof address === 'object' && address !== null ? address.port : endpoint.port,
      };
    }
    this.#logger.info({ endpoint: this.#endpoint }, 'local API listening');
  }

  /**
   * Stops listening, ends every event stream and answers every privmsg or pubmsg still waiting for its
   * confirmation with 503 `ERR_CLOSED` (it may still be delivered); a client that has not taken
   * what was written to it within {@link API_CLOSE_DRAIN_MS} (a stalled `/v1/events` reader) is
   * cut off. Idempotent.
   */
  async close(): Promise<void> {
    for (const cancel of this.#confirmationWaits) cancel();
    for (const res of this.#streams) res.end();
    this.#streams.clear();
    if (!this.#server.listening) return;
    const cutOff = setTimeout(() => {
      this.#server.closeAllConnections();
    }, API_CLOSE_DRAIN_MS);
    await new Promise<void>((resolve) =>
      this.#server.close(() => {
        resolve();
      }),
    );
    clearTimeout(cutOff);
    if (this.#endpoint?.kind === 'unix') await fs.rm(this.#endpoint.path, { force: true });
  }

  /**
   * Waits for a message's confirmation (docs/api.md "Delivery") for the request answered by
   * `res`; closing the API does not wait for it (503 `ERR_CLOSED`, the connection closed).
   * @throws HttpError 502 `ERR_NOT_DELIVERED`, 504 `ERR_TIMEOUT`, 503 `ERR_BUSY` or `ERR_CLOSED`;
   *   other errors of `confirmation` as they are.
   */
  async #confirmed<T>(
    res: http.ServerResponse,
    confirmation: Promise<T>,
    what: 'privmsg' | 'pubmsg',
  ): Promise<T> {
    let cancel: (() => void) | undefined;
    try {
      const closing = new Promise<never>((_, reject) => {
        cancel = () => {
          // The answer closes the connection, so that closing the server need not wait.
          res.shouldKeepAlive = false;
          reject(
            new OnionmcError(
              'ERR_CLOSED',
              `the daemon is stopping; the ${what} may or may not be delivered`,
            ),
          );
        };
        this.#confirmationWaits.add(cancel);
      });
      return await Promise.race([confirmation, closing]);
    } catch (err) {
      const status = hasCode(err, 'ERR_NOT_DELIVERED')
        ? 502
        : hasCode(err, 'ERR_TIMEOUT')
          ? 504
          : hasCode(err, 'ERR_BUSY') || hasCode(err, 'ERR_CLOSED')
            ? 503
            : undefined;
      if (status === undefined || !(err instanceof OnionmcError)) throw err;
      throw new HttpError(status, err.code, err.message);
    } finally {
      if (cancel !== undefined) this.#confirmationWaits.delete(cancel);
    }
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      const url = requestUrl(req.url);
      const route = `${req.method ?? 'GET'} ${url.pathname}`;
      // RFC 9112 §3.2: a server answers 400 to an HTTP/1.1 request without a Host header.
      if (req.httpVersion === '1.1' && req.headers.host === undefined) {
        res.shouldKeepAlive = false;
        throw new HttpError(400, 'ERR_API', 'an HTTP/1.1 request needs a Host header');
      }
      if (this.#endpoint?.kind === 'tcp') refuseCrossSite(req, this.#endpoint.host);
      if (!isRoute(route)) {
        const allowed = methodsOf(url.pathname);
        if (allowed.length > 0) res.setHeader('allow', allowed.join(', '));
        throw new HttpError(allowed.length > 0 ? 405 : 404, 'ERR_API', `no route ${route}`);
      }
      switch (route) {
        case 'GET /':
        case 'GET /index.html':
          this.#static(res, 'text/html; charset=utf-8', STATUS_HTML);
          return;
        case 'GET /status.js':
          this.#static(res, 'text/javascript; charset=utf-8', STATUS_JS);
          return;
        case 'GET /status.css':
          this.#static(res, 'text/css; charset=utf-8', STATUS_CSS);
          return;
        case 'GET /health':
          this.#json(res, 200, { status: 'ok' });
          return;
        case 'GET /metrics': {
          if (this.#backend.metrics === undefined)
            throw new HttpError(404, 'ERR_API', 'no metrics here');
          const { contentType, body } = await this.#backend.metrics();
          res.writeHead(200, {
            'content-type': contentType,
            'content-length': Buffer.byteLength(body),
          });
          this.#end(res, body);
          return;
        }
        case 'GET /v1/info':
          this.#json(res, 200, { ...this.#backend.info(), memory: memoryFigures() });
          return;
        case 'GET /v1/counters': {
          // The cheap part of /v1/info, for polling: no peer list (thousands on a directory node).
          const node = this.#node();
          this.#json(res, 200, {
            counters: node?.counters.snapshot() ?? {},
            memory: memoryFigures(),
          });
          return;
        }
        case 'POST /v1/gc': {
          // No body is read: a body sent anyway is discarded with the request.
          const result = fullGc();
          this.#logger.info(
            { heapUsedBytes: result.after.heapUsedBytes, durationMs: result.durationMs },
            'full garbage collection asked through the API',
          );
          this.#json(res, 200, result);
          return;
        }
        case 'GET /v1/events':
          this.#events(res);
          return;
        case 'GET /v1/orderbook': {
          const { orderbook } = this.#client();
          this.#json(res, 200, { offers: orderbook.entries(), fidelityBonds: orderbook.bonds() });
          return;
        }
        case 'POST /v1/orderbook/answer': {
          const client = this.#client();
          if (client.role !== 'maker')
            throw new HttpError(409, 'ERR_API', 'only a maker answers orderbook requests');
          const body = await this.#readJson(req);
          const bond = optionalStringField(body, 'fidelityBond');
          this.#json(res, 200, { privmsgs: client.answerOrderbook(stringField(body, 'to'), bond) });
          return;
        }
        case 'GET /v1/reach': {
          const nick = url.searchParams.get('nick') ?? '';
          this.#json(res, 200, { nick, reachable: this.#client().canReach(nick) });
          return;
        }
        case 'POST /v1/pubmsg': {
          const body = await this.#readJson(req);
          const message = stringField(body, 'message');
          // 200 once a directory node handled it (docs/api.md "Delivery"), or an error.
          const { directories, confirmed } = await this.#confirmed(
            res,
            this.#client().pubmsgConfirmed(message),
            'pubmsg',
          );
          this.#json(res, 200, { directories, confirmed });
          return;
        }
        case 'POST /v1/privmsg': {
          const body = await this.#readJson(req);
          const route = optionalStringField(body, 'route') ?? 'any';
          if (route !== 'any' && route !== 'directory')
            throw new HttpError(400, 'ERR_API', '"route" must be "any" or "directory"');
          // 200 once the route handled it (docs/api.md "Delivery"), or an error saying it failed.
          const { via, confirmed, attempts } = await this.#confirmed(
            res,
            this.#client().privmsgConfirmed(
              stringField(body, 'to'),
              stringField(body, 'cmd'),
              stringField(body, 'body'),
              { route },
            ),
            'privmsg',
          );
          this.#json(res, 200, { via, confirmed, attempts });
          return;
        }
        case 'PUT /v1/offers': {
          const client = this.#client();
          if (client.role !== 'maker')
            throw new HttpError(409, 'ERR_API', 'only a maker has offers');
          const offers = parseOffers(await this.#readJson(req));
          this.#json(res, 200, { directories: client.setOffers(offers) });
          return;
        }
        default: {
          const unhandled: never = route;
          throw new Error(`no case for the route ${String(unhandled)}`);
        }
      }
    } catch (err) {
      const [status, code, message] = errorReply(err);
      // Only a 500 is a failure of ours. 501-504 are documented answers (POST /v1/gc without
      // --expose-gc; a message not delivered; busy or closed; a timeout) that a client can cause
      // at will, so they are not logged each time at error level.
      if (status === 500) this.#logger.error({ err }, 'api request failed');
      else if (status > 500) this.#logger.debug({ status, code }, 'api request answered');
      this.#json(res, status, { error: { code, message } });
    }
  }

  /**
   * Reads the request body as JSON, holding at most {@link API_MAX_BODY_BYTES} of it and, all
   * requests together, {@link maxBodyBytesInFlight}; what it held is released once it is parsed
   * or the request ends otherwise.
   * @throws HttpError 413 when the body exceeds {@link API_MAX_BODY_BYTES}, 503 `ERR_BUSY` when it
   *   would have passed {@link maxBodyBytesInFlight}, either once the whole body has been read
   *   (the excess is discarded, not kept): answering earlier, or destroying the request, resets a
   *   TCP connection with unread bytes pending, and the client sees ECONNRESET instead of the
   *   answer; 400 when it is not JSON or the request was aborted.
   */
  #readJson(req: http.IncomingMessage): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let held = 0;
      let busy = false;
      const release = (): void => {
        this.#bodyBytesInFlight -= held;
        held = 0;
        chunks.length = 0;
      };
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > API_MAX_BODY_BYTES || busy) {
          release();
          return;
        }
        if (this.#bodyBytesInFlight + chunk.length > this.maxBodyBytesInFlight) {
          busy = true;
          release();
          return;
        }
        chunks.push(chunk);
        held += chunk.length;
        this.#bodyBytesInFlight += chunk.length;
      });
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        release();
        if (size > API_MAX_BODY_BYTES) {
          reject(new HttpError(413, 'ERR_API', `request body over ${API_MAX_BODY_BYTES} bytes`));
          return;
        }
        if (busy) {
          reject(
            new HttpError(
              503,
              'ERR_BUSY',
              `request bodies being read hold ${this.maxBodyBytesInFlight} bytes, the most the API holds at once; retry`,
            ),
          );
          return;
        }
        try {
          resolve(JSON.parse(body.toString('utf8')) as unknown);
        } catch {
          reject(new HttpError(400, 'ERR_API', 'request body is not JSON'));
        }
      });
      req.on('error', (err) => {
        release();
        reject(err);
      });
      // After 'end' this is a no-op; before it, the client went away mid-body.
      req.on('close', () => {
        release();
        reject(new HttpError(400, 'ERR_API', 'request aborted'));
      });
    });
  }

  #client(): ClientNode {
    const client = this.#backend.client;
    if (client === undefined)
      throw new HttpError(
        409,
        'ERR_API',
        this.#backend.directory === undefined
          ? // The API listens before the node starts (tor may bootstrap for minutes).
            'the node is not running yet; GET /v1/info says what it is waiting for'
          : 'a directory node does not send or receive application messages',
      );
    return client;
  }

  #events(res: http.ServerResponse): void {
    const { client, directory } = this.#backend;
    if (this.#streams.size >= this.maxEventStreams)
      throw new HttpError(
        503,
        'ERR_BUSY',
        `${this.maxEventStreams} event streams are open, the most the API serves at once; close one and retry`,
      );
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive',
    });
    res.write(': onionmc events\n\n');
    this.#streams.add(res);
    // A client that does not read is cut once its unsent events pass the cap (docs/limits.md).
    const send = (name: string, payload: unknown): void => {
      // Ended by close() (the daemon stopping) while the node still emits: nothing more to send.
      if (res.destroyed || res.writableEnded) return;
      res.write(`event: ${name}\ndata: ${JSON.stringify(payload)}\n\n`);
      if (res.writableLength > this.maxEventBufferBytes) {
        this.#streams.delete(res);
        this.#count('evicted.slow-event-stream');
        this.#logger.warn('event stream client is not reading; stream cut');
        res.destroy();
      }
    };
    const backend = this.#backend;
    const unsubscribe =
      backend.subscribe !== undefined
        ? [backend.subscribe(send)]
        : client !== undefined
          ? CLIENT_EVENT_NAMES.map((name) =>
              client.on(name, (payload) => {
                send(name, payload);
              }),
            )
          : directory !== undefined
            ? [
                directory.onRelay((payload) => {
                  send('relay', payload);
                }),
              ]
            : [];
    res.on('close', () => {
      for (const off of unsubscribe) off();
      this.#streams.delete(res);
    });
  }

  /** A page or script of the status page; nothing from elsewhere may load into it. */
  #static(res: http.ServerResponse, contentType: string, body: string): void {
    res.writeHead(200, {
      'content-type': contentType,
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'content-security-policy':
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    });
    this.#end(res, body);
  }

  #json(res: http.ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
    });
    this.#end(res, text);
  }

  /**
   * Ends an ordinary answer with `body`, and cuts it if its client does not take it in time: a
   * client that sends a request and never reads must not keep the answer buffered, and its
   * connection open, forever (see {@link API_WRITE_DEADLINE_MS}).
   */
  #end(res: http.ServerResponse, body: string): void {
    res.end(body);
    if (res.writableFinished) return;
    let graced = false;
    const check = (): void => {
      if (res.writableFinished || res.destroyed) return;
      if (!graced && res.writableLength <= this.maxUnsentAnswerBytes) {
        graced = true;
        timer = setTimeout(check, this.#writeDeadlineMs).unref();
        return;
      }
      this.#count('evicted.slow-api-answer');
      this.#logger.warn(
        { unsentBytes: res.writableLength },
        'API client is not reading its answer; connection cut',
      );
      res.destroy();
    };
    let timer = setTimeout(check, this.#writeDeadlineMs).unref();
    const clear = (): void => {
      clearTimeout(timer);
    };
    res.once('finish', clear);
    res.once('close', clear);
  }
}

/**
 * The URL of a request target: origin-form (`/v1/info?x`) or absolute-form (`http://host/path`).
 * @throws HttpError 400 `ERR_API` for a target `URL` cannot parse (`http://[`, `http://a:99999/`,
 *   `http://%zz/`): the client's mistake, not a failure of ours.
 */
function requestUrl(target: string | undefined): URL {
  try {
    return new URL(target ?? '/', 'http://onionmc.local');
  } catch {
    throw new HttpError(400, 'ERR_API', 'malformed request target (not a valid URL)');
  }
}

/** Host names a request to the API on a TCP port may carry besides its own listen address. */
const LOOPBACK_HOST_NAMES: readonly string[] = ['localhost', '127.0.0.1', '[::1]'];

/**
 * The host name of a `Host` header value (`name` or `name:port`, an IPv6 address in brackets),
 * lower case as URLs write it; undefined when it is not a bare host and port.
 */
function hostNameOf(host: string): string | undefined {
  try {
    const url = new URL(`http://${host}`);
    const bare = url.username === '' && url.password === '' && url.pathname === '/';
    return bare && url.search === '' && url.hash === '' ? url.hostname : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Refuses a request a web page may have made to the API on a TCP port (403 `ERR_API`); the API
 * has no authentication, and any page a browser on the host shows can reach a loopback port:
 * - a `Host` that is not a loopback name or address (`localhost`, `127.0.0.1`, `[::1]`, any port)
 *   nor `listenHost`, the address the API listens on: a page's own name that DNS rebinding
 *   pointed at the API, to read its answers as the page's own;
 * - an `Origin` other than the API's own (`http://` and the request's `Host`): a page elsewhere
 *   that posts a "simple" request (`Content-Type: text/plain`, no CORS preflight). The status
 *   page's own requests carry no `Origin`, or its own; curl and Node's `http` send none.
 * A unix socket is not reachable from a page and is not checked.
 * @throws HttpError 403 `ERR_API` saying which header was refused.
 */
function refuseCrossSite(req: http.IncomingMessage, listenHost: string): void {
  const host = req.headers.host;
  if (host !== undefined) {
    const name = hostNameOf(host);
    const own = hostNameOf(listenHost.includes(':') ? `[${listenHost}]` : listenHost);
    if (name === undefined || (!LOOPBACK_HOST_NAMES.includes(name) && name !== own))
      throw new HttpError(
        403,
        'ERR_API',
        `Host ${JSON.stringify(host)} refused: the API answers only requests to a loopback name or address (localhost, 127.0.0.1, [::1]) or its listen address, so that no web page reaches it under another name (DNS rebinding)`,
      );
  }
  const origin = req.headers.origin;
  if (origin === undefined) return;
  let same = false;
  try {
    const url = new URL(origin);
    same =
      host !== undefined && url.protocol === 'http:' && url.host === new URL(`http://${host}`).host;
  } catch {
    same = false;
  }
  if (!same)
    throw new HttpError(
      403,
      'ERR_API',
      `cross-origin request refused: Origin ${JSON.stringify(origin)} is not the API's own origin; the API has no authentication, so no other web page may use it`,
    );
}

/** `ms` as seconds for people: `60 s`, `0.2 s`. */
function seconds(ms: number): string {
  return `${ms / 1000} s`;
}

function errorReply(err: unknown): [number, string, string] {
  if (err instanceof HttpError) return [err.status, err.code, err.message];
  if (err instanceof OnionmcError) {
    switch (err.code) {
      case 'ERR_NOT_ROUTABLE':
        return [409, err.code, err.message];
      case 'ERR_CRYPTO':
        return [409, err.code, err.message];
      case 'ERR_API':
      case 'ERR_PROTOCOL':
      case 'ERR_LINE_TOO_LONG':
        return [400, err.code, err.message];
      default:
        return [500, err.code, err.message];
    }
  }
  return [500, 'ERR_API', 'internal error'];
}

function stringField(body: unknown, key: string): string {
  const value =
    typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[key] : undefined;
  if (typeof value !== 'string') throw new HttpError(400, 'ERR_API', `"${key}" must be a string`);
  return value;
}

function optionalStringField(body: unknown, key: string): string | undefined {
  const value =
    typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[key] : undefined;
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new HttpError(400, 'ERR_API', `"${key}" must be a string`);
  return value;
}

function parseOffers(body: unknown): Offer[] {
  const list =
    typeof body === 'object' && body !== null
      ? (body as Record<string, unknown>).offers
      : undefined;
  if (!Array.isArray(list)) throw new HttpError(400, 'ERR_API', '"offers" must be an array');
  if (list.length > API_MAX_OFFERS)
    throw new HttpError(
      400,
      'ERR_API',
      `at most ${API_MAX_OFFERS} offers (${list.length} given): a directory node takes many more announced at once for a flood and disconnects the maker`,
    );
  const problems: string[] = [];
  const offers = list.map((item: unknown, index) => {
    const o = (typeof item === 'object' && item !== null ? item : {}) as Record<string, unknown>;
    const offer: Offer = {
      type: jsonText(o.type),
      oid: jsonNumber(o.oid),
      minsize: jsonNumber(o.minsize),
      maxsize: jsonNumber(o.maxsize),
      txfee: jsonNumber(o.txfee),
      cjfee: jsonText(o.cjfee),
    };
    for (const problem of offerProblems(offer)) problems.push(`offers[${index}]: ${problem}`);
    return offer;
  });
  if (problems.length > 0) throw new HttpError(400, 'ERR_API', problems.join('; '));
  return offers;
}

/**
 * A JSON field as text for {@link parseOffers}: `String()` of a primitive, the JSON of an object or
 * array. `String()` of a parsed object can throw (`{"toString": 1}` has no callable toString), and
 * `JSON.stringify` of one nested some thousands deep overflows the stack (RangeError): such a
 * value is never a valid field, so it gets a placeholder that offerProblems refuses.
 */
function jsonText(value: unknown): string {
  if (typeof value !== 'object' || value === null) return String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return '(a JSON value nested too deeply)';
  }
}

/** A JSON field as a number for {@link parseOffers}: `Number()` of a primitive, NaN for an object or array. */
function jsonNumber(value: unknown): number {
  return typeof value === 'object' && value !== null ? NaN : Number(value);
}
