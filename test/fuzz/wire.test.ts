/**
 * The CI share of the src/wire fuzz properties (test/fuzz/props/wire.ts): each runs a scaled-down
 * count (env FUZZ_SCALE, see test/fuzz/property.ts); `npm run fuzz` runs the full counts.
 */
import { describe, it } from 'vitest';
import { CI_PROPERTY_TIME_LIMIT_MS, checkProperty, fuzzScale, scaledRuns } from './property.js';
import { wireProperties } from './props/wire.js';

const scale = fuzzScale();

describe('fuzz: src/wire', () => {
  for (const p of wireProperties) {
    it(p.name, async () => {
      await checkProperty(p, scaledRuns(p, scale), undefined, CI_PROPERTY_TIME_LIMIT_MS);
    });
  }
});
