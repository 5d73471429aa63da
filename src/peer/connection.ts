/**
 * One peer connection: owns a socket, frames lines (spec §1.1), decodes envelopes (spec §1.2),
 * caps what is queued for a slow reader, and closes on protocol violations. It knows nothing of
 * handshakes or routing: the policy layer (src/node/) decides what a message means.
 */
import type net from 'node:net';
import { OnionmcError, ProtocolError } from '../errors.js';
import type { Logger } from '../log.js';
import { decodeEnvelope, encodeEnvelope, type Envelope } from '../wire/envelope.js';
import { LineDecoder, encodeLine } from '../wire/framing.js';

/**
 * Bytes we let queue up for one peer before we treat it as a slow consumer and disconnect it.
 * About 100 maximum-size lines (40,000 bytes each, spec §1.3).
 */
export const MAX_QUEUED_BYTES_PER_PEER = 4 * 1024 * 1024;

/** Which side opened the connection. */
export type Direction = 'inbound' | 'outbound';

/** What the owner of a connection is told. */
export interface ConnectionHandlers {
  /** One decoded envelope, in arrival order. Exceptions thrown here close the connection. */
  onEnvelope(envelope: Envelope): void;
  /** The connection closed; `err` says why when it was not a clean end. Called once. */
  onClose(err: Error | undefined): void;
}

/** Options of a {@link PeerConnection}. */
export interface ConnectionOptions {
  readonly direction: Direction;
  readonly logger: Logger;
  /** See {@link MAX_QUEUED_BYTES_PER_PEER}. */
  readonly maxQueuedBytes?: number;
  /** Receive limit per line in bytes; default the framing layer's 65,536 (spec §1.3). */
  readonly maxLineBytes?: number;
  /** Clock in ms, injectable for tests; default `Date.now`. */
  readonly now?: () => number;
}

let nextConnectionId = 1;

/** A framed, envelope-level connection to one peer. */
export class PeerConnection {
  /** Process-unique id, for logs and maps. */
  readonly id: number;
  readonly direction: Direction;
  /** `ip:port` (or `unix`) of the other end, as the socket reports it; for logs. */
  readonly remote: string;
  readonly logger: Logger;
  /** When the last complete line arrived, in ms of the injected clock. */
  lastReceivedAt: number;

  readonly #socket: net.Socket;
  readonly #decoder: LineDecoder;
  readonly #maxQueuedBytes: number;
  readonly #now: () => number;
  #handlers: ConnectionHandlers | undefined;
  #closed = false;

  constructor(socket: net.Socket, options: ConnectionOptions) {
    this.id = nextConnectionId++;
    this.direction = options.direction;
    this.#socket = socket;
    this.#now = options.now ?? Date.now;
    this.lastReceivedAt = this.#now();
    this.#decoder = new LineDecoder(options.maxLineBytes);
    this.#maxQueuedBytes = options.maxQueuedBytes ?? MAX_QUEUED_BYTES_PER_PEER;
    this.remote =
      socket.remoteAddress !== undefined
        ? `${socket.remoteAddress}:${socket.remotePort ?? 0}`
        : 'unix';
    this.logger = options.logger.child({ conn: this.id, dir: this.direction, remote: this.remote });
    socket.setNoDelay(true);
  }

  /** True until the connection closed or was destroyed. */
  get isOpen(): boolean {
    return !this.#closed;
  }

  /** Starts reading. Call once, after the owner is ready to receive envelopes. */
  start(handlers: ConnectionHandlers): void {
    this.#handlers = handlers;
    const socket = this.#socket;
    socket.on('data', (chunk: Buffer) => {
      this.#onData(chunk);
    });
    socket.on('error', (err) => {
      this.destroy(err);
    });
    socket.on('end', () => {
      // The peer will send nothing more; we have nothing to finish for it either.
      this.destroy();
    });
    socket.on('close', () => {
      this.destroy();
    });
  }

  #onData(chunk: Buffer): void {
    if (this.#closed) return;
    let lines: string[];
    try {
      lines = this.#decoder.push(chunk);
    } catch (err) {
      this.#protocolViolation(err);
      return;
    }
    if (lines.length === 0) return;
    this.lastReceivedAt = this.#now();
    for (const line of lines) {
      // A handler may have closed the connection while handling the previous line.
      if (!this.isOpen) return;
      let envelope: Envelope;
      try {
        envelope = decodeEnvelope(line);
      } catch (err) {
        this.#protocolViolation(err);
        return;
      }
      try {
        this.#handlers?.onEnvelope(envelope);
      } catch (err) {
        this.logger.error({ err }, 'handler failed; closing the connection');
        this.destroy(err instanceof Error ? err : new Error(String(err)));
        return;
      }
    }
  }

  #protocolViolation(err: unknown): void {
    const error = err instanceof Error ? err : new ProtocolError(String(err));
    this.logger.warn(
      { code: (error as Partial<OnionmcError>).code, reason: error.message },
      'protocol violation; disconnecting peer',
    );
    this.destroy(error);
  }

  /**
   * Sends one envelope.
   * @returns false when the connection is already closed (nothing was sent).
   * @throws ProtocolError (`ERR_LINE_TOO_LONG`) when the line exceeds 40,000 bytes (spec §1.3),
   *   or for a type that must never be sent (spec §10); nothing is sent then.
   */
  send(type: number, line: string): boolean {
    return this.sendEncoded(encodeLine(encodeEnvelope(type, line)));
  }

  /**
   * Sends an already framed line (an envelope plus CRLF), e.g. one encoded once for a broadcast.
   * Disconnects the peer when more than `maxQueuedBytes` are waiting for it (a slow consumer).
   * @returns false when the connection is closed.
   */
  sendEncoded(frame: Uint8Array): boolean {
    if (this.#closed) return false;
    this.#socket.write(frame);
    if (this.#socket.writableLength > this.#maxQueuedBytes) {
      this.logger.warn(
        { queuedBytes: this.#socket.writableLength },
        'peer is not reading; disconnecting',
      );
      this.destroy(new OnionmcError('ERR_CLOSED', 'peer is not reading (send queue full)'));
      return false;
    }
    return true;
  }

  /** Ends the connection after what was queued is flushed. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#socket.end();
    this.#finish(undefined);
    // Do not wait forever on a peer that never acknowledges the FIN.
    this.#socket.setTimeout(10_000, () => this.#socket.destroy());
  }

  /** Aborts the connection now, dropping anything queued. Idempotent. */
  destroy(err?: Error): void {
    if (!this.#closed) this.#finish(err);
    this.#socket.destroy();
  }

  #finish(err: Error | undefined): void {
    this.#closed = true;
    const handlers = this.#handlers;
    this.#handlers = undefined;
    handlers?.onClose(err);
  }
}
