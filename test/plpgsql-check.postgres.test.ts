/**
 * plpgsql_check (Debian's postgresql-15-plpgsql-check) is to PL/pgSQL what tsc is to TypeScript: it
 * checks every PL/pgSQL function of a migrated database, each trigger function against each table it is
 * a trigger of, for errors (a column that does not exist, a wrong type) and warnings (an implicit cast,
 * a path without RETURN, a variable never read). None is allowed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';

interface Finding {
  function_name: string;
  table_name: string | null;
  level: string;
  lineno: number | null;
  statement: string | null;
  message: string;
  detail: string | null;
}

let database: TestDatabase;
let available = false;

beforeAll(async () => {
  database = await createTestDatabase();
  const [row] = await database.handle.withSession((session) =>
    session.query<{ found: boolean }>(`SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'plpgsql_check') AS found`),
  );
  available = row!.found;
  if (!available && process.env.CI === 'true')
    throw new Error('plpgsql_check is not installed (apt-get install postgresql-15-plpgsql-check) and CI=true');
  if (!available) console.warn('\n*** plpgsql_check is not installed: the PL/pgSQL check is SKIPPED ***\n');
  if (available) await database.handle.withSession((session) => session.script('CREATE EXTENSION IF NOT EXISTS plpgsql_check'));
});

afterAll(() => database.drop());

describe('plpgsql_check over every PL/pgSQL function', () => {
  it('finds no error and no warning', async (context) => {
    if (!available) context.skip();
    const findings = await database.handle.withSession((session) =>
      session.query<Finding>(`
        WITH targets AS (
          SELECT p.oid AS fn, 0::oid AS rel FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
           WHERE l.lanname = 'plpgsql' AND p.pronamespace = 'public'::regnamespace AND p.prorettype <> 'trigger'::regtype
          UNION ALL
          SELECT DISTINCT t.tgfoid, t.tgrelid FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
           WHERE p.pronamespace = 'public'::regnamespace AND NOT t.tgisinternal)
        SELECT x.fn::regproc::text AS function_name, nullif(x.rel, 0)::regclass::text AS table_name,
               r.level, r.lineno, r.statement, r.message, r.detail
          FROM targets x
         CROSS JOIN LATERAL plpgsql_check_function_tb(x.fn, x.rel, fatal_errors := false, extra_warnings := true) r`),
    );
    expect(findings).toEqual([]);
  });
});
