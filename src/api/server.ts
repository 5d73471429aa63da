/**
 * The local API: HTTP/1.1 on a unix socket (mode 0600) or a loopback TCP port, for the
 * applications that use the daemon (wallets, bots) and for operators. JSON in, JSON out; live
 * events as Server-Sent Events. Every message accepted here is either handed to a directory node
 * or a peer link, or the request fails with a reason: nothing is dropped silently.
 *
 * | method | path           | body / answer                                                      |
 * |--------|----------------|--------------------------------------------------------------------|
 * | GET    | /health        | `{"status":"ok"}`                                                  |
 * | GET    | /v1/info       | nick, role, location, network, directories, peers, counters        |
 * | GET    | /v1/events     | SSE: privmsg, pubmsg, nickLeave, directory, peer, peerlist, dropped, orderbookRequest, channel; on a directory node: relay |
 * | POST   | /v1/pubmsg     | `{"message":"!orderbook"}` -> `{"directories":n}`                  |
 * | POST   | /v1/privmsg    | `{"to":nick,"cmd":"fill","body":"…","route":"any"|"directory"}` -> `{"via":{…}}` |
 * | PUT    | /v1/offers     | `{"offers":[{type,oid,minsize,maxsize,txfee,cjfee}]}` (maker)      |
 * | GET    | /v1/orderbook  | `{"offers":[…], "fidelityBonds":[{nick, proof}]}`                   |
 * | POST   | /v1/orderbook/answer | `{"to":nick,"fidelityBond":"…"}` -> `{"privmsgs":n}` (maker)  |
 * | GET    | /v1/reach      | `?nick=J5…` -> `{"nick","reachable"}`                               |
 *
 * Errors answer `{"error":{"code":"ERR_…","message":"…"}}` with 400 (bad request), 404, 405,
 * 409 (`ERR_NOT_ROUTABLE`: no route now), 413 (body too large) or 500.
 */
import fs from 'node:fs/promises';
import http from 'node:http';
import { HttpError, OnionmcError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ClientNode, ClientNodeEvents } from '../node/client-node.js';
import type { DirectoryNode } from '../node/directory-node.js';
import { offerProblems, type Offer } from '../node/offers.js';

/** Largest request body we read, in bytes (a maximum-size line is 40,000 bytes, spec §1.3). */
export const API_MAX_BODY_BYTES = 1024 * 1024;

/** Where the API listens. */
export type ApiEndpoint =
  { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

/** What the API serves from: a maker or taker (`client`) or a directory node (`directory`). */
export interface ApiBackend {
  info(): Record<string, unknown>;
  readonly client: ClientNode | undefined;
  readonly directory: DirectoryNode | undefined;
}

const EVENT_NAMES: readonly (keyof ClientNodeEvents)[] = [
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

  constructor(backend: ApiBackend, logger: Logger) {
    this.#backend = backend;
    this.#logger = logger.child({ component: 'api' });
    this.#server = http.createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        this.#logger.error({ err }, 'api handler failed');
        if (!res.headersSent)
          this.#json(res, 500, { error: { code: 'ERR_API', message: 'internal error' } });
        else res.destroy();
      });
    });
  }

  /** The address actually bound (the port is filled in when 0 was asked for). */
  get endpoint(): ApiEndpoint | undefined {
    return this.#endpoint;
  }

  /** Listens on `endpoint`. A unix socket is created mode 0600, replacing a stale socket file. */
  async listen(endpoint: ApiEndpoint): Promise<void> {
    if (endpoint.kind === 'unix') await fs.rm(endpoint.path, { force: true });
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      const done = (): void => {
        this.#server.off('error', reject);
        resolve();
      };
      if (endpoint.kind === 'unix') {
        // The socket file is created inside this synchronous call: a umask of 0177 around it
        // creates it 0600 from the start, so no other user can connect before the chmod below.
        const previous = process.umask(0o177);
        try {
          this.#server.listen(endpoint.path, done);
        } finally {
          process.umask(previous);
        }
      } else this.#server.listen(endpoint.port, endpoint.host, done);
    });
    if (endpoint.kind === 'unix') {
      await fs.chmod(endpoint.path, 0o600); // in case the platform ignored the umask
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

  /** Stops listening and ends every event stream. Idempotent. */
  async close(): Promise<void> {
    for (const res of this.#streams) res.end();
    this.#streams.clear();
    if (!this.#server.listening) return;
    await new Promise<void>((resolve) =>
      this.#server.close(() => {
        resolve();
      }),
    );
    if (this.#endpoint?.kind === 'unix') await fs.rm(this.#endpoint.path, { force: true });
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://onionmc.local');
    const route = `${req.method ?? 'GET'} ${url.pathname}`;
    try {
      switch (route) {
        case 'GET /health':
          this.#json(res, 200, { status: 'ok' });
          return;
        case 'GET /v1/info':
          this.#json(res, 200, this.#backend.info());
          return;
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
          const body = await readJson(req);
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
          const body = await readJson(req);
          const message = stringField(body, 'message');
          this.#json(res, 200, { directories: this.#client().pubmsg(message) });
          return;
        }
        case 'POST /v1/privmsg': {
          const body = await readJson(req);
          const route = optionalStringField(body, 'route') ?? 'any';
          if (route !== 'any' && route !== 'directory')
            throw new HttpError(400, 'ERR_API', '"route" must be "any" or "directory"');
          const via = this.#client().privmsg(
            stringField(body, 'to'),
            stringField(body, 'cmd'),
            stringField(body, 'body'),
            { route },
          );
          this.#json(res, 200, { via });
          return;
        }
        case 'PUT /v1/offers': {
          const client = this.#client();
          if (client.role !== 'maker')
            throw new HttpError(409, 'ERR_API', 'only a maker has offers');
          const offers = parseOffers(await readJson(req));
          this.#json(res, 200, { directories: client.setOffers(offers) });
          return;
        }
        default:
          throw new HttpError(
            [
              '/health',
              '/v1/info',
              '/v1/events',
              '/v1/orderbook',
              '/v1/orderbook/answer',
              '/v1/reach',
              '/v1/pubmsg',
              '/v1/privmsg',
              '/v1/offers',
            ].includes(url.pathname)
              ? 405
              : 404,
            'ERR_API',
            `no route ${route}`,
          );
      }
    } catch (err) {
      const [status, code, message] = errorReply(err);
      if (status >= 500) this.#logger.error({ err }, 'api request failed');
      this.#json(res, status, { error: { code, message } });
    }
  }

  #client(): ClientNode {
    const client = this.#backend.client;
    if (client === undefined)
      throw new HttpError(
        409,
        'ERR_API',
        'a directory node does not send or receive application messages',
      );
    return client;
  }

  #events(res: http.ServerResponse): void {
    const { client, directory } = this.#backend;
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive',
    });
    res.write(': onionmc events\n\n');
    this.#streams.add(res);
    const send = (name: string, payload: unknown): void => {
      res.write(`event: ${name}\ndata: ${JSON.stringify(payload)}\n\n`);
    };
    const unsubscribe =
      client !== undefined
        ? EVENT_NAMES.map((name) =>
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

  #json(res: http.ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  }
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

/**
 * Reads the request body as JSON.
 * @throws HttpError 413 when the body exceeds {@link API_MAX_BODY_BYTES}, once the whole body has
 *   been read (the excess is discarded, not kept): answering earlier, or destroying the request,
 *   resets a TCP connection with unread bytes pending, and the client sees ECONNRESET instead of
 *   the 413; 400 when it is not JSON or the request was aborted.
 */
function readJson(req: http.IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= API_MAX_BODY_BYTES) chunks.push(chunk);
      else chunks.length = 0;
    });
    req.on('end', () => {
      if (size > API_MAX_BODY_BYTES) {
        reject(new HttpError(413, 'ERR_API', `request body over ${API_MAX_BODY_BYTES} bytes`));
        return;
      }
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown);
      } catch {
        reject(new HttpError(400, 'ERR_API', 'request body is not JSON'));
      }
    });
    req.on('error', reject);
    // After 'end' this is a no-op; before it, the client went away mid-body.
    req.on('close', () => {
      reject(new HttpError(400, 'ERR_API', 'request aborted'));
    });
  });
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
 * array. `String()` of a parsed object can throw (`{"toString": 1}` has no callable toString).
 */
function jsonText(value: unknown): string {
  return typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value);
}

/** A JSON field as a number for {@link parseOffers}: `Number()` of a primitive, NaN for an object or array. */
function jsonNumber(value: unknown): number {
  return typeof value === 'object' && value !== null ? NaN : Number(value);
}
