/**
 * The PoDLE commitment blacklist file (src/joinmarketd/blacklist.ts): the format jmdaemon's
 * `check_utxo_blacklist` reads and writes, and a file longer than what is read.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CommitmentBlacklist } from '../../src/joinmarketd/blacklist.js';

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
    const blacklist = new CommitmentBlacklist(path);
    expect(await blacklist.check('AB'.repeat(32), true)).toBe('allowed');
    expect(await blacklist.check(commitment(1), true)).toBe('allowed');
    expect(await blacklist.check('ab'.repeat(32))).toBe('blacklisted');
    expect(await blacklist.check('not hex')).toBe('invalid_format');
    expect(readFileSync(path, 'ascii')).toBe(`${'ab'.repeat(32)}\n${commitment(1)}`);
  });

  it('reads only its first maxFileBytes, and adding a commitment keeps the rest of a longer file', async () => {
    const lines = Array.from({ length: 100 }, (_, i) => commitment(i));
    writeFileSync(path, lines.join('\n'), 'ascii');
    // 65 bytes a line: the first 10 lines fit in 650 bytes.
    const blacklist = new CommitmentBlacklist(path, 650);
    expect(await blacklist.check(commitment(5))).toBe('blacklisted');
    expect(await blacklist.check(commitment(50))).toBe('allowed');
    expect(await blacklist.check(commitment(1000), true)).toBe('allowed');
    expect(readFileSync(path, 'ascii')).toBe([...lines, commitment(1000)].join('\n'));
  });
});
