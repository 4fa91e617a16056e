import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { inject } from 'vitest';
import pg from 'pg';
import { openDatabase, type DatabaseHandle } from '../../src/db/connection.js';
import { migrate } from '../../src/db/migrate.js';

export type Engine = 'pglite' | 'postgres';

export const engine: Engine = process.env.TEST_DB === 'postgres' ? 'postgres' : 'pglite';
const serverUrl = process.env.TEST_DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/postgres';

export interface TestDatabase {
  handle: DatabaseHandle;
  /** The connection string of a PostgreSQL test database (undefined on PGlite). */
  url: string | undefined;
  drop(): Promise<void>;
}

async function onServer<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A fresh, migrated database of its own for one test file: in-memory PGlite, or a new PostgreSQL database. */
export async function createTestDatabase(options: { poolSize?: number } = {}): Promise<TestDatabase> {
  if (engine === 'pglite') {
    // Every PGlite test database starts as a copy of one migrated at the start of the run.
    const template = new Blob([readFileSync(inject('pgliteTemplate'))]);
    const handle = await openDatabase({ databaseUrl: undefined, dataDir: 'memory://', restoreFrom: template });
    await migrate(handle);
    return { handle, url: undefined, drop: () => handle.close() };
  }
  // The run's prefix (postgres-leaks.ts), or the plain one where no global setup gives it (the fault suite).
  const name = `${inject('postgresDatabasePrefix') ?? 'bank_test_'}${randomBytes(6).toString('hex')}`;
  await onServer((client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const handle = await openDatabase({ databaseUrl: url.toString(), dataDir: '', poolSize: options.poolSize ?? 20 });
  await migrate(handle);
  return {
    handle,
    url: url.toString(),
    async drop() {
      await handle.close();
      await onServer((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}
