/**
 * The CI share of the fuzz properties of tor control reply consumers
 * (test/fuzz/props/tor-replies.ts: bootstrap phase, ADD_ONION answer, PROTOCOLINFO and
 * AUTHCHALLENGE): each runs a scaled-down count (env FUZZ_SCALE, see test/fuzz/property.ts);
 * `npm run fuzz` runs the full counts.
 */
import { describe, it } from 'vitest';
import { CI_PROPERTY_TIME_LIMIT_MS, checkProperty, fuzzScale, scaledRuns } from './property.js';
import { torReplyProperties } from './props/tor-replies.js';

const scale = fuzzScale();

describe('fuzz: tor control reply consumers', () => {
  for (const p of torReplyProperties) {
    it(p.name, async () => {
      await checkProperty(p, scaledRuns(p, scale), undefined, CI_PROPERTY_TIME_LIMIT_MS);
    });
  }
});
