/**
 * The CI share of the adversarial suite (issue 12 item 5): every case of cases.ts at small sizes
 * (30 idle peers, 1 s floods, 200-peer storm), each against a fresh `onionmc run` directory node
 * process. `npm run adversarial` runs the same cases at the sizes and prints figures.
 *
 * What holds today is asserted: the node stays up and exits 0 on SIGTERM, the well-behaved pair
 * loses nothing, and every protocol-abuse step closes or ignores the offender as expected while
 * no spoofed or stolen-nick message reaches the pair. What needs the limits of issue 12 (flooders
 * limited and cut, slow readers and stalled event streams cut, the pair's latency within 2x quiet)
 * is written below behind {@link LIMITS_IMPLEMENTED}: set it to true (or run with
 * ONIONMC_ADV_LIMITS=1) once the limits are in.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CASES, CI_SIZES, protocolAbuse, type CaseResult } from './cases.js';
import { CLI_PATH, ROOT, killAllNodes } from './harness.js';

/** Flip to true when the limits of issue 12 land (token buckets, queue caps, connection caps). */
const LIMITS_IMPLEMENTED = process.env.ONIONMC_ADV_LIMITS === '1';
/** `it` for assertions that need the limits; skipped until {@link LIMITS_IMPLEMENTED}. */
const limitIt = LIMITS_IMPLEMENTED ? it : it.skip;

/** One run per case, shared by the tests that read it. */
const runs = new Map<string, Promise<CaseResult>>();
function result(key: string): Promise<CaseResult> {
  let run = runs.get(key);
  if (run === undefined) {
    const found = CASES.find((c) => c.key === key);
    if (found === undefined) throw new Error(`no case ${key}`);
    run = found.run(CI_SIZES);
    runs.set(key, run);
  }
  return run;
}

/** The check whose target starts with `prefix`. */
function check(r: CaseResult, prefix: string): { pass: boolean; value: string } {
  const found = r.checks.find((c) => c.target.startsWith(prefix));
  if (found === undefined) throw new Error(`case ${r.name} has no check "${prefix}"`);
  return found;
}

const CASE_TIMEOUT_MS = 45_000;

beforeAll(async () => {
  if (!existsSync(CLI_PATH)) await promisify(execFile)('npm', ['run', 'build'], { cwd: ROOT });
});

// A case whose test timed out keeps running; its node must not outlive the file.
afterAll(() => {
  killAllNodes();
});

describe('protocol abuse against a directory node process', () => {
  it('closes or ignores each offender as expected; the pair keeps working and sees no spoofed message', async () => {
    const r = await protocolAbuse(CI_SIZES);
    expect(r.error).toBeUndefined();
    expect(r.nodeAlive).toBe(true);
    expect(r.nodeExit).toBe('code 0');
    expect(r.pairLost).toBe(0);
    expect(r.pairDisconnected).toBe(false);
    expect(r.pairForeign).toBe(0);
    const unexpected = r.steps.filter((s) => s.outcome !== s.expected);
    expect(unexpected).toEqual([]);
    expect(r.steps.length).toBeGreaterThanOrEqual(30);
  }, 60_000);
});

describe.each([
  ['pubmsg-flood'],
  ['privmsg-flood'],
  ['slow-readers'],
  ['stalled-events'],
  ['many-flooders'],
  ['storm'],
  ['silent'],
  ['churn'],
])('attack %s (CI sizes)', (key) => {
  it(
    'the node stays up, exits 0 on SIGTERM, and the pair loses nothing',
    async () => {
      const r = await result(key);
      expect(r.error).toBeUndefined();
      expect(r.nodeAlive).toBe(true);
      expect(r.nodeExit).toBe('code 0');
      expect(r.pairLost).toBe(0);
      expect(r.pairForeign).toBe(0);
    },
    CASE_TIMEOUT_MS,
  );
});

describe('attacks that need the limits of issue 12', () => {
  for (const key of [
    'pubmsg-flood',
    'privmsg-flood',
    'slow-readers',
    'stalled-events',
    'many-flooders',
  ]) {
    limitIt(
      `${key}: flooders are limited within 1 s and cut when they persist`,
      async () => {
        const r = await result(key);
        expect(check(r, 'flooders limited within').pass).toBe(true);
        expect(check(r, 'persistent flooders disconnected').pass).toBe(true);
      },
      CASE_TIMEOUT_MS,
    );
    limitIt(
      `${key}: the pair's p99 stays within 2x quiet and RSS under 150 MB`,
      async () => {
        const r = await result(key);
        expect(check(r, 'pair p99 within').pass).toBe(true);
        expect(check(r, 'RSS under').pass).toBe(true);
      },
      CASE_TIMEOUT_MS,
    );
  }
  limitIt(
    'slow readers are cut',
    async () => {
      expect(check(await result('slow-readers'), 'slow readers disconnected').pass).toBe(true);
    },
    CASE_TIMEOUT_MS,
  );
  limitIt(
    'a stalled /v1/events reader is cut',
    async () => {
      expect(check(await result('stalled-events'), 'stalled event stream cut').pass).toBe(true);
    },
    CASE_TIMEOUT_MS,
  );
  limitIt(
    'a storm is answered within 3 s with the pair p99 within 5x quiet',
    async () => {
      const r = await result('storm');
      expect(check(r, 'storm answered within').pass).toBe(true);
      expect(check(r, 'pair p99 within').pass).toBe(true);
    },
    CASE_TIMEOUT_MS,
  );
  limitIt(
    'churn leaves RSS within 10 MB of the start',
    async () => {
      expect(check(await result('churn'), 'RSS back within').pass).toBe(true);
    },
    CASE_TIMEOUT_MS,
  );
});
