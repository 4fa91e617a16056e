import { defineConfig } from 'vitest/config';

/**
 * `npm run test:faults`: the Jepsen-style bank test (test/faults/*.faults.ts). It starts its own private
 * PostgreSQL cluster and server processes, kills them while money moves, and checks the ledger after.
 * Not part of `npm test`: it takes about two minutes and the whole machine.
 */
export default defineConfig({
  test: {
    include: ['test/faults/**/*.faults.ts'],
    testTimeout: 240_000,
    hookTimeout: 120_000,
    pool: 'forks',
    poolOptions: { forks: { singleFork: true } },
    fileParallelism: false,
    reporters: ['verbose'],
  },
});
