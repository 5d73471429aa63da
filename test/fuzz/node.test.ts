/**
 * The CI share of the src/node fuzz properties (test/fuzz/props/node.ts: offers, splitCommands,
 * the orderbook collector, EndToEnd): each runs a scaled-down count (env FUZZ_SCALE, see
 * test/fuzz/property.ts); `npm run fuzz` runs the full counts.
 */
import { describe, it } from 'vitest';
import { checkProperty, fuzzScale, scaledRuns } from './property.js';
import { nodeProperties, offerKnownBugProperty } from './props/node.js';

const scale = fuzzScale();

describe('fuzz: src/node readers of peer text', () => {
  for (const p of nodeProperties) {
    it(p.name, async () => {
      await checkProperty(p, scaledRuns(p, scale));
    });
  }

  // BUG (src/node/offers.ts parseOffer): 16-digit integers above Number.MAX_SAFE_INTEGER are
  // accepted and rounded by Number(): `sw0absoffer 9007199254740993 0 1 0 0` parses to oid
  // 9007199254740992. Skipped, and kept out of `npm run fuzz`, until parseOffer refuses them.
  it.skip(`KNOWN BUG parseOffer rounds integers above 2^53: ${offerKnownBugProperty.name}`, async () => {
    await checkProperty(offerKnownBugProperty, scaledRuns(offerKnownBugProperty, scale));
  });
});
