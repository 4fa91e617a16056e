import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DatabaseHandle } from '../src/db/connection.js';
import { migrate, readMigrations, readRepeatables } from '../src/db/migrate.js';
import { createEmptyDatabase, createTestDatabase, engine } from './helpers/database.js';

/** The project's own migrations and repeatable files; test/migrator.test.ts tests the rules on small fixtures. */
const versions = readMigrations().map((migration) => migration.version);
const repeatablePaths = readRepeatables().map((file) => file.path);
// schema_repeatables read back in path order, not in the order the files apply (triggers last).
const recordedPaths = [...repeatablePaths].sort();

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function recorded(handle: DatabaseHandle): Promise<{ versions: number[]; paths: string[] }> {
  return handle.withSession(async (session) => ({
    versions: (await session.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version')).map((row) =>
      Number(row.version),
    ),
    paths: (await session.query<{ path: string }>('SELECT path FROM schema_repeatables ORDER BY path')).map((row) => row.path),
  }));
}

describe(`migrations (${engine})`, () => {
  it('has migrations, numbered without duplicates', () => {
    expect(versions.length).toBeGreaterThan(0);
    expect(new Set(versions).size).toBe(versions.length);
  });

  it('refuses a directory holding two migrations of one version, before touching any database', () => {
    const dir = mkdtempSync(join(tmpdir(), 'migrations-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, '0001_first.sql'), 'SELECT 1;');
    writeFileSync(join(dir, '0002_renamed.sql'), 'SELECT 2;');
    expect(readMigrations(dir).map((migration) => migration.version)).toEqual([1, 2]);
    writeFileSync(join(dir, '0002_old_name.sql'), 'SELECT 2;');
    expect(() => readMigrations(dir)).toThrow(/migrations old_name and renamed in .* share version 2/);
  });

  it('ships, on every build, exactly the SQL of src/: a file renamed or removed there does not linger in dist/', () => {
    const project = mkdtempSync(join(tmpdir(), 'build-'));
    cleanups.push(async () => rmSync(project, { recursive: true, force: true }));
    const write = (path: string) => {
      mkdirSync(join(project, path, '..'), { recursive: true });
      writeFileSync(join(project, path), 'SELECT 1;');
    };
    write('src/db/migrations/0001_new_name.sql');
    write('dist/db/migrations/0001_old_name.sql');
    write('src/ledger/sql/ledger_post.sql');
    write('dist/ledger/sql/ledger_apply.sql');
    write('src/auth/sql/active_access_tokens.sql');
    // A domain whose last repeatable file went away, and its compiled code, which is tsc's to replace.
    write('dist/loans/sql/loan_schedule.sql');
    write('dist/loans/service.js');
    execFileSync(process.execPath, [join(import.meta.dirname, '../scripts/copy-migrations.mjs')], { cwd: project });
    expect(readdirSync(join(project, 'dist/db/migrations'))).toEqual(['0001_new_name.sql']);
    expect(readdirSync(join(project, 'dist/ledger/sql'))).toEqual(['ledger_post.sql']);
    expect(readdirSync(join(project, 'dist/auth/sql'))).toEqual(['active_access_tokens.sql']);
    expect(readdirSync(join(project, 'dist/loans'))).toEqual(['service.js']);
  });

  it('applies nothing when run again on a migrated database', async () => {
    const database = await createTestDatabase();
    cleanups.push(() => database.drop());
    expect(await migrate(database.handle)).toEqual({ migrations: [], repeatables: [] });
    expect(await migrate(database.handle)).toEqual({ migrations: [], repeatables: [] });
    expect(await recorded(database.handle)).toEqual({ versions, paths: recordedPaths });
  });

  it('applies each migration and each repeatable file exactly once when three instances migrate one fresh database at the same time', async () => {
    const database = await createEmptyDatabase(3);
    cleanups.push(() => database.drop());
    const results = await Promise.all(database.handles.map((handle) => migrate(handle)));
    // Every call succeeded; one applied everything, the others waited for it and found nothing to do.
    expect(results.filter((applied) => applied.migrations.length > 0 || applied.repeatables.length > 0)).toEqual([
      { migrations: versions, repeatables: repeatablePaths },
    ]);
    expect(await recorded(database.handles[0]!)).toEqual({ versions, paths: recordedPaths });
    // And once more, from any instance: nothing left.
    expect(await migrate(database.handles[2]!)).toEqual({ migrations: [], repeatables: [] });
  });
});
