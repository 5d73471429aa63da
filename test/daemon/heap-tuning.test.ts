/** The V8 heap flags the daemon sets for itself (src/daemon/heap-tuning.ts). */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  daemonV8Flags,
  heapGrowingFlag,
  HEAP_GROWING_PERCENT,
  memoryReducerFlag,
} from '../../src/daemon/heap-tuning.js';

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
});

describe('the memory reducer', () => {
  it('runs a single collection after a burst by default', () => {
    expect(memoryReducerFlag([])).toBe('--memory-reducer-single-gc');
    expect(memoryReducerFlag(['--expose-gc', '--no-memory-reducer-for-small-heaps'])).toBe(
      '--memory-reducer-single-gc',
    );
  });

  it('leaves the flag or its negation given on the node command line alone', () => {
    for (const own of [
      '--memory-reducer-single-gc',
      '--memory_reducer_single_gc',
      '--no-memory-reducer-single-gc',
      '--nomemory-reducer-single-gc',
      '--memory-reducer-single-gc=false',
    ])
      expect(memoryReducerFlag([own]), own).toBeUndefined();
  });
});

describe('the flags the daemon sets', () => {
  it('are both, less those the command line gave', () => {
    expect(daemonV8Flags([])).toEqual(['--heap-growing-percent=100', '--memory-reducer-single-gc']);
    expect(daemonV8Flags(['--heap-growing-percent=50'])).toEqual(['--memory-reducer-single-gc']);
    expect(daemonV8Flags(['--heap-growing-percent=50', '--no-memory-reducer-single-gc'])).toEqual(
      [],
    );
  });

  it('are flags this Node accepts at run time (V8 reports the ones it does not know)', () => {
    expect(setFlagOutput('--no-such-v8-flag=1')).toMatch(/unrecognized flag/);
    for (const flag of daemonV8Flags([]))
      expect(setFlagOutput(flag), flag).not.toMatch(/unrecognized flag/);
  });
});
