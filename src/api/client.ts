/**
 * A small client of the local API (src/api/server.ts), used by the demo and the tests, and a
 * reference for applications: JSON requests, and an event stream with `waitFor` so callers wait on
 * a condition, never on a sleep.
 */
import http from 'node:http';
import { createParser } from 'eventsource-parser';
import { OnionmcError } from '../errors.js';
import type { ApiEndpoint } from './server.js';

/** One Server-Sent Event from `/v1/events`. */
export interface ApiEvent {
  readonly event: string;
  readonly data: unknown;
}

/** The JSON answer of a request, with its status. */
export interface ApiResponse {
  readonly status: number;
  readonly body: unknown;
}

function requestOptions(endpoint: ApiEndpoint, method: string, path: string): http.RequestOptions {
  const base =
    endpoint.kind === 'unix'
      ? { socketPath: endpoint.path }
      : { host: endpoint.host, port: endpoint.port };
  return { ...base, method, path, headers: { 'content-type': 'application/json' } };
}

/**
 * Largest answer body {@link ApiClient.request} reads, bytes: far above the largest legitimate
 * answer (`GET /v1/orderbook` or `GET /v1/info` of a busy node: some MB), so a bigger one is not
 * the daemon's; past it the request is destroyed and rejects with `ERR_API`, never holding more.
 */
export const API_CLIENT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/** A client of one node's local API. */
export class ApiClient {
  /** See {@link API_CLIENT_MAX_RESPONSE_BYTES}; settable (tests). */
  maxResponseBytes = API_CLIENT_MAX_RESPONSE_BYTES;

  constructor(readonly endpoint: ApiEndpoint) {}

  /**
   * Sends a request; resolves with any status (callers check it) and the JSON body (undefined
   * when empty).
   * @throws OnionmcError `ERR_API` when the answer body is over {@link maxResponseBytes} (the
   *   request is destroyed) or is not JSON; the transport's error (ECONNREFUSED, ECONNRESET, ...)
   *   as it is.
   */
  request(method: string, path: string, body?: unknown): Promise<ApiResponse> {
    const maxBytes = this.maxResponseBytes;
    return new Promise((resolve, reject) => {
      const req = http.request(requestOptions(this.endpoint, method, path), (res) => {
        const status = res.statusCode ?? 0;
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size <= maxBytes) {
            chunks.push(chunk);
            return;
          }
          chunks.length = 0;
          reject(
            new OnionmcError(
              'ERR_API',
              `${method} ${path}: ${status} answer over ${maxBytes} bytes, more than any answer of the daemon; not read further`,
            ),
          );
          req.destroy();
        });
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({ status, body: text === '' ? undefined : (JSON.parse(text) as unknown) });
          } catch {
            const type = res.headers['content-type'];
            reject(
              new OnionmcError(
                'ERR_API',
                `${method} ${path}: ${status} answer is not JSON (${Buffer.byteLength(text)} bytes${type === undefined ? '' : `, ${type}`}): is this an onionmc daemon?`,
              ),
            );
          }
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  }

  /** Like {@link request} but expects 2xx and returns the body; otherwise throws with the error text. */
  async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const res = await this.request(method, path, body);
    if (res.status < 200 || res.status >= 300) {
      const error = (res.body as { error?: { code?: string; message?: string } } | undefined)
        ?.error;
      throw new OnionmcError(
        'ERR_API',
        `${method} ${path}: ${res.status} ${error?.code ?? ''} ${error?.message ?? ''}`.trim(),
      );
    }
    return res.body;
  }

  /**
   * Opens `/v1/events`; resolves once the stream is established. An event over
   * {@link maxResponseBytes}, or whose data is not JSON, ends the stream (see
   * {@link EventStream.waitFor}).
   */
  events(): Promise<EventStream> {
    const maxBytes = this.maxResponseBytes;
    return new Promise((resolve, reject) => {
      const req = http.request(requestOptions(this.endpoint, 'GET', '/v1/events'), (res) => {
        if (res.statusCode !== 200) {
          reject(new OnionmcError('ERR_API', `GET /v1/events: ${res.statusCode ?? 0}`));
          res.resume();
          return;
        }
        resolve(new EventStream(req, res, maxBytes));
      });
      req.on('error', reject);
      req.end();
    });
  }
}

/** Events an {@link EventStream} keeps for `on`, `received` and `waitFor`; older ones are let go. */
export const EVENT_STREAM_MAX_KEPT = 100_000;

/**
 * A live event stream, parsed by eventsource-parser. Events are buffered from the moment it opens,
 * so none is missed (the last {@link EVENT_STREAM_MAX_KEPT}). An event
 * longer than the client's cap, or whose data is not JSON, ends the stream with an `ERR_API`
 * error (never an exception thrown out of the socket's listener).
 */
export class EventStream {
  readonly #req: http.ClientRequest;
  readonly #events: ApiEvent[] = [];
  readonly #waiters = new Set<() => void>();
  readonly #listeners = new Set<(event: ApiEvent) => void>();
  #ended = false;
  #failure: OnionmcError | undefined;

  /** `maxEventChars`: the longest event kept waiting for its end, in UTF-16 characters. */
  constructor(
    req: http.ClientRequest,
    res: http.IncomingMessage,
    maxEventChars = API_CLIENT_MAX_RESPONSE_BYTES,
  ) {
    this.#req = req;
    const parser = createParser({
      maxBufferSize: maxEventChars,
      onEvent: (message) => {
        if (this.#failure !== undefined || message.data === '') return;
        const event = message.event ?? 'message';
        let parsed: ApiEvent;
        try {
          parsed = { event, data: JSON.parse(message.data) as unknown };
        } catch {
          this.#fail(`event ${JSON.stringify(event.slice(0, 64))} has data that is not JSON`);
          return;
        }
        this.#events.push(parsed);
        if (this.#events.length > EVENT_STREAM_MAX_KEPT) this.#events.shift();
        for (const listener of this.#listeners) listener(parsed);
      },
      onError: (err) => {
        // An unknown field or a bad `retry` is ignored, as an EventSource does.
        if (err.type === 'max-buffer-size-exceeded')
          this.#fail(`an event over ${maxEventChars} characters; not read further`);
      },
    });
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      // The parser throws once it gave up; nothing is fed to it after a failure.
      if (this.#failure !== undefined) return;
      parser.feed(chunk);
      this.#wake();
    });
    res.on('close', () => {
      this.#ended = true;
      this.#wake();
    });
  }

  /** Ends the stream for a reason that `waitFor` reports. */
  #fail(reason: string): void {
    this.#failure = new OnionmcError('ERR_API', `GET /v1/events: ${reason}`);
    this.#ended = true;
    this.#req.destroy();
    this.#wake();
  }

  #wake(): void {
    for (const waiter of this.#waiters) waiter();
  }

  /**
   * Calls `listener` with every event: first those received so far, then each new one as it
   * arrives (the way an application reacts to requests). Returns the function that unsubscribes.
   */
  on(listener: (event: ApiEvent) => void): () => void {
    for (const event of [...this.#events]) listener(event);
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Every event received so far. */
  get received(): readonly ApiEvent[] {
    return this.#events;
  }

  /**
   * Resolves with the first event (received before or after the call) that matches; rejects with
   * `ERR_TIMEOUT` naming `what` after `timeoutMs`; with `ERR_CLOSED` when the stream ends, or
   * `ERR_API` when it was ended by an event too long or not JSON.
   */
  waitFor(
    what: string,
    predicate: (event: ApiEvent) => boolean,
    timeoutMs: number,
  ): Promise<ApiEvent> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = this.#events.find(predicate);
        if (found !== undefined) {
          done();
          resolve(found);
        } else if (this.#ended) {
          done();
          reject(
            this.#failure ??
              new OnionmcError('ERR_CLOSED', `event stream ended while waiting for ${what}`),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new OnionmcError('ERR_TIMEOUT', `timed out after ${timeoutMs} ms waiting for ${what}`),
        );
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** Closes the stream. */
  close(): void {
    this.#req.destroy();
  }
}
