/**
 * schema.sql is the schema as the migrations and the repeatable SQL files leave it: a change to either
 * that is not in schema.sql (or the other way round) fails here. `npm run db:schema` rewrites it.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { dumpFreshSchema, SCHEMA_FILE } from '../scripts/schema.js';

const serverUrl = process.env.TEST_DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/postgres';

describe('schema.sql', () => {
  it('is what the migrations and the repeatable files make of a fresh database', async () => {
    const fresh = await dumpFreshSchema(serverUrl);
    const committed = readFileSync(SCHEMA_FILE, 'utf8');
    expect(fresh === committed, 'schema.sql is out of date: run `npm run db:schema` and review the difference').toBe(true);
  });
});
