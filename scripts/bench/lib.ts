/**
 * Helpers of `npm run bench` (scripts/bench/index.ts): scratch databases on the shared PostgreSQL, the
 * compiled server as a child process, HTTP set-up calls, the transfer load (http-load.ts), and PostgreSQL's
 * own view while a load runs (waits, lock waits, backend CPU, pg_stat_database counters).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createWriteStream, readdirSync, readFileSync, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { httpLoad, percentile } from './http-load.js';
import pg from 'pg';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const SERVER_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/postgres';
export const PG_BIN = process.env.BENCH_PG_BIN ?? '/usr/lib/postgresql/15/bin';

export const ADMIN_EMAIL = 'admin@bench.test';
export const ADMIN_PASSWORD = 'bench-admin-password';
export const JWT_SECRET = 'bench-secret-that-is-at-least-32-bytes-long!!';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function log(message: string): void {
  console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
}

// ---------------------------------------------------------------- scratch databases

/** pgbench's connection options for SERVER_URL (the password, if any, goes in PGPASSWORD). */
export function pgbenchArgs(): string[] {
  const url = new URL(SERVER_URL);
  return ['-h', url.hostname, '-p', url.port || '5432', '-U', decodeURIComponent(url.username || 'root')];
}

/** Runs fn on a client connected to the maintenance database of the shared server. */
export async function onServer<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: SERVER_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Every scratch database this run created, dropped by dropAll() whatever happens. */
const created = new Set<string>();

export function urlOf(name: string): string {
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function createScratchDatabase(purpose: string): Promise<{ name: string; url: string }> {
  const name = `bench_${purpose}_${randomBytes(4).toString('hex')}`;
  await onServer((client) => client.query(`CREATE DATABASE ${name}`));
  created.add(name);
  return { name, url: urlOf(name) };
}

export async function dropScratchDatabase(name: string): Promise<void> {
  await onServer((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  created.delete(name);
}

export async function dropAllScratchDatabases(): Promise<void> {
  for (const name of [...created]) {
    try {
      await dropScratchDatabase(name);
    } catch (error) {
      console.error(`could not drop scratch database ${name}: ${(error as Error).message}`);
    }
  }
}

// ---------------------------------------------------------------- the server as a child process

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

export interface BenchServer {
  name: string;
  url: string;
  pid: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts `node [nodeArgs] dist/server.js` with a clean environment (the given variables, PATH and HOME;
 * empty values override a developer's .env) and waits for /health. Its output goes to logFile.
 */
export async function startServer(options: {
  name: string;
  env: Record<string, string>;
  nodeArgs?: string[];
  logFile: string;
  startTimeoutMs?: number;
}): Promise<BenchServer> {
  const port = await freePort();
  const out: WriteStream = createWriteStream(options.logFile, { flags: 'a' });
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), 'dist/server.js'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      REDIS_URL: '',
      CORS_ORIGINS: '',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  child.stdout.pipe(out, { end: false });
  child.stderr.pipe(out, { end: false });
  let exited = false;
  const closed = new Promise<void>((resolve) =>
    child.once('close', (code, signal) => {
      exited = true;
      live.delete(child);
      out.end(`\n----- ${options.name} exited: code ${code} signal ${signal} -----\n`);
      resolve();
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.startTimeoutMs ?? 120_000);
  for (;;) {
    if (exited) throw new Error(`server ${options.name} exited before answering /health; see ${options.logFile}`);
    try {
      const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) });
      if (response.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server ${options.name} did not answer /health in time; see ${options.logFile}`);
    }
    await sleep(100);
  }
  return {
    name: options.name,
    url,
    pid: child.pid!,
    child,
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await closed;
      clearTimeout(timer);
    },
  };
}

/** The server's environment for a benchmark: rules on, but thresholds no small random transfer reaches. */
export function serviceEnv(extra: Record<string, string>): Record<string, string> {
  return {
    LOG_LEVEL: 'warn',
    BCRYPT_COST: '4',
    JWT_SECRET,
    JWT_EXPIRATION: '86400',
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    RATE_LIMIT_TRANSFERS_PER_MINUTE: '100000',
    DAILY_TRANSFER_LIMIT: '100000000.00',
    REVIEW_THRESHOLD: '100000000.00',
    RISK_NEW_PAYEE_AMOUNT: '100000000.00',
    RISK_NEW_ACCOUNT_AMOUNT: '100000000.00',
    RISK_VELOCITY_COUNT: '100000',
    DATABASE_POOL_SIZE: process.env.BENCH_POOL_SIZE ?? '20',
    // Group commit's settings, to compare (TRANSFER_BATCH_SIZE=1: none).
    ...Object.fromEntries(
      ['TRANSFER_BATCH_SIZE', 'TRANSFER_BATCH_CONCURRENCY'].flatMap((name) => (process.env[name] ? [[name, process.env[name]]] : [])),
    ),
    ...extra,
  };
}

// ---------------------------------------------------------------- HTTP set-up

export interface Answer {
  status: number;
  body: any;
  ms: number;
}

export async function call(base: string, method: string, path: string, options: { token?: string; body?: unknown } = {}): Promise<Answer> {
  const started = performance.now();
  const response = await fetch(base + path, {
    method,
    headers: {
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    signal: AbortSignal.timeout(120_000),
  });
  const text = await response.text();
  const ms = performance.now() - started;
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON (CSV, PDF): keep the text
  }
  return { status: response.status, body, ms };
}

function expect(answer: Answer, status: number, what: string): any {
  if (answer.status !== status)
    throw new Error(`${what}: expected ${status}, got ${answer.status} ${JSON.stringify(answer.body).slice(0, 500)}`);
  return answer.body;
}

export async function adminToken(base: string): Promise<string> {
  return expect(await call(base, 'POST', '/auth/login', { body: { email: ADMIN_EMAIL, password: ADMIN_PASSWORD } }), 200, 'admin login')
    .access_token;
}

export interface BenchCustomer {
  userId: string;
  token: string;
  accountId: string;
  accountNumber: string;
}

/** Runs fn over items with at most `width` in flight. */
export async function inParallel<T, R>(items: T[], width: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await fn(items[index]!, index);
      }
    }),
  );
  return results;
}

/**
 * Registers `count` customers (the register answer carries each one's access token) and opens one
 * account each, funded with `initialDeposit` from the bank's cash account, or unfunded when null.
 */
export async function makeCustomers(base: string, admin: string, count: number, initialDeposit: string | null): Promise<BenchCustomer[]> {
  const tag = randomBytes(3).toString('hex');
  return inParallel(
    Array.from({ length: count }, (_, i) => i),
    8,
    async (i) => {
      const registered = expect(
        await call(base, 'POST', '/auth/register', {
          token: admin,
          body: { name: `Bench Customer ${i}`, email: `c${i}-${tag}@bench.test`, password: `customer-password-${i}` },
        }),
        201,
        'register',
      );
      const account = expect(
        await call(base, 'POST', `/accounts/?user_id=${registered.user.id}`, {
          token: admin,
          body: initialDeposit === null ? {} : { initial_deposit: initialDeposit },
        }),
        201,
        'open account',
      );
      return { userId: registered.user.id, token: registered.access_token, accountId: account.id, accountNumber: account.account_number };
    },
  );
}

export interface Reconciliation {
  ok: boolean;
  accounts_checked: number;
  entries_checked: number;
  ledger_sum: string;
  ms: number;
}

export async function reconciliation(base: string, admin: string): Promise<Reconciliation> {
  const answer = await call(base, 'GET', '/reports/reconciliation', { token: admin });
  const body = expect(answer, 200, 'reconciliation');
  return {
    ok: body.ok === true,
    accounts_checked: body.accounts_checked,
    entries_checked: body.entries_checked,
    ledger_sum: body.ledger_sum,
    ms: answer.ms,
  };
}

/** The server's group-commit histogram (transfer_batch_size): batches and transfers so far. */
export async function batchTotals(base: string): Promise<{ batches: number; transfers: number }> {
  const text = String((await call(base, 'GET', '/metrics')).body);
  const read = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return { batches: read('transfer_batch_size_count'), transfers: read('transfer_batch_size_sum') };
}

// ---------------------------------------------------------------- the transfer load

export interface LoadResult {
  connections: number;
  seconds: number;
  requests: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** Completed (2xx) transfers per second of the run. */
  tps: number;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  /** Problem codes of the non-2xx answers, counted. */
  problemCodes: Record<string, number>;
  /** CPU seconds the load generator (this process) used during the run. */
  clientCpuSeconds: number;
  startedAtMonotonicUs: number;
  endedAtMonotonicUs: number;
}

/**
 * Random transfers over HTTP for `seconds` (http-load.ts): each request picks a random sender (its
 * token and account), a random other receiver, a random amount from 0.01 to 1.00 and a fresh
 * Idempotency-Key.
 */
export async function transferLoad(base: string, customers: BenchCustomer[], connections: number, seconds: number): Promise<LoadResult> {
  const n = customers.length;
  const cpuBefore = process.cpuUsage();
  const result = await httpLoad({
    url: base,
    connections,
    seconds,
    next: () => {
      const from = Math.floor(Math.random() * n);
      let to = Math.floor(Math.random() * (n - 1));
      if (to >= from) to++;
      const cents = 1 + Math.floor(Math.random() * 100);
      return {
        method: 'POST',
        path: '/transactions/transfer',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${customers[from]!.token}`, 'idempotency-key': randomUUID() },
        body: JSON.stringify({
          from_account: customers[from]!.accountNumber,
          to_account: customers[to]!.accountNumber,
          amount: `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`,
        }),
      };
    },
    classify: (status, body) => {
      try {
        return JSON.parse(body).code ?? `http_${status}`;
      } catch {
        return `http_${status}`;
      }
    },
  });
  const cpu = process.cpuUsage(cpuBefore);
  const latencies = result.latenciesMs;
  const round = (ms: number) => Number(ms.toFixed(2));
  return {
    connections,
    seconds,
    requests: result.answers,
    ok: result.ok,
    non2xx: result.answers - result.ok,
    errors: result.errors,
    timeouts: result.timeouts,
    tps: result.ok / seconds,
    p50: round(percentile(latencies, 50)),
    p90: round(percentile(latencies, 90)),
    p99: round(percentile(latencies, 99)),
    mean: round(latencies.reduce((sum, ms) => sum + ms, 0) / Math.max(1, latencies.length)),
    problemCodes: result.refused,
    clientCpuSeconds: (cpu.user + cpu.system) / 1e6,
    startedAtMonotonicUs: result.startedAtMonotonicUs,
    endedAtMonotonicUs: result.endedAtMonotonicUs,
  };
}

// ---------------------------------------------------------------- PostgreSQL's view during a load

const CLOCK_TICKS = 100;

/** utime + stime of a process in seconds, or undefined once it is gone. */
export function cpuSecondsOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** CPU seconds of a process and its children (a server's cluster workers), from /proc. */
export function treeCpuSecondsOf(pid: number): number | undefined {
  const own = cpuSecondsOf(pid);
  if (own === undefined) return undefined;
  let total = own;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Field 4, the parent's pid, is the second field after the command name.
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) total += cpuSecondsOf(Number(entry)) ?? 0;
    } catch {
      // the process ended meanwhile
    }
  }
  return total;
}

export interface Sampling {
  samples: number;
  /** Backends of the database waiting on a heavyweight lock (wait_event_type = 'Lock'): mean and max per sample. */
  lockWaitsMean: number;
  lockWaitsMax: number;
  /** Backends of the database running a statement: mean per sample. */
  activeMean: number;
  /** Backends idle inside an open transaction (waiting for the client's next statement): mean per sample. */
  idleInTransactionMean: number;
  /** What the database's active backends were waiting for, as a share of backend-samples ("CPU" when nothing). */
  waits: Record<string, number>;
  /** Ungranted pg_locks rows of the database's backends, by lock type, summed over samples. */
  ungrantedLocks: Record<string, number>;
  /** CPU seconds used by the database's backends during the sampling. */
  backendCpuSeconds: number;
}

/**
 * Samples pg_stat_activity and pg_locks for one database every `intervalMs` from a connection to the
 * maintenance database (so the sampling adds nothing to that database's counters), and the CPU time
 * of its backends from /proc (the server is on this machine).
 */
export function startSampling(database: string, intervalMs = 100): { stop(): Promise<Sampling> } {
  let stopped = false;
  const acc = { samples: 0, lockWaits: 0, lockWaitsMax: 0, active: 0, idleInTx: 0, backendSamples: 0 };
  const waits: Record<string, number> = {};
  const ungranted: Record<string, number> = {};
  const baseline = new Map<number, number>();
  const last = new Map<number, number>();
  let first = true;
  const client = new pg.Client({ connectionString: SERVER_URL });
  const loop = (async () => {
    await client.connect();
    while (!stopped) {
      const started = Date.now();
      const activity = await client.query<{ pid: number; state: string | null; wait_event_type: string | null; wait_event: string | null }>(
        `SELECT pid, state, wait_event_type, wait_event FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'`,
        [database],
      );
      const locks = await client.query<{ locktype: string; n: string }>(
        `SELECT l.locktype, count(*) AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE NOT l.granted AND a.datname = $1 GROUP BY l.locktype`,
        [database],
      );
      acc.samples++;
      let lockWaits = 0;
      for (const row of activity.rows) {
        const cpu = cpuSecondsOf(row.pid);
        if (cpu !== undefined) {
          if (first) baseline.set(row.pid, cpu);
          last.set(row.pid, cpu);
        }
        if (row.state === 'idle in transaction') acc.idleInTx++;
        if (row.state !== 'active') continue;
        acc.active++;
        acc.backendSamples++;
        const key = row.wait_event_type ? `${row.wait_event_type}:${row.wait_event}` : 'CPU';
        waits[key] = (waits[key] ?? 0) + 1;
        if (row.wait_event_type === 'Lock') lockWaits++;
      }
      first = false;
      acc.lockWaits += lockWaits;
      acc.lockWaitsMax = Math.max(acc.lockWaitsMax, lockWaits);
      for (const row of locks.rows) ungranted[row.locktype] = (ungranted[row.locktype] ?? 0) + Number(row.n);
      await sleep(Math.max(0, intervalMs - (Date.now() - started)));
    }
  })();
  return {
    async stop() {
      stopped = true;
      try {
        await loop;
      } finally {
        await client.end().catch(() => {});
      }
      let backendCpuSeconds = 0;
      for (const [pid, cpu] of last) backendCpuSeconds += cpu - (baseline.get(pid) ?? 0);
      const share = (value: number) => (acc.backendSamples ? value / acc.backendSamples : 0);
      return {
        samples: acc.samples,
        lockWaitsMean: acc.samples ? acc.lockWaits / acc.samples : 0,
        lockWaitsMax: acc.lockWaitsMax,
        activeMean: acc.samples ? acc.active / acc.samples : 0,
        idleInTransactionMean: acc.samples ? acc.idleInTx / acc.samples : 0,
        waits: Object.fromEntries(
          Object.entries(waits)
            .sort((a, b) => b[1] - a[1])
            .map(([k, v]) => [k, Number(share(v).toFixed(3))]),
        ),
        ungrantedLocks: ungranted,
        backendCpuSeconds,
      };
    },
  };
}

export interface DatabaseCounters {
  xact_commit: number;
  xact_rollback: number;
  tup_inserted: number;
  tup_updated: number;
  tup_deleted: number;
  tup_fetched: number;
  tup_returned: number;
  deadlocks: number;
}

/** pg_stat_database's counters of one database (flushed by backends at most once a second, and 10 s after they go idle). */
export async function databaseCounters(database: string): Promise<DatabaseCounters> {
  return onServer(async (client) => {
    const { rows } = await client.query(
      `SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted, tup_fetched, tup_returned, deadlocks
       FROM pg_stat_database WHERE datname = $1`,
      [database],
    );
    return Object.fromEntries(
      Object.entries(rows[0] as Record<string, string>).map(([k, v]) => [k, Number(v)]),
    ) as unknown as DatabaseCounters;
  });
}

export function counterDelta(after: DatabaseCounters, before: DatabaseCounters): DatabaseCounters {
  return Object.fromEntries(
    Object.entries(after).map(([k, v]) => [k, v - before[k as keyof DatabaseCounters]]),
  ) as unknown as DatabaseCounters;
}
