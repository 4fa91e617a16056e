/**
 * schema.sql: the database's schema as the migrations and the repeatable SQL files leave it, dumped by
 * pg_dump from a fresh PostgreSQL database, so that a reviewer reads the whole database in one file.
 * `npm run db:schema` writes it; test/schema-file.postgres.test.ts fails when it is out of date.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { openDatabase } from '../src/db/connection.js';
import { migrate, readRepeatables } from '../src/db/migrate.js';

export const SCHEMA_FILE = fileURLToPath(new URL('../schema.sql', import.meta.url));

/** Where each function's one definition lives: `name` -> `ledger/sql/name.sql` (a file is named for its function). */
const definitionFiles = new Map(readRepeatables().map((file) => [basename(file.path, '.sql'), file.path]));

/**
 * pg_dump's schema-only output in a stable form: without the `\restrict` lines, whose key is random on
 * every run, and without the lines that name the versions of the server and of pg_dump. A function's
 * body is replaced by the file that defines it: the signature, language and settings stay here, in the
 * one file that shows the whole database, and the body has one home.
 */
export function stableSchemaDump(dump: string): string {
  return dump
    .split('\n')
    .filter((line) => !/^\\(un)?restrict\b/.test(line) && !/^-- Dumped (from|by) /.test(line))
    .join('\n')
    .replace(/(CREATE FUNCTION public\.(\w+)\([\s\S]*?\n    AS )\$(\w*)\$[\s\S]*?\$\3\$;/g, (whole, head: string, name: string) => {
      const file = definitionFiles.get(name);
      return file ? `${head}$$ -- body: src/${file} $$;` : whole;
    })
    .replace(/\n{3,}/g, '\n\n');
}

/** The stable schema-only dump of the database at `url`. */
export function dumpSchema(url: string): string {
  return stableSchemaDump(
    execFileSync('pg_dump', ['--schema-only', '--no-owner', '--no-privileges', url], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }),
  );
}

/** Migrates a new database on the server at `serverUrl`, dumps its schema, and drops it. */
export async function dumpFreshSchema(serverUrl: string): Promise<string> {
  const name = `schema_dump_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
    const url = new URL(serverUrl);
    url.pathname = `/${name}`;
    try {
      const database = await openDatabase({ databaseUrl: url.toString(), dataDir: '' });
      try {
        await migrate(database);
      } finally {
        await database.close();
      }
      return dumpSchema(url.toString());
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  } finally {
    await admin.end();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const serverUrl = process.env.DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/postgres';
  writeFileSync(SCHEMA_FILE, await dumpFreshSchema(serverUrl));
  console.log(`wrote ${SCHEMA_FILE}`);
}
