import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase, type DatabaseHandle } from '../src/db/connection.js';
import { migrate, readMigrations } from '../src/db/migrate.js';
import { createTestDatabase, engine } from './helpers/database.js';

const serverUrl = process.env.TEST_DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/postgres';
const versions = readMigrations().map((migration) => migration.version);

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function onServer(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** An empty database, never migrated, and `count` handles on it (one handle on PGlite: it has one session). */
async function freshDatabase(count: number): Promise<DatabaseHandle[]> {
  if (engine === 'pglite') {
    const handle = await openDatabase({ databaseUrl: undefined, dataDir: 'memory://' });
    cleanups.push(() => handle.close());
    return Array.from({ length: count }, () => handle);
  }
  const name = `bank_test_${randomBytes(6).toString('hex')}`;
  await onServer(`CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const handles = Array.from({ length: count }, () => openDatabase({ databaseUrl: url.toString(), dataDir: '', poolSize: 2 }));
  const opened = await Promise.all(handles);
  cleanups.push(async () => {
    await Promise.all(opened.map((handle) => handle.close()));
    await onServer(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  });
  return opened;
}

async function appliedVersions(handle: DatabaseHandle): Promise<number[]> {
  const rows = await handle.withSession((session) => session.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version'));
  return rows.map((row) => Number(row.version));
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
    expect(readMigrations(`${dir}/`).map((migration) => migration.version)).toEqual([1, 2]);
    writeFileSync(join(dir, '0002_old_name.sql'), 'SELECT 2;');
    expect(() => readMigrations(`${dir}/`)).toThrow(/migrations old_name and renamed in .* share version 2/);
  });

  it('ships, on every build, exactly the migrations of src/: one renamed or removed there does not linger in dist/', () => {
    const project = mkdtempSync(join(tmpdir(), 'build-'));
    cleanups.push(async () => rmSync(project, { recursive: true, force: true }));
    mkdirSync(join(project, 'src/db/migrations'), { recursive: true });
    mkdirSync(join(project, 'dist/db/migrations'), { recursive: true });
    writeFileSync(join(project, 'src/db/migrations/0001_new_name.sql'), 'SELECT 1;');
    writeFileSync(join(project, 'dist/db/migrations/0001_old_name.sql'), 'SELECT 1;');
    execFileSync(process.execPath, [join(import.meta.dirname, '../scripts/copy-migrations.mjs')], { cwd: project });
    expect(readdirSync(join(project, 'dist/db/migrations'))).toEqual(['0001_new_name.sql']);
  });

  it('applies nothing when run again on a migrated database', async () => {
    const database = await createTestDatabase();
    cleanups.push(() => database.drop());
    expect(await migrate(database.handle)).toEqual([]);
    expect(await migrate(database.handle)).toEqual([]);
    expect(await appliedVersions(database.handle)).toEqual(versions);
  });

  it('runs the transfer batch, the ledger writer and the token lookup with generic plans, rows found by key and no JIT (0009 to 0015)', async () => {
    const database = await createTestDatabase();
    cleanups.push(() => database.drop());
    const settings = await database.handle.withSession((session) =>
      session.query<{ proname: string; proconfig: string[] }>(
        `SELECT proname, proconfig FROM pg_proc
          WHERE proname IN ('transfer_batch', 'idempotency_record', 'ledger_post', 'active_access_tokens') ORDER BY proname`,
      ),
    );
    const byKey = ['plan_cache_mode=force_generic_plan', 'enable_seqscan=off', 'enable_hashjoin=off', 'enable_mergejoin=off'];
    expect(settings).toEqual([
      { proname: 'active_access_tokens', proconfig: [...byKey, 'jit=off'] },
      { proname: 'idempotency_record', proconfig: ['jit=off'] },
      { proname: 'ledger_post', proconfig: [...byKey, 'jit=off'] },
      { proname: 'transfer_batch', proconfig: ['plan_cache_mode=force_generic_plan', 'enable_seqscan=off', 'enable_bitmapscan=off', 'enable_hashjoin=off', 'enable_mergejoin=off', 'jit=off'] },
    ]);
  });

  it('applies each migration exactly once when three instances migrate one fresh database at the same time', async () => {
    const handles = await freshDatabase(3);
    const results = await Promise.all(handles.map((handle) => migrate(handle)));
    // Every call succeeded; between them they applied every version once, the others found nothing to do.
    expect(results.flat().sort((a, b) => a - b)).toEqual(versions);
    expect(results.filter((applied) => applied.length > 0)).toHaveLength(1);
    expect(await appliedVersions(handles[0]!)).toEqual(versions);
    const rows = await handles[0]!.withSession((session) =>
      session.query<{ version: number; n: number }>('SELECT version, count(*)::int AS n FROM schema_migrations GROUP BY version'),
    );
    for (const row of rows) expect(Number(row.n)).toBe(1);
    // And once more, from any instance: nothing left.
    expect(await migrate(handles[2]!)).toEqual([]);
  });

  it('0008 fills daily_outflows from the transfers already there: per sender and UTC day, those that count', async () => {
    const [handle] = await freshDatabase(1);
    const all = readMigrations();
    await migrate(handle!, all.filter((migration) => migration.version < 8));
    await handle!.withSession((session) =>
      session.script(`
        INSERT INTO users (id, name, email, password_hash, role) VALUES
          ('00000000-0000-4000-8000-000000000001', 'A', 'a@bank.test', 'x', 'customer'),
          ('00000000-0000-4000-8000-000000000002', 'B', 'b@bank.test', 'x', 'customer');
        INSERT INTO accounts (id, account_number, user_id, type, currency, daily_limit) VALUES
          ('00000000-0000-4000-8000-00000000000a', '1000000001', '00000000-0000-4000-8000-000000000001', 'checking', 'USD', 100000),
          ('00000000-0000-4000-8000-00000000000b', '1000000002', '00000000-0000-4000-8000-000000000002', 'checking', 'USD', 100000);
        INSERT INTO transactions (type, status, amount, currency, from_account_id, to_account_id, created_by, created_at)
        SELECT 'transfer', status, amount, 'USD', '00000000-0000-4000-8000-00000000000a', '00000000-0000-4000-8000-00000000000b',
               '00000000-0000-4000-8000-000000000001', at::timestamptz
          FROM (VALUES ('completed', 100, '2026-03-01 23:59:59Z'), ('pending_review', 20, '2026-03-01 00:00:00Z'),
                       ('rejected', 4000, '2026-03-01 12:00:00Z'), ('completed', 3, '2026-03-02 00:00:00Z')) AS t(status, amount, at);
        INSERT INTO transactions (type, status, amount, currency, from_account_id, to_account_id, created_by, created_at)
        VALUES ('withdrawal', 'completed', 50000, 'USD', '00000000-0000-4000-8000-00000000000a', '00000000-0000-4000-8000-00000000000b',
                '00000000-0000-4000-8000-000000000001', '2026-03-01 10:00:00Z');
      `),
    );
    expect(await migrate(handle!, all)).toEqual(all.filter((migration) => migration.version >= 8).map((migration) => migration.version));
    const rows = await handle!.withSession((session) =>
      session.query<{ day: string; amount: string }>('SELECT day::text AS day, amount::text AS amount FROM daily_outflows ORDER BY day'),
    );
    expect(rows).toEqual([
      { day: '2026-03-01', amount: '120' },
      { day: '2026-03-02', amount: '3' },
    ]);
  });
});
