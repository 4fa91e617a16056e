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

/**
 * A new, empty PostgreSQL database, named with the run's prefix (postgres-leaks.ts), or the plain one
 * where no global setup gives it (the fault suite).
 */
async function createPostgresDatabase(): Promise<{ url: string; dropDatabase: () => Promise<void> }> {
  const name = `${inject('postgresDatabasePrefix') ?? 'bank_test_'}${randomBytes(6).toString('hex')}`;
  await onServer((client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    dropDatabase: () => onServer((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => {}),
  };
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
  const { url, dropDatabase } = await createPostgresDatabase();
  const handle = await openDatabase({ databaseUrl: url, dataDir: '', poolSize: options.poolSize ?? 20 });
  await migrate(handle);
  return {
    handle,
    url,
    async drop() {
      await handle.close();
      await dropDatabase();
    },
  };
}

export interface EmptyDatabase {
  /** Separate handles (separate instances) on PostgreSQL; on PGlite the one handle, as many times: it has one session. */
  handles: DatabaseHandle[];
  url: string | undefined;
  drop(): Promise<void>;
}

// A new PGlite runs initdb inside WebAssembly (seconds); loading a dump of an empty one skips it.
let emptyPGlite: Promise<Blob> | undefined;
function emptyPGliteDump(): Promise<Blob> {
  emptyPGlite ??= openDatabase({ databaseUrl: undefined, dataDir: 'memory://' }).then(async (handle) => {
    const dump = await handle.pglite!.dumpDataDir('none');
    await handle.close();
    return dump;
  });
  return emptyPGlite;
}

/** A database never migrated, for the migrator's own tests, with `count` handles on it. */
export async function createEmptyDatabase(count = 1): Promise<EmptyDatabase> {
  if (engine === 'pglite') {
    const handle = await openDatabase({ databaseUrl: undefined, dataDir: 'memory://', restoreFrom: await emptyPGliteDump() });
    return { handles: Array.from({ length: count }, () => handle), url: undefined, drop: () => handle.close() };
  }
  const { url, dropDatabase } = await createPostgresDatabase();
  const handles = await Promise.all(Array.from({ length: count }, () => openDatabase({ databaseUrl: url, dataDir: '', poolSize: 2 })));
  return {
    handles,
    url,
    async drop() {
      await Promise.all(handles.map((handle) => handle.close()));
      await dropDatabase();
    },
  };
}
