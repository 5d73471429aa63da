/**
 * The CI share of the src/message fuzz properties (test/fuzz/props/message.ts): each runs a scaled-down
 * count (env FUZZ_SCALE, see test/fuzz/property.ts); `npm run fuzz` runs the full counts.
 */
import { describe, it } from 'vitest';
import { CI_PROPERTY_TIME_LIMIT_MS, checkProperty, fuzzScale, scaledRuns } from './property.js';
import { messageProperties } from './props/message.js';

const scale = fuzzScale();

describe('fuzz: src/message', () => {
  for (const p of messageProperties) {
    it(p.name, async () => {
      await checkProperty(p, scaledRuns(p, scale), undefined, CI_PROPERTY_TIME_LIMIT_MS);
    });
  }
});
