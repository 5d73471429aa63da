/**
 * Fair reading across connections: a connection handles at most `linesPerTurn` received lines at
 * a time; when more are waiting, it joins a round-robin queue that a single `setImmediate` serves,
 * `linesPerTurn` lines per connection per round, with the event loop free to read other sockets
 * between rounds. So one connection's backlog is never drained before other connections are
 * served. Its socket is paused while more than {@link INBOX_PAUSE_BYTES} wait, which bounds what a
 * connection can make us buffer.
 *
 * Work per event-loop iteration is bounded in time too, so that a storm of new connections or many
 * backlogged ones cannot make one iteration long (everybody's latency is the length of an
 * iteration): lines handled at once as they arrive stop after {@link DEFAULT_SLICE_MS} of an
 * iteration (later arrivals wait for the round), and a round stops after the same time (the
 * connections it did not reach are served first in the next round). The clock is read after every
 * line, not every turn: a pubmsg relayed to 300 peers costs some 0.3 ms, so 16 of them in one
 * turn took 5-8 ms before.
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

/**
 * Default time, in ms, that lines are handled as they arrive in one event-loop iteration, and that
 * one round of the queue lasts, before the event loop moves on (writes, other sockets, timers).
 */
export const DEFAULT_SLICE_MS = 1;

/** A reader the {@link FairReadScheduler} serves. */
export interface FairReadable {
  /**
   * Handles up to `max` waiting lines, and fewer when `timeUp` (asked after each line) says the
   * time slice is spent: one line can cost much more than another (a pubmsg is written to every
   * peer), so a count of lines alone does not bound a turn.
   * @returns true when lines are still waiting afterwards.
   */
  drainSome(max: number, timeUp?: () => boolean): boolean;
}

/** Serves readers with waiting lines round-robin, one `setImmediate` per round for all. */
export class FairReadScheduler {
  readonly #linesPerTurn: number;
  readonly #sliceMs: number;
  readonly #now: () => number;
  #ready = new Set<FairReadable>();
  /** The previous round's set, emptied, reused as the next one's (no Set allocated per round). */
  #spare = new Set<FairReadable>();
  #scheduled: NodeJS.Immediate | undefined;
  /** When lines were first handled on arrival in this iteration (valid while #inlineReset is set). */
  #inlineSince = 0;
  #inlineReset: NodeJS.Immediate | undefined;
  /** Called after each scheduled round (the connection layer writes what the round queued). */
  afterRound: (() => void) | undefined;

  /**
   * @param linesPerTurn lines per reader per round; a positive integer.
   * @param sliceMs see {@link DEFAULT_SLICE_MS}; positive.
   * @param now clock in ms (default `performance.now`), injectable for tests.
   * @throws RangeError for a `linesPerTurn` or `sliceMs` out of range.
   */
  constructor(
    linesPerTurn: number = DEFAULT_LINES_PER_TURN,
    sliceMs: number = DEFAULT_SLICE_MS,
    now: () => number = () => performance.now(),
  ) {
    if (!Number.isSafeInteger(linesPerTurn) || linesPerTurn < 1) {
      throw new RangeError(`linesPerTurn must be a positive integer, got ${String(linesPerTurn)}`);
    }
    if (!(sliceMs > 0)) throw new RangeError(`sliceMs must be positive, got ${String(sliceMs)}`);
    this.#linesPerTurn = linesPerTurn;
    this.#sliceMs = sliceMs;
    this.#now = now;
  }

  /** Lines a reader handles per turn. */
  get linesPerTurn(): number {
    return this.#linesPerTurn;
  }

  /** Readers waiting for their turn (for tests and stats). */
  get waiting(): number {
    return this.#ready.size;
  }

  /**
   * Whether a reader whose lines just arrived may handle them now: true until lines handled on
   * arrival have taken {@link DEFAULT_SLICE_MS} of this event-loop iteration. When false, the
   * reader {@link add}s itself and waits for the round.
   */
  mayHandleNow(): boolean {
    const now = this.#now();
    if (this.#inlineReset === undefined) {
      this.#inlineSince = now;
      this.#inlineReset = setImmediate(() => {
        this.#inlineReset = undefined;
      });
    }
    return now - this.#inlineSince < this.#sliceMs;
  }

  /**
   * Whether the time for handling lines on arrival in this event-loop iteration is spent (see
   * {@link mayHandleNow}, which starts it): the `timeUp` of a reader handling lines on arrival.
   */
  readonly inlineTimeUp = (): boolean => this.#now() - this.#inlineSince >= this.#sliceMs;

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

  /**
   * Runs one round now: waiting readers handle up to `linesPerTurn` lines each, in order, until
   * the round has lasted {@link DEFAULT_SLICE_MS}; those it did not reach come first next round,
   * then those that still have lines.
   */
  runRound(): void {
    const started = this.#now();
    const round = this.#ready;
    this.#ready = this.#spare;
    const again: FairReadable[] = [];
    const timeUp = (): boolean => this.#now() - started >= this.#sliceMs;
    let over = false;
    for (const reader of round) {
      if (over) {
        this.#ready.add(reader);
        continue;
      }
      if (reader.drainSome(this.#linesPerTurn, timeUp)) again.push(reader);
      over = timeUp();
    }
    round.clear();
    this.#spare = round;
    for (const reader of again) this.#ready.add(reader);
    if (this.#ready.size > 0) this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled !== undefined) return;
    this.#scheduled = setImmediate(() => {
      this.#scheduled = undefined;
      this.runRound();
      this.afterRound?.();
    });
  }
}

/** The process-wide scheduler every {@link PeerConnection} uses. */
export const fairReadScheduler = new FairReadScheduler();
