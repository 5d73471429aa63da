/**
 * Fair reading across connections: a connection handles at most `linesPerTurn` received lines at
 * a time; when more are waiting, it joins a round-robin queue that a single `setImmediate` serves,
 * `linesPerTurn` lines per connection per round, with the event loop free to read other sockets
 * between rounds. So one connection's backlog is never drained before other connections are
 * served. Its socket is paused while more than {@link INBOX_PAUSE_BYTES} wait, which bounds what a
 * connection can make us buffer.
 */

/**
 * Bytes a connection may have waiting (received, not yet handled) before its socket is paused (and
 * below which it is resumed). Small on purpose: while paused, libuv stops reading the socket, so a
 * connection with a backlog costs one decoded socket read (at most 64 KiB) per pause, never the
 * kernel's whole receive buffer in one poll phase; 16 KiB keeps a steady sender's next read
 * arriving before its backlog runs dry.
 */
export const INBOX_PAUSE_BYTES = 16 * 1024;

/** Default lines a connection may have handled per turn before others are served. */
export const DEFAULT_LINES_PER_TURN = 16;

/** A reader the {@link FairReadScheduler} serves. */
export interface FairReadable {
  /**
   * Handles up to `max` waiting lines.
   * @returns true when lines are still waiting afterwards.
   */
  drainSome(max: number): boolean;
}

/** Serves readers with waiting lines round-robin, one `setImmediate` per round for all. */
export class FairReadScheduler {
  readonly #linesPerTurn: number;
  #ready = new Set<FairReadable>();
  #scheduled: NodeJS.Immediate | undefined;

  /** @param linesPerTurn lines per reader per round; a positive integer. */
  constructor(linesPerTurn: number = DEFAULT_LINES_PER_TURN) {
    if (!Number.isSafeInteger(linesPerTurn) || linesPerTurn < 1) {
      throw new RangeError(`linesPerTurn must be a positive integer, got ${String(linesPerTurn)}`);
    }
    this.#linesPerTurn = linesPerTurn;
  }

  /** Lines a reader handles per turn. */
  get linesPerTurn(): number {
    return this.#linesPerTurn;
  }

  /** Readers waiting for their turn (for tests and stats). */
  get waiting(): number {
    return this.#ready.size;
  }

  /** Queues `reader` for the next round (idempotent). */
  add(reader: FairReadable): void {
    this.#ready.add(reader);
    this.#schedule();
  }

  /** Forgets `reader` (it closed). */
  delete(reader: FairReadable): void {
    this.#ready.delete(reader);
    if (this.#ready.size === 0 && this.#scheduled !== undefined) {
      clearImmediate(this.#scheduled);
      this.#scheduled = undefined;
    }
  }

  /** Runs one round now: every waiting reader handles up to `linesPerTurn` lines. */
  runRound(): void {
    const round = this.#ready;
    this.#ready = new Set();
    for (const reader of round) {
      if (reader.drainSome(this.#linesPerTurn)) this.#ready.add(reader);
    }
    if (this.#ready.size > 0) this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled !== undefined) return;
    this.#scheduled = setImmediate(() => {
      this.#scheduled = undefined;
      this.runRound();
    });
  }
}

/** The process-wide scheduler every {@link PeerConnection} uses. */
export const fairReadScheduler = new FairReadScheduler();
