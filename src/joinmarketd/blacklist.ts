/**
 * The PoDLE commitment blacklist a maker keeps (jmdaemon `check_utxo_blacklist`): a text file at
 * JMInit's `blacklist_location` (the jmclient's `cmtdata/commitmentlist`), one lowercase hex
 * commitment per line, `\n`-separated with no final newline, shared with the jmclient. A
 * commitment is refused when listed; it is added when the maker uses it (JMIOAuth) or another
 * maker broadcasts it (`!hp2` pubmsg).
 */
import { readFile, writeFile } from 'node:fs/promises';

/** The file is read at most this large; a longer one is treated as holding the first part only. */
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
  #queue: Promise<unknown> = Promise.resolve();

  constructor(path: string) {
    this.#path = path;
  }

  /** The file's path. */
  get path(): string {
    return this.#path;
  }

  /**
   * Checks `commitment` against the file; with `persist`, adds it when not listed.
   * @throws (rejects) the file system error when the file cannot be read (other than missing) or
   *   written.
   */
  check(commitment: string, persist = false): Promise<BlacklistVerdict> {
    const run = async (): Promise<BlacklistVerdict> => {
      const canonical = canonicalizeCommitment(commitment);
      if (canonical === undefined) return 'invalid_format';
      const listed = await this.#read();
      if (listed.includes(canonical)) return 'blacklisted';
      if (persist) await writeFile(this.#path, [...listed, canonical].join('\n'), 'ascii');
      return 'allowed';
    };
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  async #read(): Promise<string[]> {
    let text: string;
    try {
      const bytes = await readFile(this.#path);
      text = bytes.subarray(0, BLACKLIST_MAX_FILE_BYTES).toString('latin1');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return text
      .split('\n')
      .map((line) => line.trim().toLowerCase())
      .filter((line) => line !== '');
  }
}
