import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 180_000,
    reporters: ['default'],
    // Tests run as root in CI; onionmc refuses root unless allowed (tests of the refusal unset it).
    env: { ONIONMC_ALLOW_ROOT: '1' },
  },
});
