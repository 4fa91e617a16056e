import pg from 'pg';
import { defineConfig, type TestProjectInlineConfiguration, type ViteUserConfig } from 'vitest/config';

const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/postgres';

/**
 * The PostgreSQL half of the suite needs a server. In CI (CI=true) an unreachable one fails the run; on a
 * developer's machine without one, that half is left out with a loud warning and the PGlite half runs.
 */
async function postgresReachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch (error) {
    if (process.env.CI === 'true')
      throw new Error(`PostgreSQL at ${TEST_DATABASE_URL} is unreachable and CI=true: ${(error as Error).message}`);
    console.warn(`\n*** PostgreSQL at ${TEST_DATABASE_URL} is unreachable: the postgres tests are SKIPPED ***\n`);
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

// `npm test` runs the database tests twice: on the embedded PGlite and on a real PostgreSQL server.
// Each test file makes its own database, so files run in parallel.
export default defineConfig(async (): Promise<ViteUserConfig> => {
  const projects: TestProjectInlineConfiguration[] = [
    { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
    {
      extends: true,
      test: {
        name: 'pglite',
        include: ['test/**/*.test.ts'],
        exclude: ['test/unit/**', 'test/**/*.postgres.test.ts'],
        env: { TEST_DB: 'pglite' },
        globalSetup: ['test/helpers/pglite-template.ts'],
      },
    },
  ];
  if (await postgresReachable()) {
    projects.push({
      extends: true,
      test: {
        name: 'postgres',
        include: ['test/**/*.test.ts'],
        exclude: ['test/unit/**'],
        env: { TEST_DB: 'postgres', TEST_DATABASE_URL },
        globalSetup: ['test/helpers/postgres-leaks.ts'],
      },
    });
  }
  return {
    test: {
      testTimeout: 60_000,
      hookTimeout: 120_000,
      pool: 'forks' as const,
      poolOptions: { forks: { maxForks: 3, minForks: 1 } },
      coverage: {
        provider: 'v8' as const,
        include: ['src/**/*.ts'],
        exclude: ['src/server.ts'],
        reporter: ['text-summary', 'json-summary'],
      },
      projects,
    },
  };
});
