/**
 * The CI share of the API request-body fuzz property (test/fuzz/props/api.ts): a scaled-down count
 * (env FUZZ_SCALE, see test/fuzz/property.ts); `npm run fuzz` runs the full count. Regression tests
 * for what the property found sit beside it.
 */
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { CI_PROPERTY_TIME_LIMIT_MS, checkProperty, fuzzScale, scaledRuns } from './property.js';
import { apiProperties, request, withMakerApi } from './props/api.js';

const scale = fuzzScale();

describe('fuzz: the API request bodies', () => {
  for (const p of apiProperties) {
    it(p.name, async () => {
      await checkProperty(p, scaledRuns(p, scale), undefined, CI_PROPERTY_TIME_LIMIT_MS);
    });
  }

  it('regression: PUT /v1/offers {"offers":[{"type":{"toString":1}}]} and {"oid":{"valueOf":"x"}} answer 400, not 500', async () => {
    // Found by the API property: String() and Number() of a parsed object whose own toString or
    // valueOf is not a function throw a TypeError, which the server answered with a 500.
    await withMakerApi(async () => {
      for (const body of [
        '{"offers":[{"type":{"toString":1}}]}',
        '{"offers":[{"type":"sw0reloffer","oid":{"valueOf":"x"},"minsize":1,"maxsize":2,"txfee":0,"cjfee":"0.001"}]}',
        '{"offers":[{"type":"sw0reloffer","oid":0,"minsize":1,"maxsize":2,"txfee":0,"cjfee":{"toString":"x"}}]}',
      ]) {
        const res = await request('PUT', '/v1/offers', Buffer.from(body));
        expect(res).not.toBe('hang');
        if (res === 'hang') return;
        expect(res.status).toBe(400);
        expect((JSON.parse(res.text) as { error: { code: string } }).error.code).toBe('ERR_API');
      }
    });
  });

  it('regression: PUT /v1/offers with a deeply nested "type" or "cjfee" answers 400, not 500', async () => {
    // JSON.parse takes 100,000 levels; JSON.stringify of them, for the problem's text, overflowed
    // the stack (RangeError), which the server answered with a 500 "internal error".
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    await withMakerApi(async () => {
      for (const field of ['type', 'cjfee']) {
        const res = await request(
          'PUT',
          '/v1/offers',
          Buffer.from(`{"offers":[{"${field}":${deep}}]}`),
        );
        expect(res).not.toBe('hang');
        if (res === 'hang') return;
        expect(res.status).toBe(400);
        expect((JSON.parse(res.text) as { error: { code: string } }).error.code).toBe('ERR_API');
      }
    });
  });
});
