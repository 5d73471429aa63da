/**
 * The CI share of the src/config fuzz properties (test/fuzz/props/config.ts): each runs a scaled-down
 * count (env FUZZ_SCALE, see test/fuzz/property.ts); `npm run fuzz` runs the full counts.
 */
import { describe, it } from 'vitest';
import { CI_PROPERTY_TIME_LIMIT_MS, checkProperty, fuzzScale, scaledRuns } from './property.js';
import { configProperties } from './props/config.js';

const scale = fuzzScale();

describe('fuzz: src/config', () => {
  for (const p of configProperties) {
    it(p.name, async () => {
      await checkProperty(p, scaledRuns(p, scale), undefined, CI_PROPERTY_TIME_LIMIT_MS);
    });
  }
});
