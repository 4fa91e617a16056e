/**
 * Counts what one transfer costs PostgreSQL, in process: the service built by buildApp on a fresh scratch
 * database, a spy on pg.Client#query (every statement the pool sends is one
 * round trip), and pg_stat_database's counters around N transfers (commits, rows inserted and updated).
 *
 * The counters are flushed by backends when they exit: the set-up's app and pool are closed before the
 * baseline is read, the transfers run on a second app over a new pool, which is closed before the
 * final read. Run alone: `npx tsx scripts/bench/round-trips.ts [N]`.
 */
import pg from 'pg';
import {
  median,
  ADMIN_EMAIL,
  ADMIN_PASSWORD,
  counterDelta,
  createScratchDatabase,
  databaseCounters,
  dropScratchDatabase,
  serviceEnv,
  sleep,
  type DatabaseCounters,
} from './lib.js';

export interface RoundTrips {
  transfers: number;
  /** Statements sent per transfer (BEGIN and COMMIT included), from the client-side spy. */
  statementsPerTransfer: number;
  /** Statements per transfer inside the database transaction (BEGIN..COMMIT inclusive). */
  inTransactionPerTransfer: number;
  /** Statements per transfer outside it (each its own implicit transaction). */
  outsideTransactionPerTransfer: number;
  /** One transfer's statements, in order, abbreviated. */
  sequence: string[];
  /** The median time from sending each of those statements to its answer (sequential: no queueing), ms. */
  medianMs: number[];
  /** pg_stat_database deltas per transfer. */
  perTransfer: Record<keyof DatabaseCounters, number>;
  non201: number;
}

function abbreviate(text: string): string {
  return text.replace(/\s+/g, ' ').replace(/"/g, '').slice(0, 110);
}

export async function countRoundTrips(transfers = 200): Promise<RoundTrips> {
  const { buildApp } = await import('../../src/app.js');
  const { loadConfig } = await import('../../src/config.js');
  const { openDatabase } = await import('../../src/db/connection.js');
  const { migrate } = await import('../../src/db/migrate.js');

  const config = loadConfig({ ...serviceEnv({ LOG_LEVEL: 'silent', DATA_DIR: '/nonexistent-bench-data-dir' }) });
  const { name, url } = await createScratchDatabase('roundtrips');
  const setUp = await openDatabase({ databaseUrl: url, dataDir: '', poolSize: 4 });
  await migrate(setUp);
  let handle2: Awaited<ReturnType<typeof openDatabase>> | undefined;
  try {
    // Set-up on a first app: the admin, 20 funded customers.
    const app1 = await buildApp({ config, database: setUp, logger: false });
    await app1.auth.bootstrapAdmin(ADMIN_EMAIL, ADMIN_PASSWORD);
    const admin = (
      await app1.inject({ method: 'POST', url: '/auth/login', payload: { email: ADMIN_EMAIL, password: ADMIN_PASSWORD } })
    ).json().access_token;
    const customers: Array<{ token: string; number: string }> = [];
    for (let i = 0; i < 20; i++) {
      const registered = (
        await app1.inject({
          method: 'POST',
          url: '/auth/register',
          headers: { authorization: `Bearer ${admin}` },
          payload: { name: `RT ${i}`, email: `rt${i}@bench.test`, password: `password-${i}-rt` },
        })
      ).json();
      const account = (
        await app1.inject({
          method: 'POST',
          url: `/accounts/?user_id=${registered.user.id}`,
          headers: { authorization: `Bearer ${admin}` },
          payload: { initial_deposit: '1000.00' },
        })
      ).json();
      customers.push({ token: registered.access_token, number: account.account_number });
    }
    await app1.close();
    await setUp.close();
    await sleep(500);
    const before = await databaseCounters(name);

    // The measured part: a second app on a new pool, every statement counted.
    handle2 = await openDatabase({ databaseUrl: url, dataDir: '', poolSize: 4 });
    const app2 = await buildApp({ config, database: handle2, logger: false });
    const statements: string[][] = [];
    const timings: number[][] = [];
    let current: string[] = [];
    let currentMs: number[] = [];
    // eslint-disable-next-line @typescript-eslint/unbound-method -- called below with the patched client as `this` (apply)
    const original = pg.Client.prototype.query;
    pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
      const first = args[0] as string | { text?: string };
      current.push(abbreviate(typeof first === 'string' ? first : (first?.text ?? '?')));
      const slot = currentMs.push(NaN) - 1;
      const times = currentMs;
      const started = performance.now();
      const result = (original as (...a: unknown[]) => unknown).apply(this, args);
      if (result && typeof (result as Promise<unknown>).then === 'function') {
        (result as Promise<unknown>).then(
          () => (times[slot] = performance.now() - started),
          () => (times[slot] = performance.now() - started),
        );
      }
      return result;
    } as typeof original;
    let non201 = 0;
    try {
      for (let i = 0; i < transfers; i++) {
        const from = customers[i % customers.length]!;
        const to = customers[(i * 7 + 3) % customers.length]!;
        if (to === from) continue;
        current = [];
        currentMs = [];
        const response = await app2.inject({
          method: 'POST',
          url: '/transactions/transfer',
          headers: { authorization: `Bearer ${from.token}`, 'idempotency-key': `rt-${i}` },
          payload: { from_account: from.number, to_account: to.number, amount: '0.01' },
        });
        if (response.statusCode !== 201) non201++;
        statements.push(current);
        timings.push(currentMs);
      }
    } finally {
      pg.Client.prototype.query = original;
    }
    await app2.close();
    await handle2.close();
    handle2 = undefined;
    await sleep(500);
    const delta = counterDelta(await databaseCounters(name), before);

    const done = statements.length;
    const all = statements.flat();
    const sequence = statements.at(-1) ?? [];
    const begin = sequence.findIndex((s) => /^begin/i.test(s));
    const commit = sequence.findIndex((s) => /^commit/i.test(s));
    const inside = begin >= 0 && commit >= begin ? commit - begin + 1 : 0;
    return {
      transfers: done,
      statementsPerTransfer: all.length / done,
      inTransactionPerTransfer: inside,
      outsideTransactionPerTransfer: sequence.length - inside,
      sequence,
      medianMs: sequence.map((_, i) => Number(median(timings.filter((t) => t.length === sequence.length).map((t) => t[i]!)).toFixed(3))),
      perTransfer: Object.fromEntries(
        Object.entries(delta).map(([k, v]) => [k, Number((v / done).toFixed(2))]),
      ) as RoundTrips['perTransfer'],
      non201,
    };
  } finally {
    await setUp.close().catch(() => {});
    if (handle2) await handle2.close().catch(() => {});
    await dropScratchDatabase(name);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await countRoundTrips(Number(process.argv[2] ?? 200));
  console.log(JSON.stringify(result, null, 2));
}
