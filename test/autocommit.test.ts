import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withAutocommit, withTransaction } from '../src/db/transaction.js';
import { createTestDatabase, engine, type TestDatabase } from './helpers/database.js';

/**
 * withAutocommit runs statements outside any transaction block, each its own database transaction (the
 * group commit of transfers sends one, transfer_batch). A statement that fails must leave nothing
 * behind and the connection clean for the next borrower, and a serialization failure is retried.
 */
let database: TestDatabase;

const names = async (): Promise<string[]> =>
  (await database.handle.withSession((session) => session.query<{ name: string }>('SELECT name FROM autocommit_probe ORDER BY name'))).map(
    (row) => row.name,
  );

// Two rows in one statement: all or nothing.
const insertTwo = 'INSERT INTO autocommit_probe (name) VALUES ($1), ($2) RETURNING name';

beforeAll(async () => {
  // A small pool: the connection a failed statement used is the one the next one gets.
  database = await createTestDatabase({ poolSize: 1 });
  await database.handle.withSession((session) =>
    session.script(`
      CREATE TABLE autocommit_probe (name text PRIMARY KEY CHECK (name <> 'refused'));
      -- A sequence counts the attempts: nextval survives the rollback of the attempt that called it.
      CREATE SEQUENCE autocommit_attempt;
      -- Inserts, then fails as a serialization failure the first time, as CockroachDB may at any statement.
      CREATE FUNCTION autocommit_flaky(p_name text) RETURNS integer LANGUAGE plpgsql AS $$
      DECLARE attempt integer := nextval('autocommit_attempt');
      BEGIN
        INSERT INTO autocommit_probe (name) VALUES (p_name);
        IF attempt = 1 THEN
          RAISE EXCEPTION 'could not serialize access' USING ERRCODE = '40001';
        END IF;
        RETURN attempt;
      END $$;
    `),
  );
});
afterAll(async () => {
  await database?.drop();
});

describe(`withAutocommit (${engine})`, () => {
  it('commits each statement on its own and returns what fn returns', async () => {
    const result = await withAutocommit(database.handle, async (session) => {
      const first = await session.query<{ name: string }>(insertTwo, ['a', 'b'], { prepared: true });
      return first.map((row) => row.name);
    });
    expect(result).toEqual(['a', 'b']);
    expect(await names()).toEqual(['a', 'b']);
  });

  it('leaves nothing of a statement that fails, throws its error, and leaves the connection clean', async () => {
    const failure = await withAutocommit(database.handle, (session) =>
      session.query(insertTwo, ['c', 'refused'], { prepared: true }),
    ).catch((error: unknown) => error);
    expect((failure as { code?: string }).code).toBe('23514');
    expect(await names()).toEqual(['a', 'b']);
    // The one pooled connection is out of any transaction: in an aborted one this insert would fail,
    // in an open one its COMMIT would also commit 'c'.
    await withTransaction(database.handle, (tx) => sql`INSERT INTO autocommit_probe (name) VALUES ('d')`.execute(tx));
    expect(await names()).toEqual(['a', 'b', 'd']);
  });

  it.runIf(engine === 'postgres')(
    'prepares each statement once per connection, as named statements (like pgbench -M prepared)',
    async () => {
      const echo = 'SELECT $1::text AS echo';
      const prepared = async () =>
        (
          await database.handle.withSession((session) =>
            session.query<{ statement: string }>('SELECT statement FROM pg_prepared_statements'),
          )
        ).filter((row) => row.statement === echo);
      expect(await prepared()).toHaveLength(0);
      for (const word of ['one', 'two']) {
        const [row] = await withAutocommit(database.handle, (session) => session.query<{ echo: string }>(echo, [word], { prepared: true }));
        expect(row!.echo).toBe(word);
      }
      expect(await prepared()).toHaveLength(1);
    },
  );

  it('runs fn again after a serialization failure, as withTransaction does, and the failed attempt left nothing', async () => {
    const attempt = await withAutocommit(database.handle, async (session) => {
      // The first attempt's insert is rolled back with it, or the second's would violate the primary key.
      const [row] = await session.query<{ attempt: number }>('SELECT autocommit_flaky($1) AS attempt', ['e'], { prepared: true });
      return row!.attempt;
    });
    expect(attempt).toBe(2);
    expect(await names()).toEqual(['a', 'b', 'd', 'e']);
  });
});
