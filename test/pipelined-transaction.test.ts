import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withPipelinedTransaction, withTransaction } from '../src/db/transaction.js';
import { createTestDatabase, engine, type TestDatabase } from './helpers/database.js';

/**
 * withPipelinedTransaction sends BEGIN with the first statement and COMMIT with the last, without
 * waiting in between (pg's pipeline mode on PostgreSQL). Whatever fails, the transaction must end
 * exactly as an awaited BEGIN ... COMMIT would: all or nothing, and the connection clean for the next
 * borrower.
 */
let database: TestDatabase;

const names = async (): Promise<string[]> =>
  (await database.handle.withSession((session) => session.query<{ name: string }>('SELECT name FROM pipelined_probe ORDER BY name'))).map((row) => row.name);

const insert = 'INSERT INTO pipelined_probe (name) VALUES ($1) RETURNING name';

beforeAll(async () => {
  // A small pool: the connection a failed transaction used is the one the next one gets.
  database = await createTestDatabase({ poolSize: 1 });
  await database.handle.withSession((session) =>
    session.script(`
      CREATE TABLE pipelined_probe (name text PRIMARY KEY CHECK (name <> 'refused'));
      -- A sequence counts the attempts: nextval survives the rollback of the attempt that called it.
      CREATE SEQUENCE pipelined_attempt;
      -- Fails as a serialization failure the first time, as CockroachDB may at any statement.
      CREATE FUNCTION pipelined_flaky() RETURNS integer LANGUAGE plpgsql AS $$
      DECLARE attempt integer := nextval('pipelined_attempt');
      BEGIN
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

describe(`withPipelinedTransaction (${engine})`, () => {
  it('commits the statements of fn, first and last, and returns what fn returns', async () => {
    const result = await withPipelinedTransaction(database.handle, async (tx) => {
      const [first] = await tx.query<{ name: string }>(insert, ['a']);
      const [last] = await tx.commitWith<{ name: string }>(insert, ['b']);
      return [first!.name, last!.name];
    });
    expect(result).toEqual(['a', 'b']);
    expect(await names()).toEqual(['a', 'b']);
  });

  it('rolls everything back when the last statement fails, throws its error, and leaves the connection clean', async () => {
    const failure = await withPipelinedTransaction(database.handle, async (tx) => {
      await tx.query(insert, ['c']);
      await tx.commitWith(insert, ['refused']);
    }).catch((error: unknown) => error);
    expect((failure as { code?: string }).code).toBe('23514');
    expect(await names()).toEqual(['a', 'b']);
    // The one pooled connection is out of any transaction: in an aborted one this insert would fail,
    // in an open one its COMMIT would also commit 'c'.
    await withTransaction(database.handle, (tx) => sql`INSERT INTO pipelined_probe (name) VALUES ('d')`.execute(tx));
    expect(await names()).toEqual(['a', 'b', 'd']);
  });

  it('rolls back when fn throws after a statement, and when a statement before the last fails', async () => {
    await expect(
      withPipelinedTransaction(database.handle, async (tx) => {
        await tx.query(insert, ['e']);
        throw new Error('changed its mind');
      }),
    ).rejects.toThrow('changed its mind');
    await expect(
      withPipelinedTransaction(database.handle, async (tx) => {
        await tx.query(insert, ['f']);
        await tx.query(insert, ['refused']);
        await tx.commitWith(insert, ['g']);
      }),
    ).rejects.toMatchObject({ code: '23514' });
    expect(await names()).toEqual(['a', 'b', 'd']);
  });

  it('commits after fn when fn never calls commitWith', async () => {
    await withPipelinedTransaction(database.handle, async (tx) => {
      await tx.query(insert, ['h']);
    });
    expect(await names()).toEqual(['a', 'b', 'd', 'h']);
  });

  it.runIf(engine === 'postgres')('prepares each statement once per connection, as named statements (like pgbench -M prepared)', async () => {
    const echo = 'SELECT $1::text AS echo';
    const prepared = async () =>
      (await database.handle.withSession((session) => session.query<{ statement: string }>('SELECT statement FROM pg_prepared_statements'))).filter(
        (row) => row.statement === echo,
      );
    expect(await prepared()).toHaveLength(0);
    for (const word of ['one', 'two']) {
      const [row] = await withPipelinedTransaction(database.handle, (tx) => tx.commitWith<{ echo: string }>(echo, [word]));
      expect(row!.echo).toBe(word);
    }
    expect(await prepared()).toHaveLength(1);
  });

  it('runs the whole transaction again after a serialization failure, as withTransaction does', async () => {
    const attempt = await withPipelinedTransaction(database.handle, async (tx) => {
      // The first attempt's insert is rolled back, or the second's would violate the primary key.
      await tx.query(insert, ['i']);
      const [row] = await tx.commitWith<{ attempt: number }>('SELECT pipelined_flaky() AS attempt', []);
      return row!.attempt;
    });
    expect(attempt).toBe(2);
    expect(await names()).toEqual(['a', 'b', 'd', 'h', 'i']);
  });
});
