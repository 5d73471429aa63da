/**
 * One AMP connection (the session layer of docs/joinmarketd.md): owns the socket, decodes boxes
 * from the byte stream, runs the client's requests one at a time through the responders and
 * writes their answers, and sends our requests (`callRemote`) with lowercase-hex `_ask` tags,
 * matching answers and error boxes to them. Twisted's `AMP` protocol, for the daemon side.
 */
import type { Duplex } from 'node:stream';
import { AmpBoxDecoder, encodeBox, type AmpBox } from '../amp/box.js';
import {
  AMP_UNKNOWN,
  askTag,
  classifyBox,
  decodeArguments,
  decodeResponse,
  encodeAnswer,
  encodeErrorBox,
  encodeRequest,
  isJmCommand,
  JM_COMMANDS,
  unhandledCommandBox,
  type ClientCommandName,
  type DaemonCommandName,
  type JmCommandArgs,
  type JmResponse,
} from '../amp/commands.js';
import { AmpError, AmpRemoteError } from '../amp/errors.js';
import { OnionmcError } from '../errors.js';
import { destroyUnlessClosedWithin } from '../net/cut-off.js';
import type { Logger } from '../log.js';

/** Our requests waiting for an answer at most (a client that never answers cannot grow this). */
export const AMP_MAX_PENDING_CALLS = 4096;
/** A request of ours unanswered this long is failed with `ERR_TIMEOUT`. */
export const AMP_CALL_TIMEOUT_MS = 300_000;
/** Bytes queued for the client beyond which it is disconnected (it does not read). */
export const AMP_MAX_WRITE_BUFFER_BYTES = 64 * 1024 * 1024;
/** Client requests queued behind the one running at most. */
export const AMP_MAX_QUEUED_REQUESTS = 1024;
/**
 * After a fault in the client's byte stream, how long the answers to the boxes before it have to
 * go out before the connection is cut, ms. Our choice: Twisted writes the answers it has at once
 * and then closes.
 */
export const AMP_BROKEN_DRAIN_MS = 1_000;

/**
 * Thrown by a responder to answer with an AMP error box (`_error_code` `errorCode`,
 * `_error_description` `description`) instead of `accepted`.
 */
export class AmpCommandError extends OnionmcError {
  constructor(
    readonly errorCode: string,
    readonly description: string,
  ) {
    super('ERR_PROTOCOL', description);
  }
}

/** The responders: one per command the client sends. */
export type AmpResponders = {
  [N in ClientCommandName]: (args: JmCommandArgs<N>) => JmResponse | Promise<JmResponse>;
};

/** Options of an {@link AmpSession}. */
export interface AmpSessionOptions {
  readonly responders: AmpResponders;
  readonly logger: Logger;
  readonly callTimeoutMs?: number;
  readonly maxPendingCalls?: number;
  readonly maxWriteBufferBytes?: number;
}

interface PendingCall {
  readonly command: string;
  readonly resolve: (response: JmResponse) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/** The daemon side of one AMP connection. */
export class AmpSession {
  readonly #socket: Duplex;
  readonly #options: AmpSessionOptions;
  readonly #logger: Logger;
  readonly #decoder = new AmpBoxDecoder();
  readonly #pending = new Map<string, PendingCall>();
  readonly #closeListeners = new Set<() => void>();
  #counter = 0;
  #queue: Promise<void> = Promise.resolve();
  #queued = 0;
  #closed = false;
  /** The client's byte stream had a fault: nothing more is read. */
  #broken = false;

  constructor(socket: Duplex, options: AmpSessionOptions) {
    this.#socket = socket;
    this.#options = options;
    this.#logger = options.logger;
    socket.on('data', (chunk: Buffer) => {
      this.#onData(chunk);
    });
    socket.on('error', (err: Error) => {
      this.#logger.info({ reason: err.message }, 'AMP connection error');
    });
    socket.on('close', () => {
      this.#onClose();
    });
  }

  /** True once the connection is closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Calls `listener` once when the connection closes. */
  onClose(listener: () => void): void {
    if (this.#closed) listener();
    else this.#closeListeners.add(listener);
  }

  /**
   * Sends request `name` to the client; resolves with its `accepted` answer. The request box is
   * written before this returns, so boxes go out in call order.
   * @throws (rejects) AmpRemoteError when the client answers with an error box; OnionmcError
   *   `ERR_TIMEOUT` after {@link AMP_CALL_TIMEOUT_MS}, `ERR_CLOSED` when the connection closes,
   *   `ERR_API` beyond {@link AMP_MAX_PENDING_CALLS}; AmpError `ERR_AMP_TOO_LONG` when an
   *   argument does not fit a box (nothing is sent). Never throws.
   */
  callRemote<N extends DaemonCommandName>(name: N, args: JmCommandArgs<N>): Promise<JmResponse> {
    if (this.#closed)
      return Promise.reject(new OnionmcError('ERR_CLOSED', 'AMP connection is closed'));
    if (this.#pending.size >= (this.#options.maxPendingCalls ?? AMP_MAX_PENDING_CALLS))
      return Promise.reject(
        new OnionmcError('ERR_API', 'too many AMP requests unanswered by the client'),
      );
    const tag = askTag(++this.#counter);
    let box: AmpBox;
    try {
      box = encodeRequest(name, args, tag);
    } catch (err) {
      // An argument the box cannot carry (a value over 65,535 bytes) fails this call only: thrown
      // here it would leave a timer or an event listener of the caller's.
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return new Promise<JmResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(tag);
        reject(new OnionmcError('ERR_TIMEOUT', `client did not answer ${name}`));
      }, this.#options.callTimeoutMs ?? AMP_CALL_TIMEOUT_MS);
      timer.unref();
      this.#pending.set(tag, { command: name, resolve, reject, timer });
      this.#send(box);
    });
  }

  /** Closes the connection after what is queued is written. Idempotent. */
  close(): void {
    if (!this.#closed) this.#socket.end();
  }

  /** Aborts the connection. Idempotent. */
  destroy(): void {
    this.#socket.destroy();
  }

  #send(box: AmpBox): void {
    if (this.#closed || this.#socket.destroyed) return;
    this.#socket.write(encodeBox(box));
    if (
      this.#socket.writableLength >
      (this.#options.maxWriteBufferBytes ?? AMP_MAX_WRITE_BUFFER_BYTES)
    ) {
      this.#logger.warn('AMP client does not read its answers; disconnecting');
      this.#socket.destroy();
    }
  }

  #onData(chunk: Buffer): void {
    if (this.#broken) return;
    // The boxes completed before a fault are handled first, as Twisted's AMP does.
    const { boxes, error } = this.#decoder.read(chunk);
    for (const box of boxes) {
      if (this.#socket.destroyed) return;
      this.#onBox(box);
    }
    if (error === undefined || this.#socket.destroyed) return;
    this.#broken = true;
    this.#logger.warn({ reason: error.message }, 'AMP stream broken; disconnecting');
    // Like Twisted's loseConnection: the answers to those boxes go out, then the connection ends.
    destroyUnlessClosedWithin(this.#socket, AMP_BROKEN_DRAIN_MS);
    const end = (): void => {
      this.#socket.end();
    };
    this.#queue.then(end, end);
  }

  #onBox(box: AmpBox): void {
    let classified;
    try {
      classified = classifyBox(box);
    } catch (err) {
      this.#logger.warn(
        { reason: err instanceof Error ? err.message : String(err) },
        'AMP box of no kind; disconnecting',
      );
      this.#socket.destroy();
      return;
    }
    if (classified.kind === 'answer' || classified.kind === 'error') {
      const pending = this.#pending.get(classified.tag);
      if (pending === undefined) {
        this.#logger.info({ tag: classified.tag }, 'AMP answer to no request of ours; ignored');
        return;
      }
      this.#pending.delete(classified.tag);
      clearTimeout(pending.timer);
      if (classified.kind === 'error') {
        pending.reject(new AmpRemoteError(classified.code, classified.description));
        return;
      }
      try {
        pending.resolve(decodeResponse(classified.box));
      } catch (err) {
        pending.reject(err instanceof Error ? err : new Error(String(err)));
      }
      return;
    }
    if (this.#queued >= AMP_MAX_QUEUED_REQUESTS) {
      this.#logger.warn('AMP client floods requests; disconnecting');
      this.#socket.destroy();
      return;
    }
    this.#queued++;
    const { command, ask } = classified;
    this.#queue = this.#queue.then(async () => {
      try {
        await this.#runRequest(command, ask, box);
      } finally {
        this.#queued--;
      }
    });
  }

  async #runRequest(command: string, ask: string | undefined, box: AmpBox): Promise<void> {
    const reply = (answer: AmpBox): void => {
      if (ask !== undefined) this.#send(answer);
    };
    const tag = ask ?? '';
    if (!isJmCommand(command) || JM_COMMANDS[command].sender !== 'client') {
      this.#logger.info({ command }, 'AMP command we have no responder for');
      reply(unhandledCommandBox(tag, command));
      return;
    }
    const name = command as ClientCommandName;
    let args: Record<string, unknown>;
    try {
      args = decodeArguments(name, box);
    } catch (err) {
      const description = err instanceof AmpError ? `${name}: ${err.message}` : 'Unknown Error';
      this.#logger.info({ command: name, reason: description }, 'AMP request with bad arguments');
      reply(encodeErrorBox(tag, AMP_UNKNOWN, description));
      return;
    }
    try {
      const responder = this.#options.responders[name] as (
        a: Record<string, unknown>,
      ) => JmResponse | Promise<JmResponse>;
      const response = await responder(args);
      reply(encodeAnswer(tag, response));
    } catch (err) {
      if (err instanceof AmpCommandError) {
        this.#logger.info({ command: name, reason: err.description }, 'AMP request refused');
        reply(encodeErrorBox(tag, err.errorCode, err.description));
        return;
      }
      this.#logger.error({ err, command: name }, 'AMP responder failed');
      reply(encodeErrorBox(tag, AMP_UNKNOWN, 'Unknown Error'));
    }
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const [tag, pending] of this.#pending) {
      clearTimeout(pending.timer);
      pending.reject(
        new OnionmcError('ERR_CLOSED', `connection closed before ${pending.command} was answered`),
      );
      this.#pending.delete(tag);
    }
    for (const listener of this.#closeListeners) listener();
    this.#closeListeners.clear();
  }
}
