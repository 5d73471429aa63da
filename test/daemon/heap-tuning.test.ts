/** The daemon's heap growing factor (src/daemon/heap-tuning.ts). */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { heapGrowingFlag, HEAP_GROWING_PERCENT } from '../../src/daemon/heap-tuning.js';

/** What V8 prints when `v8.setFlagsFromString(flag)` is given in a fresh Node process. */
function setFlagOutput(flag: string): string {
  const script = `require('node:v8').setFlagsFromString(${JSON.stringify(flag)})`;
  const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  expect(run.status).toBe(0);
  return run.stdout + run.stderr;
}

describe('the heap growing factor', () => {
  it('asks for a limit of twice the live old generation by default', () => {
    expect(HEAP_GROWING_PERCENT).toBe(100);
    expect(heapGrowingFlag([])).toBe('--heap-growing-percent=100');
    expect(heapGrowingFlag(['--expose-gc', '--max-old-space-size=512'])).toBe(
      '--heap-growing-percent=100',
    );
  });

  it('leaves a factor given on the node command line alone', () => {
    expect(heapGrowingFlag(['--heap-growing-percent=50'])).toBeUndefined();
    expect(heapGrowingFlag(['--heap_growing_percent=50'])).toBeUndefined();
    expect(heapGrowingFlag(['--heap-growing-percent'])).toBeUndefined();
    expect(heapGrowingFlag(['--heap-growing-percentage=50'])).toBe('--heap-growing-percent=100');
  });

  it('is a flag this Node accepts at run time (V8 reports the ones it does not know)', () => {
    const flag = heapGrowingFlag([]);
    expect(flag).toBeDefined();
    expect(setFlagOutput('--no-such-v8-flag=1')).toMatch(/unrecognized flag/);
    expect(setFlagOutput(flag ?? '')).not.toMatch(/unrecognized flag/);
  });
});
