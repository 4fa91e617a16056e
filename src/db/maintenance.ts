import { runEvery } from './background.js';
import type { DatabaseHandle } from './connection.js';

/**
 * PGlite is PostgreSQL in single-user mode, which runs no autovacuum: without this, nothing would clear
 * dead row versions (the hourly purge of idempotency keys, every balance update, the catalog rows each
 * ANALYZE replaces), give the planner statistics, or freeze old rows. Freezing matters most: single-user
 * mode does not stop writes at the transaction-ID wraparound limit as a server does, so unfrozen rows
 * would silently become invisible. So the service does autovacuum's work on PGlite, by autovacuum's
 * rules and with its settings, over every table the database has, system catalogs and TOAST tables
 * included (the database's oldest unfrozen transaction is the oldest of theirs): a table is analysed
 * once more than `autovacuum_analyze_threshold` + `autovacuum_analyze_scale_factor` × its rows
 * changed, and vacuumed (and analysed, if it can be) once it has more dead rows, or rows inserted
 * since its last vacuum, than the matching vacuum settings allow, or its oldest unfrozen transaction
 * is older than `autovacuum_freeze_max_age`. On a PostgreSQL server autovacuum does this and the
 * service does nothing.
 *
 * PGlite counts the changes but publishes them only when told to; pg_stat_force_next_flush() does,
 * at the next statement. The session is held while a table is vacuumed: requests wait for it.
 *
 * Returns the statements it ran.
 */
export async function maintainLikeAutovacuum(database: DatabaseHandle): Promise<string[]> {
  return database.withSession(async (session) => {
    await session.query('SELECT pg_stat_force_next_flush()');
    const due = await session.query<{ statement: string }>(
      `SELECT format(CASE WHEN needs_vacuum AND schemaname = 'pg_toast' THEN 'VACUUM %I.%I'
                          WHEN needs_vacuum THEN 'VACUUM (ANALYZE) %I.%I'
                          ELSE 'ANALYZE %I.%I' END, schemaname, relname) AS statement
         FROM (SELECT s.schemaname, s.relname,
                      s.n_dead_tup > current_setting('autovacuum_vacuum_threshold')::float8
                                     + current_setting('autovacuum_vacuum_scale_factor')::float8 * rows
                      OR (current_setting('autovacuum_vacuum_insert_threshold')::float8 >= 0
                          AND s.n_ins_since_vacuum > current_setting('autovacuum_vacuum_insert_threshold')::float8
                                     + current_setting('autovacuum_vacuum_insert_scale_factor')::float8 * rows)
                      OR frozen_age > current_setting('autovacuum_freeze_max_age')::float8 AS needs_vacuum,
                      s.schemaname <> 'pg_toast'
                      AND s.n_mod_since_analyze > current_setting('autovacuum_analyze_threshold')::float8
                                     + current_setting('autovacuum_analyze_scale_factor')::float8 * rows AS needs_analyze
                 FROM pg_stat_all_tables s
                 JOIN LATERAL (SELECT greatest(c.reltuples, 0) AS rows, age(c.relfrozenxid) AS frozen_age
                                 FROM pg_class c WHERE c.oid = s.relid) r ON true) t
        WHERE needs_vacuum OR needs_analyze
        ORDER BY schemaname, relname`,
    );
    for (const { statement } of due) await session.script(statement);
    return due.map(({ statement }) => statement);
  });
}

/** On PGlite, maintains the tables every `intervalMs` (autovacuum's naptime is a minute); returns the function that stops it. */
export function scheduleMaintenance(database: DatabaseHandle, intervalMs: number, onError: (error: unknown) => void): () => void {
  if (database.engine !== 'pglite') return () => {};
  return runEvery(intervalMs, () => maintainLikeAutovacuum(database), onError);
}
