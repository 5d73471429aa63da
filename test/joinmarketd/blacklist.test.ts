/**
 * The PoDLE commitment blacklist file (src/joinmarketd/blacklist.ts): the format jmdaemon's
 * `check_utxo_blacklist` reads and writes, a file longer than what is read, commitments of 64 hex
 * characters only, one read of the file, and the cap on appends waiting.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canonicalizeCommitment, CommitmentBlacklist } from '../../src/joinmarketd/blacklist.js';

const commitment = (i: number): string => i.toString(16).padStart(64, '0');

describe('CommitmentBlacklist', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'onionmc-blacklist-'));
    path = join(dir, 'commitmentlist');
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes one lowercase commitment per line, no final newline, as jmdaemon does', async () => {
    const blacklist = await CommitmentBlacklist.load(path);
    expect(blacklist.check('AB'.repeat(32), true)).toBe('allowed');
    expect(blacklist.check(commitment(1), true)).toBe('allowed');
    expect(blacklist.check('ab'.repeat(32))).toBe('blacklisted');
    expect(blacklist.check('not hex')).toBe('invalid_format');
    await blacklist.flushed();
    expect(readFileSync(path, 'ascii')).toBe(`${'ab'.repeat(32)}\n${commitment(1)}`);
  });

  it('reads only its first maxFileBytes, and adding a commitment keeps the rest of a longer file', async () => {
    const lines = Array.from({ length: 100 }, (_, i) => commitment(i));
    writeFileSync(path, lines.join('\n'), 'ascii');
    // 65 bytes a line: the first 10 lines fit in 650 bytes.
    const blacklist = await CommitmentBlacklist.load(path, { maxFileBytes: 650 });
    expect(blacklist.check(commitment(5))).toBe('blacklisted');
    expect(blacklist.check(commitment(50))).toBe('allowed');
    expect(blacklist.check(commitment(1000), true)).toBe('allowed');
    await blacklist.flushed();
    expect(readFileSync(path, 'ascii')).toBe([...lines, commitment(1000)].join('\n'));
  });

  it('takes a commitment as exactly 64 hex characters (a SHA-256 hash), nothing shorter or longer', () => {
    expect(canonicalizeCommitment('AB'.repeat(32))).toBe('ab'.repeat(32));
    for (const bad of ['', 'ab', 'ab'.repeat(31), 'ab'.repeat(33), `${'ab'.repeat(31)}zz`])
      expect(canonicalizeCommitment(bad)).toBeUndefined();
  });

  it('reads the file once, at load: later checks do not read it again', async () => {
    writeFileSync(path, commitment(1), 'ascii');
    const blacklist = await CommitmentBlacklist.load(path);
    rmSync(path);
    expect(blacklist.check(commitment(1))).toBe('blacklisted');
    expect(blacklist.check(commitment(2), true)).toBe('allowed');
    expect(blacklist.check(commitment(2))).toBe('blacklisted');
    await blacklist.flushed();
    // The file was gone, so the append made a new one (as jmdaemon's rewrite would).
    expect(readFileSync(path, 'ascii')).toBe(`\n${commitment(2)}`);
  });

  it('batches appends, and drops (and counts) commitments past the cap on appends waiting', async () => {
    const blacklist = await CommitmentBlacklist.load(path, { maxPendingAppends: 3 });
    for (let i = 0; i < 10; i++) expect(blacklist.check(commitment(i), true)).toBe('allowed');
    expect(blacklist.dropped).toBe(7);
    // A dropped commitment is not listed either: memory and file agree.
    expect(blacklist.check(commitment(5))).toBe('allowed');
    await blacklist.flushed();
    expect(readFileSync(path, 'ascii')).toBe([0, 1, 2].map(commitment).join('\n'));
    expect(blacklist.check(commitment(3), true)).toBe('allowed');
    await blacklist.flushed();
    expect(readFileSync(path, 'ascii')).toBe([0, 1, 2, 3].map(commitment).join('\n'));
  });
});
