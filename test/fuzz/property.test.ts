/**
 * The fuzz harness's time box (test/fuzz/property.ts `checkProperty`): the CI share stops a
 * property's runs at its time limit without failing it, and a counterexample still fails it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkProperty, fuzzProperty } from './property.js';

describe('checkProperty with a time limit', () => {
  it('stops a passing property at the limit and resolves with the cases run', async () => {
    const p = fuzzProperty({
      name: 'always true',
      runs: 1_000_000_000,
      property: () => fc.property(fc.integer(), () => true),
    });
    const run = await checkProperty(p, p.runs, undefined, 100);
    expect(run).toBeGreaterThan(0);
    expect(run).toBeLessThan(p.runs);
  });

  it('still fails on a counterexample found within the limit', async () => {
    const p = fuzzProperty({
      name: 'no integer above 10',
      runs: 1_000_000_000,
      property: () => fc.property(fc.integer(), (n) => n <= 10),
    });
    await expect(checkProperty(p, p.runs, undefined, 2_000)).rejects.toThrow(
      'fuzz property "no integer above 10" failed',
    );
  });
});
