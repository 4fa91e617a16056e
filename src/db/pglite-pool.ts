import { AsyncLocalStorage } from 'node:async_hooks';
import type { PGlite } from '@electric-sql/pglite';
import type { PostgresPool, PostgresPoolClient, PostgresQueryResult } from 'kysely';

/**
 * PGlite is one PostgreSQL backend with one session. This pool hands that session to one borrower at a
 * time, so a database transaction owns it from BEGIN to COMMIT and two transactions never interleave.
 * PGlite's results already have pg's shape (rows, command, rowCount), so Kysely's PostgresDialect
 * drives it unchanged.
 */
export class PGliteSingleSessionPool implements PostgresPool {
  #queue: Promise<void> = Promise.resolve();
  // Borrowing the session again from inside a borrow would wait for itself forever; fail loudly instead.
  readonly #borrower = new AsyncLocalStorage<{ holding: boolean }>();

  constructor(readonly pglite: PGlite) {}

  /** Waits for the session and returns the function that gives it back. */
  async acquire(): Promise<() => void> {
    const context = this.#borrower.getStore();
    if (context?.holding) {
      throw new Error('The PGlite session is already held by this call chain: use the transaction handle, not the database');
    }
    let release!: () => void;
    const previous = this.#queue;
    this.#queue = new Promise<void>((resolve) => (release = resolve));
    await previous;
    if (context) context.holding = true;
    return () => {
      if (context) context.holding = false;
      release();
    };
  }

  /** Marks the current async call chain so that a nested borrow inside it is detected. */
  track<T>(fn: () => Promise<T>): Promise<T> {
    return this.#borrower.run({ holding: false }, fn);
  }

  async connect(): Promise<PostgresPoolClient> {
    const release = await this.acquire();
    const pglite = this.pglite;
    return {
      async query<R>(sql: unknown, parameters?: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>> {
        const result = await pglite.query<R>(sql as string, parameters as unknown[]);
        return {
          rows: result.rows,
          command: ((result as { command?: string }).command ?? 'SELECT') as PostgresQueryResult<R>['command'],
          rowCount: (result as { rowCount?: number }).rowCount ?? result.affectedRows ?? 0,
        };
      },
      release,
    } as PostgresPoolClient;
  }

  async end(): Promise<void> {
    await this.pglite.close();
  }
}
