import { readFileSync } from 'node:fs';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, engine, type TestDatabase } from './helpers/database.js';

/**
 * src/db/schema.ts types the database by hand, for what a generator (kysely-codegen) would not say: that
 * BIGINT arrives as bigint (connection.ts parses it so), which columns the database fills in
 * (Generated), what the text columns may hold (the CHECKs' values as unions), and why. This test keeps
 * it true: the tables and columns it names are exactly those of a migrated database, and each column
 * that may be NULL there is typed with null.
 */
function typedTables(): Map<string, Map<string, boolean>> {
  const source = ts.createSourceFile('schema.ts', readFileSync('src/db/schema.ts', 'utf8'), ts.ScriptTarget.ES2022, true);
  const interfaces = new Map<string, ts.InterfaceDeclaration>();
  source.forEachChild((node) => {
    if (ts.isInterfaceDeclaration(node)) interfaces.set(node.name.text, node);
  });
  const tables = new Map<string, Map<string, boolean>>();
  for (const member of interfaces.get('Database')!.members) {
    if (!ts.isPropertySignature(member) || !member.type || !ts.isTypeReferenceNode(member.type)) continue;
    const table = interfaces.get(member.type.typeName.getText(source))!;
    const columns = new Map<string, boolean>();
    for (const column of table.members) {
      if (!ts.isPropertySignature(column) || !column.type) continue;
      // Nullable when its type (inside Generated<>, or the select type of a ColumnType) is a union with
      // null or Json (which holds null) among its members.
      const written = column.type.getText(source);
      const type = written.startsWith('Generated<') ? written.slice('Generated<'.length, -1) : written;
      const selected = type.startsWith('ColumnType<') ? type.slice('ColumnType<'.length).split(',')[0]! : type;
      const members = selected.split('|').map((member) => member.trim());
      columns.set(column.name.getText(source), members.includes('null') || members.includes('Json'));
    }
    tables.set(member.name.getText(source), columns);
  }
  return tables;
}

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase({ poolSize: 1 });
});
afterAll(async () => {
  await database?.drop();
});

describe(`src/db/schema.ts against the migrated database (${engine})`, () => {
  it('names every table and column the migrations make, each nullable exactly where the database allows NULL', async () => {
    const rows = await database.handle.withSession((session) =>
      session.query<{ table_name: string; column_name: string; is_nullable: 'YES' | 'NO' }>(
        `SELECT table_name, column_name, is_nullable FROM information_schema.columns
          WHERE table_schema = 'public' AND table_name NOT IN ('schema_migrations', 'schema_repeatables')
          ORDER BY table_name, column_name`,
      ),
    );
    const inDatabase = new Map<string, Map<string, boolean>>();
    for (const row of rows) {
      if (!inDatabase.has(row.table_name)) inDatabase.set(row.table_name, new Map());
      inDatabase.get(row.table_name)!.set(row.column_name, row.is_nullable === 'YES');
    }
    const sorted = (tables: Map<string, Map<string, boolean>>) =>
      Object.fromEntries(
        [...tables].sort(([a], [b]) => a.localeCompare(b)).map(([table, columns]) => [table, Object.fromEntries([...columns].sort())]),
      );
    expect(sorted(typedTables())).toEqual(sorted(inDatabase));
  });
});
