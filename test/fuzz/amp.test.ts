/**
 * The CI share of the src/amp fuzz properties (test/fuzz/props/amp.ts): each runs a scaled-down
 * count (env FUZZ_SCALE, see test/fuzz/property.ts); `npm run fuzz` runs the full counts.
 */
import { describe, it } from 'vitest';
import { CI_PROPERTY_TIME_LIMIT_MS, checkProperty, fuzzScale, scaledRuns } from './property.js';
import { ampProperties } from './props/amp.js';

const scale = fuzzScale();

describe('fuzz: src/amp', () => {
  for (const p of ampProperties) {
    it(p.name, async () => {
      await checkProperty(p, scaledRuns(p, scale), undefined, CI_PROPERTY_TIME_LIMIT_MS);
    });
  }
});
