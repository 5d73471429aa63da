/**
 * The PoDLE commitment blacklist a maker keeps (jmdaemon `check_utxo_blacklist`): a text file at
 * JMInit's `blacklist_location` (the jmclient's `cmtdata/commitmentlist`), one lowercase hex
 * commitment per line, `\n`-separated with no final newline, shared with the jmclient. A
 * commitment is refused when listed; it is added when the maker uses it (JMIOAuth) or another
 * maker broadcasts it (`!hp2` pubmsg).
 *
 * jmdaemon re-reads (and rewrites) the whole file on every check; here it is read once, when
 * loaded at JMInit, and held as a set: a check is a lookup, and a commitment added is appended to
 * the file (the same bytes jmdaemon's rewrite gives). Appends are batched, one write at a time,
 * and at most {@link BLACKLIST_MAX_PENDING_APPENDS} wait: past that a commitment is dropped
 * (counted in {@link CommitmentBlacklist.dropped}), so a flood of `!hp2` costs no file work.
 */
import { appendFile, open } from 'node:fs/promises';

/**
 * At most this much of the file is read at load; a longer file is treated as holding its first
 * part only, and a commitment added is appended after the whole file.
 */
export const BLACKLIST_MAX_FILE_BYTES = 64 * 1024 * 1024;

/** Commitments waiting to be appended to the file, at most; more are dropped and counted. */
export const BLACKLIST_MAX_PENDING_APPENDS = 1024;

/**
 * A PoDLE commitment is the SHA-256 hash of a point, in hex: exactly 64 hex characters
 * (JoinMarket's `commitment = sha256(P2)`, the `!fill` / `!hp2` argument after its type prefix).
 */
const COMMITMENT_RE = /^[0-9a-fA-F]{64}$/;

/**
 * The canonical form of a commitment: its 64 hex characters in lowercase (jmdaemon
 * `canonicalize_commitment_str`), or undefined when it is not 64 hex characters.
 */
export function canonicalizeCommitment(commitment: string): string | undefined {
  return COMMITMENT_RE.test(commitment) ? commitment.toLowerCase() : undefined;
}

/** Result of {@link CommitmentBlacklist.check}. */
export type BlacklistVerdict = 'invalid_format' | 'allowed' | 'blacklisted';

/** Options of {@link CommitmentBlacklist.load}. */
export interface CommitmentBlacklistOptions {
  /** How much of the file is read, bytes ({@link BLACKLIST_MAX_FILE_BYTES}). */
  readonly maxFileBytes?: number;
  /** Commitments waiting to be written, at most ({@link BLACKLIST_MAX_PENDING_APPENDS}). */
  readonly maxPendingAppends?: number;
  /** Told of a failed append (the commitments of that write stay listed in memory). */
  readonly onWriteError?: (err: unknown) => void;
}

/** The commitment blacklist: the file's commitments in memory, additions appended to it. */
export class CommitmentBlacklist {
  readonly #path: string;
  readonly #listed: Set<string>;
  readonly #maxPending: number;
  readonly #onWriteError: (err: unknown) => void;
  #empty: boolean;
  #pending: string[] = [];
  #writing: Promise<void> | undefined;
  #dropped = 0;

  private constructor(
    path: string,
    listed: Set<string>,
    empty: boolean,
    options: CommitmentBlacklistOptions,
  ) {
    this.#path = path;
    this.#listed = listed;
    this.#empty = empty;
    this.#maxPending = options.maxPendingAppends ?? BLACKLIST_MAX_PENDING_APPENDS;
    this.#onWriteError = options.onWriteError ?? ((): void => undefined);
  }

  /**
   * Reads the file (its first `maxFileBytes`; a missing file is an empty list).
   * @param path the file (JMInit's `blacklist_location`).
   * @throws (rejects) the file system error when the file exists but cannot be read.
   */
  static async load(
    path: string,
    options: CommitmentBlacklistOptions = {},
  ): Promise<CommitmentBlacklist> {
    const maxFileBytes = options.maxFileBytes ?? BLACKLIST_MAX_FILE_BYTES;
    let text: string;
    let size: number;
    try {
      const file = await open(path, 'r');
      try {
        size = (await file.stat()).size;
        const bytes = Buffer.alloc(Math.min(size, maxFileBytes));
        let filled = 0;
        while (filled < bytes.length) {
          const { bytesRead } = await file.read(bytes, filled, bytes.length - filled, filled);
          if (bytesRead === 0) break;
          filled += bytesRead;
        }
        text = bytes.subarray(0, filled).toString('latin1');
      } finally {
        await file.close();
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      return new CommitmentBlacklist(path, new Set(), true, options);
    }
    const listed = new Set<string>();
    for (const line of text.split('\n')) {
      const commitment = line.trim().toLowerCase();
      if (commitment !== '') listed.add(commitment);
    }
    return new CommitmentBlacklist(path, listed, size === 0, options);
  }

  /** The file's path. */
  get path(): string {
    return this.#path;
  }

  /** Commitments not recorded because {@link BLACKLIST_MAX_PENDING_APPENDS} were waiting. */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Checks `commitment` against the list; with `persist`, adds it when not listed (appended to
   * the file soon after; dropped and counted when too many appends wait). jmdaemon rewrites the
   * whole file with the commitment as its last line; appending `\n<commitment>` gives the same
   * bytes and keeps whatever lies past the part read.
   */
  check(commitment: string, persist = false): BlacklistVerdict {
    const canonical = canonicalizeCommitment(commitment);
    if (canonical === undefined) return 'invalid_format';
    if (this.#listed.has(canonical)) return 'blacklisted';
    if (persist) {
      if (this.#pending.length >= this.#maxPending) {
        this.#dropped++;
      } else {
        this.#listed.add(canonical);
        this.#pending.push(canonical);
        this.#writing ??= this.#write();
      }
    }
    return 'allowed';
  }

  /** Resolves once every commitment added so far is written (or its write failed). */
  async flushed(): Promise<void> {
    while (this.#writing !== undefined) await this.#writing;
  }

  async #write(): Promise<void> {
    // Let the commitments added in the same turn join this write.
    await Promise.resolve();
    while (this.#pending.length > 0) {
      const batch = [...this.#pending];
      try {
        const text = batch.join('\n');
        await appendFile(this.#path, this.#empty ? text : `\n${text}`, 'ascii');
        this.#empty = false;
      } catch (err) {
        this.#onWriteError(err);
      }
      // Removed only once written, so the cap counts the commitments in flight too.
      this.#pending = this.#pending.slice(batch.length);
    }
    this.#writing = undefined;
  }
}
