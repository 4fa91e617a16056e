import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { DatabaseHandle } from './connection.js';

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));
// Any fixed number: the session-level advisory lock that makes concurrent starts take turns.
const MIGRATION_LOCK_KEY = 7_311_902_117;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function readMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const migrations = readdirSync(dir)
    .filter((file) => /^\d{4}_[a-z0-9_]+\.sql$/.test(file))
    .sort()
    .map((file) => ({ version: Number(file.slice(0, 4)), name: file.slice(5, -4), sql: readFileSync(dir + file, 'utf8') }));
  // Two files of one version (a stale copy of a renamed migration, say) would both run on a fresh
  // database, the second failing halfway, and only one on an older one: refuse to start instead.
  migrations.forEach((migration, i) => {
    const previous = migrations[i - 1];
    if (previous?.version === migration.version) {
      throw new Error(`migrations ${previous.name} and ${migration.name} in ${dir} share version ${migration.version}`);
    }
  });
  return migrations;
}

/**
 * Applies the pending forward-only migrations, each in its own transaction, under an advisory lock so
 * that instances starting together apply each one exactly once (the second waits, then finds nothing
 * to do). Returns the versions it applied.
 */
export async function migrate(database: DatabaseHandle, migrations = readMigrations()): Promise<number[]> {
  return database.withSession(async (session) => {
    await session.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await session.script(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      const rows = await session.query<{ version: number }>('SELECT version FROM schema_migrations');
      const applied = new Set(rows.map((row) => Number(row.version)));
      const done: number[] = [];
      for (const migration of migrations) {
        if (applied.has(migration.version)) continue;
        await session.script('BEGIN');
        try {
          await session.script(migration.sql);
          await session.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name]);
          await session.script('COMMIT');
        } catch (error) {
          await session.script('ROLLBACK');
          throw new Error(`migration ${migration.version}_${migration.name} failed: ${(error as Error).message}`, { cause: error });
        }
        done.push(migration.version);
      }
      return done;
    } finally {
      await session.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  });
}
