/**
 * The CI share of the src/node fuzz properties (test/fuzz/props/node.ts: offers, splitCommands,
 * the orderbook collector, EndToEnd): each runs a scaled-down count (env FUZZ_SCALE, see
 * test/fuzz/property.ts); `npm run fuzz` runs the full counts.
 */
import { describe, it } from 'vitest';
import { CI_PROPERTY_TIME_LIMIT_MS, checkProperty, fuzzScale, scaledRuns } from './property.js';
import { nodeProperties } from './props/node.js';

const scale = fuzzScale();

describe('fuzz: src/node readers of peer text', () => {
  for (const p of nodeProperties) {
    it(p.name, async () => {
      await checkProperty(p, scaledRuns(p, scale), undefined, CI_PROPERTY_TIME_LIMIT_MS);
    });
  }
});
