import { randomBytes } from 'node:crypto';
import pg from 'pg';

const serverUrl = process.env.TEST_DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/postgres';

/**
 * Vitest global setup of the PostgreSQL half: the test databases of this run get a name prefix of their
 * own, and at the end of the run any database with that prefix still on the server fails the run (and
 * is dropped): each test file must drop what it created, or a developer's server fills up run after
 * run. The prefix is per run, so two runs at once do not see each other's databases.
 */
export default function setup({ provide }: { provide: (key: 'postgresDatabasePrefix', value: string) => void }) {
  const prefix = `bank_test_${randomBytes(3).toString('hex')}_`;
  provide('postgresDatabasePrefix', prefix);
  return async () => {
    const client = new pg.Client({ connectionString: serverUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{ datname: string }>('SELECT datname FROM pg_database WHERE starts_with(datname, $1)', [prefix]);
      for (const { datname } of rows) await client.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`);
      if (rows.length > 0) {
        throw new Error(
          `${rows.length} test database(s) were left on the server (now dropped): ${rows.map((row) => row.datname).join(', ')}`,
        );
      }
    } finally {
      await client.end();
    }
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    postgresDatabasePrefix: string;
  }
}
