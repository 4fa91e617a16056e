import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DatabaseHandle, Session } from './connection.js';

/** The folder of the domain folders: src/ when run from source, dist/ once built. */
const CODE_ROOT = fileURLToPath(new URL('../', import.meta.url));
const MIGRATIONS_DIR = join(CODE_ROOT, 'db', 'migrations');
// Any fixed number: the session-level advisory lock that makes concurrent starts take turns.
const MIGRATION_LOCK_KEY = 7_311_902_117;

/**
 * The baseline (0001) holds the schema that migrations 0001 to 0015 built one file at a time up to
 * commit 72b8834. A database that the previous migrator took to 0015 has exactly that schema, so its
 * records are rewritten to the baseline's; one that stopped earlier lacks part of it, and only a
 * release that still has those files can finish it.
 */
const LAST_FOLDED_VERSION = 15;
const LAST_RELEASE_BEFORE_FOLD = '72b8834';

const CREATE_RECORD_TABLES = `
  CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
  CREATE TABLE IF NOT EXISTS schema_repeatables (
    path text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());`;

/** A numbered migration: schema, applied once, never edited after. */
export interface Migration {
  version: number;
  name: string;
  file: string;
  sql: string;
  checksum: string;
}

/** A file of function, trigger function and view definitions, applied again whenever it changes. */
export interface Repeatable {
  /** Relative to the code root, `/`-separated: `ledger/sql/ledger_post.sql`. */
  path: string;
  sql: string;
  checksum: string;
}

/** What one migrate() applied: numbered versions, then repeatable paths, each in the order applied. */
export interface Applied {
  migrations: number[];
  repeatables: string[];
}

function readSql(path: string): { sql: string; checksum: string } {
  // Line endings are normalised first, so that a Windows checkout (CRLF) is not a change.
  const sql = readFileSync(path, 'utf8').replace(/\r\n/g, '\n');
  return { sql, checksum: createHash('sha256').update(sql).digest('hex') };
}

export function readMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const migrations = readdirSync(dir)
    .filter((file) => /^\d{4}_[a-z0-9_]+\.sql$/.test(file))
    .sort()
    .map((file) => ({ version: Number(file.slice(0, 4)), name: file.slice(5, -4), file, ...readSql(join(dir, file)) }));
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
 * Every `<domain>/sql/*.sql` under the code root, in path order, but the `triggers.sql` files last: a
 * trigger names its function, which must exist when the trigger is created, while functions may be
 * created in any order (check_function_bodies is off).
 */
export function readRepeatables(root = CODE_ROOT): Repeatable[] {
  const isTriggers = (path: string) => path.endsWith('/triggers.sql');
  return readdirSync(root, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(root, entry.name, 'sql')))
    .flatMap((domain) =>
      readdirSync(join(root, domain.name, 'sql'), { withFileTypes: true })
        .filter((entry) => entry.isFile() && entry.name.endsWith('.sql'))
        .map((entry) => `${domain.name}/sql/${entry.name}`),
    )
    .sort((a, b) => Number(isTriggers(a)) - Number(isTriggers(b)) || (a < b ? -1 : a > b ? 1 : 0))
    .map((path) => ({ path, ...readSql(join(root, path)) }));
}

/**
 * Brings the database to the files, under an advisory lock so that instances starting together apply
 * each thing exactly once (the others wait, then find nothing to do): first the records of a database
 * from before the fold are rewritten, then every applied migration is checked against its file, then
 * the pending migrations run, each in its own transaction, then the repeatable files that changed (all
 * of them after any migration), in one transaction.
 */
export async function migrate(
  database: DatabaseHandle,
  { migrations = readMigrations(), repeatables = readRepeatables() }: { migrations?: Migration[]; repeatables?: Repeatable[] } = {},
): Promise<Applied> {
  return database.withSession(async (session) => {
    // The connection's lock_timeout (src/db/connection.ts) bounds request lock waits; an instance
    // starting while another migrates waits for it, however long its migrations run.
    await session.script('SET lock_timeout = 0');
    await session.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    await session.script('RESET lock_timeout');
    try {
      await adoptRecordsFromBeforeFold(session, migrations);
      await session.script(CREATE_RECORD_TABLES);
      await refuseEditedMigrations(session, migrations);
      const applied = await applyPendingMigrations(session, migrations);
      // A migration may drop what a repeatable file defines (DROP ... CASCADE takes the views and
      // functions that depend on a table or type with it): after any, every file is applied again.
      return { migrations: applied, repeatables: await applyRepeatables(session, repeatables, applied.length > 0) };
    } finally {
      await session.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  });
}

async function inTransaction<T>(session: Session, fn: () => Promise<T>): Promise<T> {
  await session.script('BEGIN');
  try {
    const result = await fn();
    await session.script('COMMIT');
    return result;
  } catch (error) {
    await session.script('ROLLBACK');
    throw error;
  }
}

const short = (checksum: string) => `${checksum.slice(0, 12)}…`;
const numbered = (version: number) => String(version).padStart(4, '0');
const fileOf = (version: number, name: string) => `${numbered(version)}_${name}.sql`;

/**
 * The previous migrator recorded (version, name) without a checksum, one row for each of 0001 to 0015
 * and any later. Those of 0002 to 0015 go (the baseline holds their schema), 0001 takes the
 * baseline's name, and every remaining row takes the checksum of its current file: 0016 and 0017 made
 * the same schema change that their files make now. The table is made anew so that its columns are
 * those of a fresh database.
 */
async function adoptRecordsFromBeforeFold(session: Session, migrations: Migration[]): Promise<void> {
  const [table] = await session.query<{ found: boolean; checksummed: boolean }>(
    `SELECT to_regclass('schema_migrations') IS NOT NULL AS found,
            EXISTS (SELECT FROM pg_attribute
                     WHERE attrelid = to_regclass('schema_migrations') AND attname = 'checksum' AND NOT attisdropped) AS checksummed`,
  );
  if (!table!.found || table!.checksummed) return;
  await inTransaction(session, async () => {
    const rows = await session.query<{ version: number; applied_at: string }>(
      'SELECT version, applied_at::text AS applied_at FROM schema_migrations ORDER BY version',
    );
    const versions = rows.map((row) => Number(row.version));
    if (!versions.includes(LAST_FOLDED_VERSION)) {
      const last = versions.length > 0 ? numbered(Math.max(...versions)) : 'none';
      throw new Error(
        `the database predates the fold of migrations 0001 to ${numbered(LAST_FOLDED_VERSION)} into one (its last migration is ${last}): ` +
          `start it once with a release whose migrations reach ${numbered(LAST_FOLDED_VERSION)} (git commit ${LAST_RELEASE_BEFORE_FOLD}), then with this one`,
      );
    }
    await session.script(`DROP TABLE schema_migrations; ${CREATE_RECORD_TABLES}`);
    const byVersion = new Map(migrations.map((migration) => [migration.version, migration]));
    for (const row of rows) {
      const version = Number(row.version);
      if (version > 1 && version <= LAST_FOLDED_VERSION) continue;
      const migration = byVersion.get(version);
      if (!migration) throw new Error(`migration ${numbered(version)} was applied but its file is missing: restore it`);
      await session.query('INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4::timestamptz)', [
        version,
        migration.name,
        migration.checksum,
        row.applied_at,
      ]);
    }
  });
}

/** An applied migration whose file changed or went away would leave the schema unlike the files say. */
async function refuseEditedMigrations(session: Session, migrations: Migration[]): Promise<void> {
  const rows = await session.query<{ version: number; name: string; checksum: string }>(
    'SELECT version, name, checksum FROM schema_migrations ORDER BY version',
  );
  const byVersion = new Map(migrations.map((migration) => [migration.version, migration]));
  for (const row of rows) {
    const migration = byVersion.get(Number(row.version));
    if (!migration) {
      throw new Error(
        `migration ${fileOf(Number(row.version), row.name)} was applied but its file is missing (recorded sha256 ${short(row.checksum)}): restore it`,
      );
    }
    if (migration.checksum !== row.checksum) {
      throw new Error(
        `migration ${migration.file} changed after it was applied (recorded sha256 ${short(row.checksum)}, file ${short(migration.checksum)}): ` +
          'restore it and put the change in a new migration',
      );
    }
  }
}

async function applyPendingMigrations(session: Session, migrations: Migration[]): Promise<number[]> {
  const rows = await session.query<{ version: number }>('SELECT version FROM schema_migrations');
  const recorded = new Set(rows.map((row) => Number(row.version)));
  const applied: number[] = [];
  for (const migration of migrations) {
    if (recorded.has(migration.version)) continue;
    try {
      await inTransaction(session, async () => {
        await session.script(migration.sql);
        await session.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
          migration.version,
          migration.name,
          migration.checksum,
        ]);
      });
    } catch (error) {
      throw new Error(`migration ${migration.file} failed: ${(error as Error).message}`, { cause: error });
    }
    applied.push(migration.version);
  }
  return applied;
}

/**
 * Applies the files that changed since they were last applied (every file when `all`), in path order,
 * in one transaction, and forgets the records of files that are gone (dropping what such a file
 * defined is a numbered migration's work).
 */
async function applyRepeatables(session: Session, repeatables: Repeatable[], all: boolean): Promise<string[]> {
  return inTransaction(session, async () => {
    // Bodies are checked when called instead of when created, so the files apply in any order: a
    // LANGUAGE sql function may call one that a later file defines (pg_dump restores the same way).
    await session.script('SET LOCAL check_function_bodies = off');
    const rows = await session.query<{ path: string; checksum: string }>('SELECT path, checksum FROM schema_repeatables');
    const recorded = new Map(rows.map((row) => [row.path, row.checksum]));
    const changed = repeatables.filter((file) => all || recorded.get(file.path) !== file.checksum);
    for (const file of changed) {
      try {
        await session.script(file.sql);
      } catch (error) {
        throw new Error(`repeatable ${file.path} failed: ${(error as Error).message}`, { cause: error });
      }
      await session.query(
        `INSERT INTO schema_repeatables (path, checksum) VALUES ($1, $2)
         ON CONFLICT (path) DO UPDATE SET checksum = excluded.checksum, applied_at = now()`,
        [file.path, file.checksum],
      );
    }
    const present = new Set(repeatables.map((file) => file.path));
    for (const path of recorded.keys()) {
      if (!present.has(path)) await session.query('DELETE FROM schema_repeatables WHERE path = $1', [path]);
    }
    return changed.map((file) => file.path);
  });
}
