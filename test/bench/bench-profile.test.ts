/**
 * The relay benchmark's limit profiles (bench/relay/directory-adapter.ts): they go through the
 * product's config loader, `bench` raises every fairness limit above the defaults, `default` keeps
 * them, and the `bench` block documented in docs/limits.md is the one the benchmark uses.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BENCH_LIMIT_KEYS, benchConfigText } from '../../bench/relay/directory-adapter.js';
import { parseConfig } from '../../src/config/config.js';
import { DEFAULT_LIMITS_CONFIG } from '../../src/config/limits-config.js';

const LIMITS_DOC = readFileSync(
  fileURLToPath(new URL('../../docs/limits.md', import.meta.url)),
  'utf8',
);

describe('relay benchmark limit profiles', () => {
  it('default: the product defaults', () => {
    const config = parseConfig(benchConfigText('default'), 'default.cfg', {
      requireDirectoryNodes: false,
    });
    expect(config.limits).toEqual(DEFAULT_LIMITS_CONFIG);
  });

  it('bench: every fairness budget and the queue cap raised above the defaults', () => {
    const { limits } = parseConfig(benchConfigText('bench'), 'bench.cfg', {
      requireDirectoryNodes: false,
    });
    const d = DEFAULT_LIMITS_CONFIG;
    for (const name of [
      'messages',
      'readBytes',
      'deliveries',
      'globalDeliveries',
      'offences',
    ] as const) {
      expect(limits.policy[name].ratePerSecond).toBeGreaterThan(100 * d.policy[name].ratePerSecond);
      expect(limits.policy[name].burst).toBeGreaterThan(100 * d.policy[name].burst);
    }
    expect(limits.maxQueuedBytes).toBeGreaterThan(d.maxQueuedBytes);
    expect(limits.maxPeers).toBe(d.maxPeers);
  });

  it('bench: the block documented in docs/limits.md', () => {
    for (const [key, value] of Object.entries(BENCH_LIMIT_KEYS))
      expect(LIMITS_DOC).toContain(`\n${key} = ${String(value)}\n`);
  });
});
