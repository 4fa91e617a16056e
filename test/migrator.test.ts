import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DatabaseHandle } from '../src/db/connection.js';
import { migrate, readMigrations, readRepeatables } from '../src/db/migrate.js';
import { createEmptyDatabase, engine } from './helpers/database.js';

/**
 * The migrator's rules, on small migrations and repeatable files that each test writes into a code root
 * of its own (db/migrations/ and <domain>/sql/, as in src/ and dist/), on a database never migrated.
 */

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

class CodeRoot {
  readonly dir = mkdtempSync(join(tmpdir(), 'migrator-'));

  constructor(files: Record<string, string>) {
    cleanups.push(async () => rmSync(this.dir, { recursive: true, force: true }));
    for (const [path, text] of Object.entries(files)) this.write(path, text);
  }

  write(path: string, text: string): void {
    mkdirSync(dirname(join(this.dir, path)), { recursive: true });
    writeFileSync(join(this.dir, path), text);
  }

  remove(path: string): void {
    rmSync(join(this.dir, path));
  }

  /** What migrate() reads from it, read afresh (as a new start would). */
  get sources() {
    return { migrations: readMigrations(join(this.dir, 'db/migrations')), repeatables: readRepeatables(this.dir) };
  }
}

async function emptyDatabase(count = 1): Promise<DatabaseHandle[]> {
  const database = await createEmptyDatabase(count);
  cleanups.push(() => database.drop());
  return database.handles;
}

function query<R>(handle: DatabaseHandle, sql: string): Promise<R[]> {
  return handle.withSession((session) => session.query<R>(sql));
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

const FIRST = 'CREATE TABLE things (id integer PRIMARY KEY, label text NOT NULL);\n';
const SECOND = 'ALTER TABLE things ADD COLUMN weight integer;\n';
// thing_label calls label_prefix, which a later file defines: it applies only with bodies unchecked.
const LABELS = `CREATE OR REPLACE FUNCTION thing_label(p_id integer) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT label_prefix() || label FROM things WHERE id = p_id
$$;\n`;
const VIEWS = 'CREATE OR REPLACE VIEW labelled_things AS SELECT id, thing_label(id) AS label FROM things;\n';
const prefix = (text: string) =>
  `CREATE OR REPLACE FUNCTION label_prefix() RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT '${text}' $$;\n`;
const REPEATABLES = {
  'alpha/sql/labels.sql': LABELS,
  'alpha/sql/views.sql': VIEWS,
  'zeta/sql/prefix.sql': prefix('thing: '),
};
const ALL_PATHS = ['alpha/sql/labels.sql', 'alpha/sql/views.sql', 'zeta/sql/prefix.sql'];
const NOTHING = { migrations: [], repeatables: [] };

async function labels(handle: DatabaseHandle): Promise<string[]> {
  return (await query<{ label: string }>(handle, 'SELECT label FROM labelled_things ORDER BY id')).map((row) => row.label);
}

describe(`numbered migrations are checksummed (${engine})`, () => {
  it('records each with the SHA-256 of its file, and a CRLF checkout of the same file is no change', async () => {
    const code = new CodeRoot({ 'db/migrations/0001_first.sql': FIRST, 'db/migrations/0002_second.sql': SECOND });
    const [handle] = await emptyDatabase();
    expect(await migrate(handle!, code.sources)).toEqual({ migrations: [1, 2], repeatables: [] });
    expect(await query(handle!, 'SELECT version, name, checksum FROM schema_migrations ORDER BY version')).toEqual([
      { version: 1, name: 'first', checksum: sha256(FIRST) },
      { version: 2, name: 'second', checksum: sha256(SECOND) },
    ]);
    code.write('db/migrations/0001_first.sql', FIRST.replace(/\n/g, '\r\n'));
    expect(await migrate(handle!, code.sources)).toEqual(NOTHING);
  });

  it('stops the start, in one line naming the file, when an applied migration changed, and applies nothing', async () => {
    const code = new CodeRoot({ 'db/migrations/0001_first.sql': FIRST });
    const [handle] = await emptyDatabase();
    await migrate(handle!, code.sources);
    const edited = FIRST.replace('label text', 'label varchar(100)');
    code.write('db/migrations/0001_first.sql', edited);
    code.write('db/migrations/0002_second.sql', SECOND);
    const refusal = await migrate(handle!, code.sources).catch((error: Error) => error);
    expect((refusal as Error).message).toBe(
      `migration 0001_first.sql changed after it was applied (recorded sha256 ${sha256(FIRST).slice(0, 12)}…, ` +
        `file ${sha256(edited).slice(0, 12)}…): restore it and put the change in a new migration`,
    );
    expect(await query(handle!, 'SELECT version FROM schema_migrations')).toEqual([{ version: 1 }]);
  });

  it('stops the start, in one line naming the file, when an applied migration is missing', async () => {
    const code = new CodeRoot({ 'db/migrations/0001_first.sql': FIRST, 'db/migrations/0002_second.sql': SECOND });
    const [handle] = await emptyDatabase();
    await migrate(handle!, code.sources);
    code.remove('db/migrations/0002_second.sql');
    await expect(migrate(handle!, code.sources)).rejects.toThrow(
      new Error(
        `migration 0002_second.sql was applied but its file is missing (recorded sha256 ${sha256(SECOND).slice(0, 12)}…): restore it`,
      ),
    );
  });
});

describe(`repeatable files (${engine})`, () => {
  it('applies every file on a fresh database, in path order, and a function may call one of a later file', async () => {
    const code = new CodeRoot({ 'db/migrations/0001_first.sql': FIRST, ...REPEATABLES });
    const [handle] = await emptyDatabase();
    expect(await migrate(handle!, code.sources)).toEqual({ migrations: [1], repeatables: ALL_PATHS });
    await query(handle!, "INSERT INTO things (id, label) VALUES (1, 'a')");
    expect(await labels(handle!)).toEqual(['thing: a']);
    expect(await query(handle!, 'SELECT path, checksum FROM schema_repeatables ORDER BY path')).toEqual(
      ALL_PATHS.map((path) => ({ path, checksum: sha256(REPEATABLES[path as keyof typeof REPEATABLES]) })),
    );
  });

  it('applies nothing when nothing changed, then only the file that changed, whose new definition is live', async () => {
    const code = new CodeRoot({ 'db/migrations/0001_first.sql': FIRST, ...REPEATABLES });
    const [handle] = await emptyDatabase();
    await migrate(handle!, code.sources);
    await query(handle!, "INSERT INTO things (id, label) VALUES (1, 'a')");
    expect(await migrate(handle!, code.sources)).toEqual(NOTHING);
    code.write('zeta/sql/prefix.sql', prefix('item: '));
    expect(await migrate(handle!, code.sources)).toEqual({ migrations: [], repeatables: ['zeta/sql/prefix.sql'] });
    expect(await labels(handle!)).toEqual(['item: a']);
    expect(await migrate(handle!, code.sources)).toEqual(NOTHING);
  });

  it('forgets the record of a file that is gone, and leaves what it defined to a numbered migration to drop', async () => {
    const code = new CodeRoot({ 'db/migrations/0001_first.sql': FIRST, ...REPEATABLES });
    const [handle] = await emptyDatabase();
    await migrate(handle!, code.sources);
    code.remove('alpha/sql/views.sql');
    expect(await migrate(handle!, code.sources)).toEqual(NOTHING);
    expect(await query(handle!, 'SELECT path FROM schema_repeatables ORDER BY path')).toEqual([
      { path: 'alpha/sql/labels.sql' },
      { path: 'zeta/sql/prefix.sql' },
    ]);
    expect(await labels(handle!)).toEqual([]);
    code.write('db/migrations/0002_drop_labelled_things.sql', 'DROP VIEW labelled_things;\n');
    await migrate(handle!, code.sources);
    expect(await query(handle!, "SELECT to_regclass('labelled_things') IS NULL AS gone")).toEqual([{ gone: true }]);
  });

  it('applies every file again after a numbered migration, which may have dropped what an unchanged file defines', async () => {
    const code = new CodeRoot({ 'db/migrations/0001_first.sql': FIRST, ...REPEATABLES });
    const [handle] = await emptyDatabase();
    await migrate(handle!, code.sources);
    // PostgreSQL changes no column type that a view reads: the migration drops the view, its file stays as it was.
    code.write(
      'db/migrations/0002_shorter_labels.sql',
      'DROP VIEW labelled_things;\nALTER TABLE things ALTER COLUMN label TYPE varchar(100);\n',
    );
    expect(await migrate(handle!, code.sources)).toEqual({ migrations: [2], repeatables: ALL_PATHS });
    await query(handle!, "INSERT INTO things (id, label) VALUES (1, 'a')");
    expect(await labels(handle!)).toEqual(['thing: a']);
  });

  it('stops the start naming a file that fails, and keeps none of the files applied with it', async () => {
    const code = new CodeRoot({ 'db/migrations/0001_first.sql': FIRST, ...REPEATABLES });
    const [handle] = await emptyDatabase();
    await migrate(handle!, code.sources);
    await query(handle!, "INSERT INTO things (id, label) VALUES (1, 'a')");
    const recordedBefore = await query(handle!, 'SELECT path, checksum FROM schema_repeatables ORDER BY path');
    code.write('zeta/sql/prefix.sql', prefix('item: '));
    code.write('alpha/sql/labels.sql', 'CREATE OR REPLACE FUNCTION thing_label(p_id integer RETURNS text;\n');
    const failure = (await migrate(handle!, code.sources).catch((error: Error) => error)) as Error;
    expect(failure.message).toMatch(/^repeatable alpha\/sql\/labels\.sql failed: syntax error/);
    expect(failure.message).not.toContain('\n');
    expect(await labels(handle!)).toEqual(['thing: a']);
    expect(await query(handle!, 'SELECT path, checksum FROM schema_repeatables ORDER BY path')).toEqual(recordedBefore);
    code.write('alpha/sql/labels.sql', LABELS);
    expect(await migrate(handle!, code.sources)).toEqual({ migrations: [], repeatables: ['zeta/sql/prefix.sql'] });
    expect(await labels(handle!)).toEqual(['item: a']);
  });

  it('applies each migration and each file once when two instances migrate at the same time', async () => {
    const code = new CodeRoot({ 'db/migrations/0001_first.sql': FIRST, 'db/migrations/0002_second.sql': SECOND, ...REPEATABLES });
    const handles = await emptyDatabase(2);
    const sources = code.sources;
    const results = await Promise.all(handles.map((handle) => migrate(handle, sources)));
    expect(results.filter((applied) => applied.migrations.length > 0 || applied.repeatables.length > 0)).toEqual([
      { migrations: [1, 2], repeatables: ALL_PATHS },
    ]);
    expect(await query(handles[1]!, 'SELECT count(*)::int AS n FROM schema_repeatables')).toEqual([{ n: 3 }]);
  });

  it('applies the triggers.sql files after every function file: a trigger names a function that must exist', async () => {
    const code = new CodeRoot({
      'db/migrations/0001_first.sql': FIRST,
      'alpha/sql/triggers.sql':
        'CREATE OR REPLACE TRIGGER things_stamped BEFORE INSERT ON things FOR EACH ROW EXECUTE FUNCTION stamp_label();\n',
      'zeta/sql/stamp_label.sql': `CREATE OR REPLACE FUNCTION stamp_label() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.label := 'stamped ' || NEW.label;
  RETURN NEW;
END $$;\n`,
    });
    const [handle] = await emptyDatabase();
    expect(await migrate(handle!, code.sources)).toEqual({
      migrations: [1],
      repeatables: ['zeta/sql/stamp_label.sql', 'alpha/sql/triggers.sql'],
    });
    await query(handle!, "INSERT INTO things VALUES (1, 'one')");
    expect(await query(handle!, 'SELECT label FROM things')).toEqual([{ label: 'stamped one' }]);
  });

  // The pool's lock_timeout (5 s) bounds every other lock wait; an instance waits for another's
  // migration however long it runs.
  it.runIf(engine === 'postgres')('waits for an instance whose migration outlasts the pool lock_timeout', async () => {
    const code = new CodeRoot({ 'db/migrations/0001_slow.sql': `SELECT pg_sleep(6);\n${FIRST}` });
    const handles = await emptyDatabase(2);
    const sources = code.sources;
    const results = await Promise.all(handles.map((handle) => migrate(handle, sources)));
    expect(results.map((applied) => applied.migrations).sort()).toEqual([[], [1]]);
  });
});

describe(`a database migrated before the fold of 0001 to 0015 into one baseline (${engine})`, () => {
  // The folded history in miniature: a baseline, two migrations kept under their numbers, one that
  // drops a function the old history defined and nothing defines any more (a fresh database never had it).
  const BASELINE = FIRST;
  const KEPT = {
    'db/migrations/0016_weights.sql': 'ALTER TABLE things ADD COLUMN weight integer;\n',
    'db/migrations/0017_colours.sql': 'ALTER TABLE things ADD COLUMN colour text;\n',
  };
  const FOLDED = {
    'db/migrations/0001_baseline.sql': BASELINE,
    ...KEPT,
    'db/migrations/0018_drop_dead_functions.sql': 'DROP FUNCTION IF EXISTS old_label(integer);\n',
    ...REPEATABLES,
  };
  const APPLIED_AT = '2026-11-02 03:04:05.123456+00';

  /** What the previous migrator left: its table without checksums, a row for each of 1..last, and their schema. */
  async function migratedBeforeFold(handle: DatabaseHandle, last: number): Promise<void> {
    await handle.withSession((session) =>
      session.script(`
        CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
        INSERT INTO schema_migrations (version, name, applied_at)
          SELECT version, 'step_' || version, '${APPLIED_AT}' FROM generate_series(1, ${last}) AS version;
        UPDATE schema_migrations SET name = 'foundation' WHERE version = 1;
        ${FIRST}
        CREATE FUNCTION old_label(p_id integer) RETURNS text LANGUAGE sql AS $$ SELECT label FROM things WHERE id = p_id $$;
        ${last >= 16 ? KEPT['db/migrations/0016_weights.sql'] : ''}
        ${last >= 17 ? KEPT['db/migrations/0017_colours.sql'] : ''}
      `),
    );
  }

  async function records(handle: DatabaseHandle) {
    return query<{ version: number; name: string; checksum: string; applied_at: string }>(
      handle,
      "SELECT version, name, checksum, to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS applied_at FROM schema_migrations ORDER BY version",
    );
  }

  async function columns(handle: DatabaseHandle) {
    return query(
      handle,
      `SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns
                           WHERE table_name = 'schema_migrations' ORDER BY ordinal_position`,
    );
  }

  const adopted = (version: number, name: string, text: string) => ({
    version,
    name,
    checksum: sha256(text),
    applied_at: APPLIED_AT.slice(0, -3),
  });

  it('at 0015: keeps row 1 as the baseline with its checksum, drops 2 to 15, then runs 0016 to 0018 and every repeatable file', async () => {
    const code = new CodeRoot(FOLDED);
    const [handle] = await emptyDatabase();
    await migratedBeforeFold(handle!, 15);
    expect(await migrate(handle!, code.sources)).toEqual({ migrations: [16, 17, 18], repeatables: ALL_PATHS });
    const rows = await records(handle!);
    expect(rows[0]).toEqual(adopted(1, 'baseline', BASELINE));
    expect(rows.map((row) => [row.version, row.name, row.checksum])).toEqual([
      [1, 'baseline', sha256(BASELINE)],
      [16, 'weights', sha256(KEPT['db/migrations/0016_weights.sql'])],
      [17, 'colours', sha256(KEPT['db/migrations/0017_colours.sql'])],
      [18, 'drop_dead_functions', sha256(FOLDED['db/migrations/0018_drop_dead_functions.sql'])],
    ]);
    expect(await query(handle!, "SELECT to_regproc('old_label') IS NULL AS gone")).toEqual([{ gone: true }]);
    await query(handle!, "INSERT INTO things (id, label, weight, colour) VALUES (1, 'a', 2, 'red')");
    expect(await labels(handle!)).toEqual(['thing: a']);
    // The same table as a fresh database's, column for column.
    const [fresh] = await emptyDatabase();
    await migrate(fresh!, code.sources);
    expect(await columns(handle!)).toEqual(await columns(fresh!));
    expect(await migrate(handle!, code.sources)).toEqual(NOTHING);
  });

  it('at 0017: keeps rows 1, 16 and 17 with the checksums of their current files, then runs 0018 and every repeatable file', async () => {
    const code = new CodeRoot(FOLDED);
    const [handle] = await emptyDatabase();
    await migratedBeforeFold(handle!, 17);
    expect(await migrate(handle!, code.sources)).toEqual({ migrations: [18], repeatables: ALL_PATHS });
    const rows = await records(handle!);
    expect(rows.slice(0, 3)).toEqual([
      adopted(1, 'baseline', BASELINE),
      adopted(16, 'weights', KEPT['db/migrations/0016_weights.sql']),
      adopted(17, 'colours', KEPT['db/migrations/0017_colours.sql']),
    ]);
    expect(rows.map((row) => row.version)).toEqual([1, 16, 17, 18]);
    expect(await migrate(handle!, code.sources)).toEqual(NOTHING);
  });

  it('before 0015: stops the start in one line naming the release to start first, and changes nothing', async () => {
    const code = new CodeRoot(FOLDED);
    const [handle] = await emptyDatabase();
    await migratedBeforeFold(handle!, 12);
    await expect(migrate(handle!, code.sources)).rejects.toThrow(
      new Error(
        'the database predates the fold of migrations 0001 to 0015 into one (its last migration is 0012): ' +
          'start it once with a release whose migrations reach 0015 (git commit 72b8834), then with this one',
      ),
    );
    expect((await columns(handle!)).map((column) => (column as { column_name: string }).column_name)).toEqual([
      'version',
      'name',
      'applied_at',
    ]);
    expect(await query(handle!, 'SELECT count(*)::int AS n FROM schema_migrations')).toEqual([{ n: 12 }]);
    expect(await query(handle!, "SELECT to_regclass('schema_repeatables') IS NULL AS absent")).toEqual([{ absent: true }]);
  });
});
