/**
 * The PoDLE commitment blacklist a maker keeps (jmdaemon `check_utxo_blacklist`): a text file at
 * JMInit's `blacklist_location` (the jmclient's `cmtdata/commitmentlist`), one lowercase hex
 * commitment per line, `\n`-separated with no final newline, shared with the jmclient. A
 * commitment is refused when listed; it is added when the maker uses it (JMIOAuth) or another
 * maker broadcasts it (`!hp2` pubmsg).
 */
import { appendFile, open } from 'node:fs/promises';

/**
 * At most this much of the file is read (and held) per check; a longer file is treated as holding
 * its first part only, and a commitment added is appended after the whole file.
 */
export const BLACKLIST_MAX_FILE_BYTES = 64 * 1024 * 1024;

const HEX_RE = /^(?:[0-9a-fA-F]{2})+$/;

/**
 * The canonical form of a commitment: lowercase hex of whole bytes (jmdaemon
 * `canonicalize_commitment_str`), or undefined when it is not hex.
 */
export function canonicalizeCommitment(commitment: string): string | undefined {
  return HEX_RE.test(commitment) ? commitment.toLowerCase() : undefined;
}

/** Result of {@link CommitmentBlacklist.check}. */
export type BlacklistVerdict = 'invalid_format' | 'allowed' | 'blacklisted';

/** The commitment blacklist file; operations run one at a time. */
export class CommitmentBlacklist {
  readonly #path: string;
  readonly #maxFileBytes: number;
  #queue: Promise<unknown> = Promise.resolve();

  /**
   * @param path the file (JMInit's `blacklist_location`).
   * @param maxFileBytes how much of it is read, bytes ({@link BLACKLIST_MAX_FILE_BYTES}).
   */
  constructor(path: string, maxFileBytes = BLACKLIST_MAX_FILE_BYTES) {
    this.#path = path;
    this.#maxFileBytes = maxFileBytes;
  }

  /** The file's path. */
  get path(): string {
    return this.#path;
  }

  /**
   * Checks `commitment` against the file; with `persist`, adds it when not listed. jmdaemon
   * rewrites the whole file with the commitment as its last line; appending `\n<commitment>` gives
   * the same bytes and keeps whatever lies past the part read.
   * @throws (rejects) the file system error when the file cannot be read (other than missing) or
   *   written.
   */
  check(commitment: string, persist = false): Promise<BlacklistVerdict> {
    const run = async (): Promise<BlacklistVerdict> => {
      const canonical = canonicalizeCommitment(commitment);
      if (canonical === undefined) return 'invalid_format';
      const { listed, empty } = await this.#read();
      if (listed.includes(canonical)) return 'blacklisted';
      if (persist) await appendFile(this.#path, empty ? canonical : `\n${canonical}`, 'ascii');
      return 'allowed';
    };
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  /** The listed commitments of the file's first `maxFileBytes`, and whether the file is empty. */
  async #read(): Promise<{ listed: string[]; empty: boolean }> {
    let text: string;
    let size: number;
    try {
      const file = await open(this.#path, 'r');
      try {
        size = (await file.stat()).size;
        const bytes = Buffer.alloc(Math.min(size, this.#maxFileBytes));
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
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { listed: [], empty: true };
      throw err;
    }
    const listed = text
      .split('\n')
      .map((line) => line.trim().toLowerCase())
      .filter((line) => line !== '');
    return { listed, empty: size === 0 };
  }
}
