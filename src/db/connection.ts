import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';
import { PGliteSingleSessionPool } from './pglite-pool.js';

const INT8_OID = 20;

/** One dedicated connection, for session-level locks, multi-statement scripts (migrations) and hot statements. */
export interface Session {
  /**
   * `prepared`: sent as a named statement, which each connection parses and plans once (as pgbench's
   * `-M prepared`); for statements of fixed text only, since each distinct text keeps its name for the
   * process's life. PGlite ignores it.
   */
  query<R = Record<string, unknown>>(sql: string, params?: unknown[], options?: { prepared?: boolean }): Promise<R[]>;
  script(sql: string): Promise<void>;
}

export interface DatabaseHandle {
  engine: 'postgres' | 'pglite';
  db: Kysely<Database>;
  /** The embedded engine itself, when there is one: for dumps (`dumpDataDir`) and backups. */
  pglite?: PGlite;
  withSession<T>(fn: (session: Session) => Promise<T>): Promise<T>;
  /** Runs fn so that a nested borrow of PGlite's only session fails instead of hanging (no-op on PostgreSQL). */
  guard<T>(fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  databaseUrl: string | undefined;
  /** Where PGlite keeps its files; `memory://` keeps them in memory (tests). */
  dataDir: string;
  /** PGlite only: start from a dump of another PGlite (`dumpDataDir`) instead of an empty cluster. */
  restoreFrom?: Blob;
  poolSize?: number;
}

export async function openDatabase(options: DatabaseOptions): Promise<DatabaseHandle> {
  return options.databaseUrl ? openPostgres(options.databaseUrl, options.poolSize ?? 10) : openPGlite(options.dataDir, options.restoreFrom);
}

function openPostgres(connectionString: string, max: number): DatabaseHandle {
  const pool = new pg.Pool({
    connectionString,
    max,
    // Fail fast while the database is away, so requests answer 503 instead of hanging.
    connectionTimeoutMillis: 5_000,
    // Bounds every wait for a row lock (a hot account, a repeat of an idempotent request in flight).
    lock_timeout: 5_000,
    // A transaction left open by a crashed request must not hold its locks for ever.
    idle_in_transaction_session_timeout: 60_000,
    idleTimeoutMillis: 30_000,
    types: {
      // BIGINT is money: parse it to bigint, never to a float.
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID
          ? (value: string) => BigInt(value)
          : (pg.types.getTypeParser(oid, format) as (value: string) => unknown)) as typeof pg.types.getTypeParser,
    },
  });
  // A client losing its server emits 'error': on the pool while idle, on the client itself while checked
  // out. Unheard, either kills the process; the query in progress fails on its own and answers 503.
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  return {
    engine: 'postgres',
    db: new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }),
    async withSession(fn) {
      const client = await pool.connect();
      try {
        return await fn({
          query: async <R>(sql: string, params?: unknown[], options?: { prepared?: boolean }) =>
            (
              await client.query<R & pg.QueryResultRow>(
                options?.prepared ? { text: sql, values: params, name: preparedName(sql) } : { text: sql, values: params },
              )
            ).rows,
          script: async (sql) => void (await client.query(sql)),
        });
      } finally {
        client.release();
      }
    },
    guard: (fn) => fn(),
    async close() {
      await pool.end();
    },
  };
}

// One name per statement text, the same on every connection: pg prepares it on a connection the first
// time that connection sends it, and binds it after that.
const preparedNames = new Map<string, string>();
function preparedName(sql: string): string {
  let name = preparedNames.get(sql);
  if (name === undefined) {
    name = `s${preparedNames.size + 1}`;
    preparedNames.set(sql, name);
  }
  return name;
}

async function openPGlite(dataDir: string, restoreFrom: Blob | undefined): Promise<DatabaseHandle> {
  const inMemory = dataDir.startsWith('memory://');
  if (!inMemory) mkdirSync(dataDir, { recursive: true });
  const pglite = await PGlite.create({
    dataDir: inMemory ? dataDir : join(dataDir, 'pglite'),
    parsers: { [INT8_OID]: (value: string) => BigInt(value) },
    ...(restoreFrom ? { loadDataDir: restoreFrom } : {}),
  });
  const pool = new PGliteSingleSessionPool(pglite);
  return {
    engine: 'pglite',
    pglite,
    db: new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }),
    async withSession(fn) {
      const release = await pool.acquire();
      try {
        return await fn({
          query: async (sql, params) => (await pglite.query(sql, params)).rows as never[],
          script: async (sql) => void (await pglite.exec(sql)),
        });
      } finally {
        release();
      }
    },
    guard: (fn) => pool.track(fn),
    async close() {
      await pglite.close();
    },
  };
}
