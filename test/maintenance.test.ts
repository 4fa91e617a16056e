import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maintainLikeAutovacuum, scheduleMaintenance } from '../src/db/maintenance.js';
import { testApp, type Customer, type TestApp } from './helpers/app.js';
import { engine } from './helpers/database.js';
import { insertBulkHistory } from './helpers/ledger-history.js';

// PGlite has no autovacuum, so the service keeps its statistics itself; on a PostgreSQL server
// autovacuum does, and the scheduled maintenance does nothing there.
describe.runIf(engine === 'pglite')('table maintenance on PGlite (autovacuum stand-in)', () => {
  let bank: TestApp;
  let alice: Customer;
  let bob: Customer;

  const statistics = async (table: string) => {
    const { rows } = await sql<{ reltuples: number; analysed: boolean }>`
      SELECT c.reltuples::float8 AS reltuples, s.last_analyze IS NOT NULL AS analysed
        FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid
       WHERE c.relname = ${table}`.execute(bank.database.handle.db);
    return rows[0]!;
  };

  beforeAll(async () => {
    bank = await testApp();
    alice = await bank.customer('1000.00');
    bob = await bank.customer('1000.00');
  });
  afterAll(() => bank.close());

  it('analyses the tables that changed past autovacuum thresholds, then nothing until they change again', async () => {
    await maintainLikeAutovacuum(bank.database.handle);
    await insertBulkHistory(bank.database.handle, alice.account, { count: 2_000, start: '2026-01-01T00:00:00Z', stepSeconds: 60 });

    const ran = await maintainLikeAutovacuum(bank.database.handle);

    expect(ran).toEqual(expect.arrayContaining([expect.stringMatching(/^(VACUUM \(ANALYZE\)|ANALYZE) public\.journal_entries$/)]));
    expect(ran).toEqual(expect.arrayContaining([expect.stringMatching(/^(VACUUM \(ANALYZE\)|ANALYZE) public\.transactions$/)]));
    expect(await statistics('journal_entries')).toMatchObject({ analysed: true, reltuples: expect.any(Number) });
    expect((await statistics('journal_entries')).reltuples).toBeGreaterThanOrEqual(4_000);
    expect(await maintainLikeAutovacuum(bank.database.handle)).toEqual([]);
  });

  // Fixed bug: only the application's tables were looked at, so the catalogs (the rows each ANALYZE
  // replaces in pg_statistic) were never vacuumed, nor frozen, and the database's oldest unfrozen
  // transaction never moved.
  it('vacuums the system catalogs too: the statistics rows its own ANALYZE runs replace', async () => {
    await maintainLikeAutovacuum(bank.database.handle);
    await bank.database.handle.withSession(async (session) => {
      for (let i = 0; i < 4; i++) await session.script('ANALYZE');
    });

    expect(await maintainLikeAutovacuum(bank.database.handle)).toContain('VACUUM (ANALYZE) pg_catalog.pg_statistic');
  });

  it('shares the one session with requests: transfers made while it runs all complete', async () => {
    await insertBulkHistory(bank.database.handle, bob.account, { count: 2_000, start: '2026-02-01T00:00:00Z', stepSeconds: 60 });
    const transfer = () =>
      alice.post('/transactions/transfer', {
        from_account: alice.account.account_number,
        to_account: bob.account.account_number,
        amount: '1.00',
      });

    const [maintained, ...answers] = await Promise.all([
      maintainLikeAutovacuum(bank.database.handle),
      ...Array.from({ length: 10 }, transfer),
    ]);

    expect(maintained.length).toBeGreaterThan(0);
    expect(answers.map((a) => a.statusCode)).toEqual(Array(10).fill(201));
  });

  it('runs on its schedule in the service', async () => {
    await insertBulkHistory(bank.database.handle, alice.account, { count: 4_000, start: '2026-03-01T00:00:00Z', stepSeconds: 60 });
    const before = (await statistics('journal_entries')).reltuples;
    const failures: unknown[] = [];
    const stop = scheduleMaintenance(bank.database.handle, 20, (error) => failures.push(error));
    try {
      await expect
        .poll(async () => (await statistics('journal_entries')).reltuples, { timeout: 10_000 })
        .toBeGreaterThanOrEqual(before + 8_000);
    } finally {
      stop();
    }
    expect(failures).toEqual([]);
  });
});
