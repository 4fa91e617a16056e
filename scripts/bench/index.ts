/**
 * `npm run bench`: the service's transfer throughput next to pgbench's TPC-B on the same PostgreSQL,
 * in one run, as ratios (the machine is shared and noisy: absolute figures mean little, ratios measured
 * minutes apart mean more). See BENCHMARKS.md for the method and the last results.
 *
 * Phases (BENCH_PHASES, comma-separated, default all, in this order):
 *   service   the compiled server on a fresh database with funded customers (the empty ledger) and,
 *   growth    with `growth`, a second one on a ledger preloaded in SQL with BENCH_GROWTH_ENTRIES journal
 *             entries; random transfers at 8 then 32 connections, in rounds interleaved with pgbench
 *             TPC-B (scale 10, -M prepared, same client count): P E G P G E P. Then a one-month
 *             statement and GET /transactions/?limit=20 timed at both sizes.
 *   audit     8 connections with the background audit sealer on vs off (AUDIT_SEALER_INTERVAL_MS=0), ABBA BAAB
 *   pglite    the embedded database (no DATABASE_URL), 8 connections, bracketed by pgbench runs
 *   profile   a CPU profile (node --cpu-prof) of the server under the 32-connection load (BENCH_PROFILE_CONNECTIONS)
 *   roundtrips statements, commits and rows per transfer (in process, pg.Client#query spy)
 *   indatabase a transfer's SQL and a TPC-B transaction, each N times in one PL/pgSQL loop: their own cost
 * Reconciliation (GET /reports/reconciliation) is checked after every load; the exit code is 1 when
 * any answer was not ok, or a phase failed.
 *
 * Knobs: BENCH_SECONDS (15), BENCH_CUSTOMERS (2000), BENCH_GROWTH_ENTRIES (1000000),
 * BENCH_WARMUP_SECONDS (3), BENCH_AUDIT_ROUNDS (2: on off off on, off on on off), BENCH_POOL_SIZE (20), BENCH_WORKERS (1),
 * BENCH_PROFILE_CONNECTIONS (32), BENCH_DATABASE_URL, BENCH_PG_BIN, BENCH_PHASES.
 * Results: bench-results/<timestamp>/ (results.json, results.md, server logs, the .cpuprofile).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, freemem, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { profileMarkdown, summariseProfile, type ProfileSummary } from './cpuprofile-summary.js';
import {
  adminToken,
  batchTotals,
  call,
  counterDelta,
  cpuSecondsOf,
  createScratchDatabase,
  databaseCounters,
  dropAllScratchDatabases,
  dropScratchDatabase,
  log,
  makeCustomers,
  median,
  onServer,
  PG_BIN,
  pgbenchArgs,
  reconciliation,
  ROOT,
  SERVER_URL,
  serviceEnv,
  sleep,
  startSampling,
  startServer,
  transferLoad,
  treeCpuSecondsOf,
  urlOf,
  type BenchCustomer,
  type BenchServer,
  type DatabaseCounters,
  type LoadResult,
  type Reconciliation,
  type Sampling,
} from './lib.js';
import { preloadLedger, type PreloadResult } from './preload.js';
import { measureInDatabase, type InDatabaseCost } from './in-database.js';
import { countRoundTrips, type RoundTrips } from './round-trips.js';

function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw new Error(`${name} must be a whole number (got ${raw})`);
  return Number(raw);
}

const SECONDS = intEnv('BENCH_SECONDS', 15);
const CUSTOMERS = intEnv('BENCH_CUSTOMERS', 2000);
const GROWTH_ENTRIES = intEnv('BENCH_GROWTH_ENTRIES', 1_000_000);
const WARMUP = intEnv('BENCH_WARMUP_SECONDS', 3);
const AUDIT_ROUNDS = Math.max(1, intEnv('BENCH_AUDIT_ROUNDS', 2));
const WORKERS = Math.max(1, intEnv('BENCH_WORKERS', 1));
const PROFILE_CONNECTIONS = Math.max(1, intEnv('BENCH_PROFILE_CONNECTIONS', 32));
const ALL_PHASES = ['service', 'growth', 'audit', 'pglite', 'profile', 'roundtrips', 'indatabase'];
const PHASES = new Set(
  (process.env.BENCH_PHASES ?? ALL_PHASES.join(','))
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean),
);
for (const phase of PHASES)
  if (!ALL_PHASES.includes(phase)) throw new Error(`unknown phase ${phase} in BENCH_PHASES (known: ${ALL_PHASES.join(', ')})`);
// Backends flush pg_stat_database at most once a second while busy and 10 s after going idle.
const STATS_FLUSH_MS = 11_000;
const FUNDING = '1000000.00';
const GROWN = `postgres, ${GROWTH_ENTRIES.toLocaleString('en-US')}-entry ledger`;

const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
const OUT = join(ROOT, 'bench-results', stamp);
mkdirSync(OUT, { recursive: true });

// ---------------------------------------------------------------- what a run records

/** A round: the service runs of one client count, bracketed by pgbench runs at the same count. */
type RoundName = string;

interface Run {
  seq: number;
  scenario: string;
  round: RoundName;
  load: LoadResult;
  sampling?: Sampling;
  counters?: DatabaseCounters;
  serverCpuSeconds?: number;
  /** Transfers per database transaction (group commit), as the server's metrics count them. */
  transfersPerBatch?: number;
  reconciliation?: Reconciliation;
}

interface PgbenchRun {
  seq: number;
  clients: number;
  round: RoundName;
  tps: number;
  latencyMeanMs: number;
  transactions: number;
  failed: number;
  sampling: Sampling;
  /** CPU seconds of the pgbench process (its last sample, every 100 ms). */
  clientCpuSeconds: number;
}

interface Timing {
  medianMs: number;
  minMs: number;
  maxMs: number;
  calls: number;
  note?: string;
}

interface Timings {
  ledgerEntries: number;
  transactions: number;
  statement: Timing | { skipped: string };
  listAdmin: Timing;
  listCustomer: Timing;
  /** A customer with an account and no transaction at all: the listing finds nothing to stop at. */
  listNewCustomer: Timing;
}

const results: {
  machine?: Record<string, unknown>;
  settings: Record<string, unknown>;
  pgbench: PgbenchRun[];
  runs: Run[];
  preload?: PreloadResult;
  timings: Record<string, Timings>;
  audit?: { on: number[]; off: number[]; ratio: number; cpuMsPerTransferOn: number; cpuMsPerTransferOff: number; verify?: unknown };
  profile?: { file: string; connections: number; summary: ProfileSummary; load: LoadResult };
  roundTrips?: RoundTrips;
  inDatabase?: InDatabaseCost;
  failures: string[];
} = {
  settings: {
    seconds: SECONDS,
    customers: CUSTOMERS,
    growthEntries: GROWTH_ENTRIES,
    warmupSeconds: WARMUP,
    poolSize: process.env.BENCH_POOL_SIZE ?? '20',
    workers: WORKERS,
    phases: [...PHASES],
  },
  pgbench: [],
  runs: [],
  timings: {},
  failures: [],
};

// ---------------------------------------------------------------- machine

async function describeMachine(): Promise<Record<string, unknown>> {
  const settings = await onServer(async (client) => {
    const version = (await client.query<{ version: string }>('SELECT version()')).rows[0]!.version;
    const { rows } = await client.query<{ name: string; setting: string; unit: string | null }>(
      `SELECT name, setting, unit FROM pg_settings WHERE name IN
       ('shared_buffers','synchronous_commit','fsync','wal_sync_method','max_connections','commit_delay','work_mem','effective_io_concurrency','max_wal_size','shared_preload_libraries','autovacuum')`,
    );
    return { version, settings: Object.fromEntries(rows.map((r) => [r.name, r.unit ? `${r.setting} ${r.unit}` : r.setting])) };
  });
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memoryGiB: Number((totalmem() / 2 ** 30).toFixed(1)),
    freeMemoryGiB: Number((freemem() / 2 ** 30).toFixed(1)),
    loadavgAtStart: loadavg().map((x) => Number(x.toFixed(2))),
    node: process.version,
    loadGenerator: 'scripts/bench/http-load.ts',
    postgres: settings.version,
    postgresSettings: settings.settings,
  };
}

// ---------------------------------------------------------------- pgbench

/** Runs a command to its end; `cpu`, when given, receives the CPU seconds the process had used at its last sample. */
function runCommand(command: string, args: string[], cpu?: { seconds: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PGPASSWORD: new URL(SERVER_URL).password },
    });
    if (cpu) {
      const timer = setInterval(() => {
        const seconds = child.pid ? cpuSecondsOf(child.pid) : undefined;
        if (seconds !== undefined) cpu.seconds = seconds;
      }, 100);
      child.once('close', () => clearInterval(timer));
    }
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.stderr.on('data', (chunk) => (out += chunk));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${command} ${args.join(' ')} exited ${code}:\n${out}`))));
  });
}

let pgbenchDb: string | undefined;
/** The order in which runs happened, pgbench and service alike. */
let seq = 0;

/** One pgbench TPC-B run on its scratch database (initialised at scale 10 on first use). */
async function pgbenchRun(clients: number, round: RoundName): Promise<PgbenchRun> {
  if (!pgbenchDb) {
    const db = await createScratchDatabase('pgbench');
    log(`pgbench -i -s 10 on ${db.name}`);
    await runCommand(join(PG_BIN, 'pgbench'), [...pgbenchArgs(), '-i', '-s', '10', '-q', db.name]);
    pgbenchDb = db.name;
  }
  const sampling = startSampling(pgbenchDb);
  const clientCpu = { seconds: 0 };
  const output = await runCommand(
    join(PG_BIN, 'pgbench'),
    [...pgbenchArgs(), '-M', 'prepared', '-c', String(clients), '-j', '2', '-T', String(SECONDS), pgbenchDb],
    clientCpu,
  );
  const sampled = await sampling.stop();
  writeFileSync(join(OUT, `pgbench-${round}-${results.pgbench.length}.txt`), output);
  const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(output)?.[1]);
  const latency = Number(/latency average = ([\d.]+) ms/.exec(output)?.[1]);
  const transactions = Number(/number of transactions actually processed: (\d+)/.exec(output)?.[1]);
  const failed = Number(/number of failed transactions: (\d+)/.exec(output)?.[1] ?? 0);
  if (!Number.isFinite(tps)) throw new Error(`could not read pgbench's tps:\n${output}`);
  const run: PgbenchRun = {
    seq: seq++,
    clients,
    round,
    tps,
    latencyMeanMs: latency,
    transactions,
    failed,
    sampling: sampled,
    clientCpuSeconds: clientCpu.seconds,
  };
  results.pgbench.push(run);
  log(`pgbench ${clients} clients [${round}]: ${tps.toFixed(0)} tps, latency ${latency} ms`);
  return run;
}

// ---------------------------------------------------------------- service loads

/** A server under test with what its loads need. */
interface Target {
  scenario: string;
  server: BenchServer;
  /** The PostgreSQL database (undefined on PGlite). */
  database?: string;
  admin: string;
  customers: BenchCustomer[];
}

/**
 * pg_stat_database counters of a run are read lazily: "before" just ahead of the run, "after" just
 * ahead of the next run on the same database (at least one other 15 s run later, so every backend
 * has flushed), or at the end after a flush wait. They include the reconciliation after the run and
 * the idle sealer's ticks (one commit a second), a few dozen commits next to thousands of transfers.
 */
const pendingCounters = new Map<string, { run: Run; before: DatabaseCounters }>();

async function settleCounters(database: string): Promise<DatabaseCounters> {
  const now = await databaseCounters(database);
  const pending = pendingCounters.get(database);
  if (pending) {
    pending.run.counters = counterDelta(now, pending.before);
    pendingCounters.delete(database);
  }
  return now;
}

async function settleAllCounters(): Promise<void> {
  if (pendingCounters.size === 0) return;
  await sleep(STATS_FLUSH_MS);
  for (const database of [...pendingCounters.keys()]) await settleCounters(database);
}

async function measuredLoad(target: Target, connections: number, round: RoundName, options: { counters?: boolean } = {}): Promise<Run> {
  const { scenario, server, database, admin, customers } = target;
  const before = database && options.counters ? await settleCounters(database) : undefined;
  const sampling = database ? startSampling(database) : undefined;
  // With WORKERS > 1 each scrape reaches one worker: its batches stand for all of them.
  const batchesBefore = await batchTotals(server.url);
  const cpuBefore = treeCpuSecondsOf(server.pid);
  const load = await transferLoad(server.url, customers, connections, SECONDS);
  const cpuAfter = treeCpuSecondsOf(server.pid);
  const sampled = await sampling?.stop();
  const batchesAfter = await batchTotals(server.url);
  const batches = batchesAfter.batches - batchesBefore.batches;
  const recon = await reconciliation(server.url, admin);
  if (!recon.ok) results.failures.push(`reconciliation not ok after ${scenario} ${connections}c: ${JSON.stringify(recon)}`);
  const run: Run = {
    seq: seq++,
    scenario,
    round,
    load,
    ...(sampled ? { sampling: sampled } : {}),
    ...(cpuBefore !== undefined && cpuAfter !== undefined ? { serverCpuSeconds: cpuAfter - cpuBefore } : {}),
    ...(batches > 0 && WORKERS === 1 ? { transfersPerBatch: (batchesAfter.transfers - batchesBefore.transfers) / batches } : {}),
    reconciliation: recon,
  };
  if (database && before) pendingCounters.set(database, { run, before });
  results.runs.push(run);
  log(
    `${scenario} ${connections}c [${round}]: ${load.tps.toFixed(0)} transfers/s, p50 ${load.p50} ms, p99 ${load.p99} ms, non-2xx ${load.non2xx}` +
      `${Object.keys(load.problemCodes).length ? ` ${JSON.stringify(load.problemCodes)}` : ''}, ` +
      `${run.transfersPerBatch ? `${run.transfersPerBatch.toFixed(1)} transfers per batch, ` : ''}reconciliation ${recon.ok ? 'ok' : 'NOT OK'}`,
  );
  return run;
}

/**
 * One round at a client count: pgbench, every target, pgbench, every target in reverse, pgbench. Each
 * target's figure is the mean of its two runs and its ratio is to the mean of the three pgbench runs
 * around them, so a drift of the machine's load over the round weighs on both sides alike.
 */
async function round(name: RoundName, connections: number, targets: Target[], options: { counters?: boolean } = {}): Promise<void> {
  await pgbenchRun(connections, name);
  for (const target of targets) await measuredLoad(target, connections, name, options);
  await pgbenchRun(connections, name);
  for (const target of [...targets].reverse()) await measuredLoad(target, connections, name, options);
  await pgbenchRun(connections, name);
}

async function warmUp(target: Target): Promise<void> {
  if (WARMUP > 0) await transferLoad(target.server.url, target.customers, 8, WARMUP);
}

async function serviceOnPostgres(name: string, purpose: string, extraEnv: Record<string, string> = {}, nodeArgs: string[] = []) {
  const db = await createScratchDatabase(purpose);
  const dataDir = mkdtempSync(join(tmpdir(), `bench-${purpose}-`));
  const server = await startServer({
    name,
    env: serviceEnv({ DATABASE_URL: db.url, DATA_DIR: dataDir, WORKERS: String(WORKERS), ...extraEnv }),
    nodeArgs,
    logFile: join(OUT, `server-${name}.log`),
  });
  return { db, dataDir, server };
}

async function measure(fn: () => Promise<{ status: number; ms: number }>, calls = 20): Promise<Timing> {
  for (let i = 0; i < 2; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const answer = await fn();
    if (answer.status !== 200) throw new Error(`timing call answered ${answer.status}`);
    times.push(answer.ms);
  }
  return {
    medianMs: Number(median(times).toFixed(2)),
    minMs: Number(Math.min(...times).toFixed(2)),
    maxMs: Number(Math.max(...times).toFixed(2)),
    calls,
  };
}

function isoDate(date: Date): string {
  return date.toISOString().slice(0, 10);
}

/**
 * A one-month statement (today's date a month ago to today) and the first page of GET /transactions/
 * as admin, as a customer with history, and as a new customer with none.
 */
async function readTimings(target: Target): Promise<Timings> {
  const { server, admin } = target;
  const customer = target.customers[0]!;
  const client = new pg.Client({ connectionString: urlOf(target.database!) });
  await client.connect();
  let sizes: { entries: number; transactions: number };
  try {
    const { rows } = await client.query<{ entries: string; transactions: string }>(
      'SELECT (SELECT count(*) FROM journal_entries) AS entries, (SELECT count(*) FROM transactions) AS transactions',
    );
    sizes = { entries: Number(rows[0]!.entries), transactions: Number(rows[0]!.transactions) };
  } finally {
    await client.end();
  }
  const today = new Date();
  const monthAgo = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth() - 1, today.getUTCDate()));
  const statementPath = `/accounts/${customer.accountId}/statement?from=${isoDate(monthAgo)}&to=${isoDate(today)}`;
  const probe = await call(server.url, 'GET', statementPath, { token: customer.token });
  let statement: Timing | { skipped: string };
  if (probe.status === 404 && typeof probe.body?.detail === 'string' && probe.body.detail.startsWith('No route')) {
    statement = { skipped: 'GET /accounts/{id}/statement does not exist in this build' };
  } else if (probe.status !== 200) {
    statement = { skipped: `GET /accounts/{id}/statement answered ${probe.status}: ${JSON.stringify(probe.body).slice(0, 200)}` };
  } else {
    statement = await measure(() => call(server.url, 'GET', statementPath, { token: customer.token }));
    statement.note = `${Array.isArray(probe.body?.entries) ? probe.body.entries.length : '?'} entries`;
  }
  const listAdmin = await measure(() => call(server.url, 'GET', '/transactions/?limit=20', { token: admin }));
  const listCustomer = await measure(() => call(server.url, 'GET', '/transactions/?limit=20', { token: customer.token }));
  const [newcomer] = await makeCustomers(server.url, admin, 1, null);
  const listNewCustomer = await measure(() => call(server.url, 'GET', '/transactions/?limit=20', { token: newcomer!.token }), 5);
  return { ledgerEntries: sizes.entries, transactions: sizes.transactions, statement, listAdmin, listCustomer, listNewCustomer };
}

// ---------------------------------------------------------------- the phases

let emptyTarget: (Target & { db: { name: string; url: string }; dataDir: string }) | undefined;
const cleanups: Array<() => Promise<void>> = [];

async function postgresTarget(scenario: string, name: string, purpose: string, funded: boolean, extraEnv: Record<string, string> = {}) {
  const { db, dataDir, server } = await serviceOnPostgres(name, purpose, extraEnv);
  cleanups.push(() => server.stop());
  const admin = await adminToken(server.url);
  const customers = await makeCustomers(server.url, admin, CUSTOMERS, funded ? FUNDING : null);
  return { scenario, server, database: db.name, admin, customers, db, dataDir };
}

/** The empty ledger and (with growth) the preloaded one, interleaved in one round per client count. */
async function phaseService(): Promise<void> {
  log(`empty: ${CUSTOMERS} customers with funded accounts`);
  const empty = await postgresTarget('postgres, empty ledger', 'pg-empty', 'empty', true);
  emptyTarget = empty;
  const targets: Target[] = [empty];
  let grown: Awaited<ReturnType<typeof postgresTarget>> | undefined;
  try {
    if (PHASES.has('growth')) {
      log(`growth: ${CUSTOMERS} customers, accounts funded by the SQL preload`);
      grown = await postgresTarget(GROWN, 'pg-growth', 'growth', false);
      log(`growth: preloading ${GROWTH_ENTRIES} journal entries`);
      results.preload = await preloadLedger(grown.db.url, GROWTH_ENTRIES);
      log(
        `growth: preloaded ${results.preload.entries} entries (${results.preload.transactions} transactions) in ${results.preload.seconds.toFixed(1)} s`,
      );
      const recon = await reconciliation(grown.server.url, grown.admin);
      if (!recon.ok) results.failures.push(`reconciliation not ok after the preload: ${JSON.stringify(recon)}`);
      log(
        `growth: reconciliation after the preload ${recon.ok ? 'ok' : 'NOT OK'} (${recon.entries_checked} entries, ${recon.ms.toFixed(0)} ms)`,
      );
      targets.push(grown);
    }
    for (const target of targets) await warmUp(target);
    for (const connections of [8, 32]) await round(`${connections}c`, connections, targets, { counters: true });
    await settleAllCounters();
    results.timings.empty = await readTimings(empty);
    log(`empty timings: ${JSON.stringify(results.timings.empty)}`);
    if (grown) {
      results.timings.grown = await readTimings(grown);
      log(`grown timings: ${JSON.stringify(results.timings.grown)}`);
    }
  } finally {
    await empty.server.stop();
    if (grown) {
      await grown.server.stop();
      await dropScratchDatabase(grown.db.name);
      rmSync(grown.dataDir, { recursive: true, force: true });
    }
  }
}

async function phaseAudit(): Promise<void> {
  const on = await postgresTarget('postgres, audit sealer on', 'pg-sealer-on', 'sealon', true);
  const off = await postgresTarget('postgres, audit sealer off', 'pg-sealer-off', 'sealoff', true, { AUDIT_SEALER_INTERVAL_MS: '0' });
  try {
    await warmUp(on);
    await warmUp(off);
    const tps = { on: [] as number[], off: [] as number[] };
    // ABBA BAAB ...: a drift of the machine's load over the runs weighs on both sides alike.
    const order: Array<'on' | 'off'> = [];
    for (let i = 0; i < AUDIT_ROUNDS; i++)
      order.push(...(i % 2 === 0 ? (['on', 'off', 'off', 'on'] as const) : (['off', 'on', 'on', 'off'] as const)));
    for (const side of order) tps[side].push((await measuredLoad(side === 'on' ? on : off, 8, 'audit')).load.tps);
    await sleep(2_000);
    const verify = await call(on.server.url, 'GET', '/audit-logs/verify', { token: on.admin });
    // CPU per transfer (server + PostgreSQL backends) is steadier than tx/s on a shared machine.
    const cpuPerTransfer = (scenario: string) => {
      const runs = results.runs.filter((r) => r.round === 'audit' && r.scenario === scenario);
      const cpu = runs.reduce((t, r) => t + (r.serverCpuSeconds ?? 0) + (r.sampling?.backendCpuSeconds ?? 0), 0);
      return (
        (cpu * 1000) /
        Math.max(
          1,
          runs.reduce((n, r) => n + r.load.ok, 0),
        )
      );
    };
    results.audit = {
      on: tps.on,
      off: tps.off,
      ratio: mean(tps.on) / mean(tps.off),
      cpuMsPerTransferOn: cpuPerTransfer(on.scenario),
      cpuMsPerTransferOff: cpuPerTransfer(off.scenario),
      verify: verify.body,
    };
    if (verify.status !== 200 || verify.body?.ok !== true)
      results.failures.push(`audit chain verification failed: ${JSON.stringify(verify.body)}`);
    log(
      `audit: sealer on ${tps.on.map((x) => x.toFixed(0)).join('/')} vs off ${tps.off.map((x) => x.toFixed(0)).join('/')}: ratio ${results.audit.ratio.toFixed(3)}; verify ${JSON.stringify(verify.body)}`,
    );
  } finally {
    for (const side of [on, off]) {
      await side.server.stop();
      await dropScratchDatabase(side.db.name);
      rmSync(side.dataDir, { recursive: true, force: true });
    }
  }
}

async function phasePglite(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-pglite-'));
  const env = serviceEnv({ DATA_DIR: dataDir });
  delete env.DATABASE_POOL_SIZE;
  const server = await startServer({ name: 'pglite', env, logFile: join(OUT, 'server-pglite.log'), startTimeoutMs: 180_000 });
  cleanups.push(() => server.stop());
  try {
    const admin = await adminToken(server.url);
    log(`pglite: ${CUSTOMERS} customers with funded accounts`);
    const customers = await makeCustomers(server.url, admin, CUSTOMERS, FUNDING);
    const target: Target = { scenario: 'PGlite (embedded), empty ledger', server, admin, customers };
    await warmUp(target);
    // pgbench, PGlite, pgbench, PGlite, pgbench: the ratio is to pgbench on the PostgreSQL server.
    await round('pglite-8c', 8, [target]);
  } finally {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function phaseProfile(): Promise<void> {
  let db = emptyTarget?.db;
  let dataDir = emptyTarget?.dataDir;
  let customers = emptyTarget?.customers ?? [];
  const fresh = !db;
  if (!db) {
    db = await createScratchDatabase('profile');
    dataDir = mkdtempSync(join(tmpdir(), 'bench-profile-'));
  }
  const dir = join(OUT, 'cpuprofile');
  mkdirSync(dir, { recursive: true });
  const server = await startServer({
    name: 'pg-profiled',
    env: serviceEnv({ DATABASE_URL: db.url, DATA_DIR: dataDir! }),
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`],
    logFile: join(OUT, 'server-pg-profiled.log'),
  });
  cleanups.push(() => server.stop());
  let load: LoadResult;
  try {
    const admin = await adminToken(server.url);
    if (fresh) customers = await makeCustomers(server.url, admin, CUSTOMERS, FUNDING);
    await transferLoad(server.url, customers, 8, Math.max(WARMUP, 1));
    load = await transferLoad(server.url, customers, PROFILE_CONNECTIONS, SECONDS);
    log(`profile: ${load.tps.toFixed(0)} transfers/s at ${PROFILE_CONNECTIONS}c under the profiler (not comparable)`);
  } finally {
    await server.stop();
    if (fresh) rmSync(dataDir!, { recursive: true, force: true });
  }
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile written in ${dir}`);
  const summary = summariseProfile(join(dir, file), 25, { fromUs: load.startedAtMonotonicUs, toUs: load.endedAtMonotonicUs });
  results.profile = { file: join('bench-results', stamp, 'cpuprofile', file), connections: PROFILE_CONNECTIONS, summary, load };
  writeFileSync(join(OUT, 'cpuprofile-summary.md'), profileMarkdown(summary));
}

// ---------------------------------------------------------------- the report

const f0 = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(0));
const f1 = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(1));
const f2 = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(2));

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

/** The mean pgbench tps of a round. */
function pgbenchOf(round: RoundName): number {
  return mean(results.pgbench.filter((r) => r.round === round).map((r) => r.tps));
}

interface Aggregate {
  scenario: string;
  round: RoundName;
  connections: number;
  runs: Run[];
  tps: number;
  p50: number;
  p99: number;
  non2xx: number;
  problems: Record<string, number>;
}

function aggregates(): Aggregate[] {
  const groups = new Map<string, Run[]>();
  for (const run of results.runs) {
    const key = `${run.round}|${run.scenario}`;
    groups.set(key, [...(groups.get(key) ?? []), run]);
  }
  return [...groups.values()].map((runs) => {
    const problems: Record<string, number> = {};
    for (const run of runs) for (const [code, n] of Object.entries(run.load.problemCodes)) problems[code] = (problems[code] ?? 0) + n;
    return {
      scenario: runs[0]!.scenario,
      round: runs[0]!.round,
      connections: runs[0]!.load.connections,
      runs,
      tps: mean(runs.map((r) => r.load.tps)),
      p50: mean(runs.map((r) => r.load.p50)),
      p99: mean(runs.map((r) => r.load.p99)),
      non2xx: runs.reduce((n, r) => n + r.load.non2xx, 0),
      problems,
    };
  });
}

function report(): string {
  const lines: string[] = [];
  const m = Object.fromEntries(
    Object.entries(results.machine ?? {}).map(([key, value]) => [key, typeof value === 'string' ? value : JSON.stringify(value)]),
  );
  lines.push(`# npm run bench — ${stamp}`, '');
  lines.push(
    `Machine: ${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB, load average at start ${m.loadavgAtStart}; Node ${m.node}; load generator ${m.loadGenerator}; ${m.postgres}.`,
    `PostgreSQL settings: ${m.postgresSettings}.`,
    `Each run ${SECONDS} s (servers warmed up ${WARMUP} s first); ${CUSTOMERS} customers; server pool ${String(results.settings.poolSize)}; load generator, server and PostgreSQL share the machine.`,
    "Rounds: per client count, pgbench / each service target / pgbench / each target in reverse / pgbench; a target's tx/s, p50 and p99 are the means of its two runs, its ratio is to the mean of the three pgbench runs of its round.",
    '',
  );

  const all = aggregates();
  lines.push('## Throughput', '');
  lines.push('| round | scenario | clients | tx/s (runs) | p50 ms | p99 ms | non-2xx | ratio to pgbench (same round) | other ratio |');
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---|');
  const rounds = [...new Set([...results.pgbench.map((r) => r.round), ...all.map((a) => a.round)])];
  for (const round of rounds) {
    const pg = results.pgbench.filter((r) => r.round === round);
    if (pg.length) {
      lines.push(
        `| ${round} | pgbench TPC-B scale 10, -M prepared (mean latency ${pg.map((r) => r.latencyMeanMs).join(' / ')} ms) | ${pg[0]!.clients} | ${f0(pgbenchOf(round))} (${pg.map((r) => f0(r.tps)).join(', ')}) | — | — | ${pg.reduce((n, r) => n + r.failed, 0)} failed | 1.00 | |`,
      );
    }
    for (const a of all.filter((x) => x.round === round)) {
      let other = '';
      if (a.scenario === GROWN) {
        const empty = all.find((x) => x.round === round && x.scenario === 'postgres, empty ledger');
        if (empty) other = `**${f2(a.tps / empty.tps)}×** the empty ledger (runs interleaved)`;
      }
      if (a.scenario.startsWith('PGlite')) other = 'ratio is to pgbench on the PostgreSQL server, not to PGlite';
      const ratio = pg.length ? f2(a.tps / pgbenchOf(round)) : '—';
      lines.push(
        `| ${round} | service, ${a.scenario} | ${a.connections} | ${f0(a.tps)} (${a.runs.map((r) => f0(r.load.tps)).join(', ')}) | ${f1(a.p50)} | ${f1(a.p99)} | ${a.non2xx}${Object.keys(a.problems).length ? ` ${JSON.stringify(a.problems)}` : ''} | ${pg.length ? `**${ratio}**` : '—'} | ${other} |`,
      );
    }
  }
  if (results.audit) {
    lines.push(
      '',
      `Audit chain (issue 8): sealer on ${results.audit.on.map(f0).join(', ')} vs off ${results.audit.off.map(f0).join(', ')} transfers/s at 8 connections (runs alternated ABBA BAAB) → ratio of the means on/off **${f2(results.audit.ratio)}** (target ≥ 0.9). CPU per transfer (server + PostgreSQL backends): ${f2(results.audit.cpuMsPerTransferOn)} ms on vs ${f2(results.audit.cpuMsPerTransferOff)} ms off (off/on ${f2(results.audit.cpuMsPerTransferOff / results.audit.cpuMsPerTransferOn)}). Verification afterwards: ${JSON.stringify(results.audit.verify)}.`,
    );
  }
  if (results.preload) {
    lines.push(
      '',
      `Growth ledger: ${results.preload.entries} journal entries (${results.preload.transactions} transactions over the past year) preloaded in ${f1(results.preload.seconds)} s in ${results.preload.batches} batches.`,
    );
  }

  lines.push('', "## PostgreSQL's view and CPU per transfer, run by run", '');
  lines.push(
    '| round | scenario | clients | tx/s | transfers per batch | commits / tx | rows inserted / tx | rows updated / tx | lock waits mean (max) | active backends mean | idle in transaction mean | waits of active backends | server CPU (cores) | server CPU ms / tx | PG backends CPU ms / tx | load generator CPU (cores) | all three, CPU ms / tx |',
  );
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|');
  const waitsText = (s?: Sampling) =>
    s
      ? Object.entries(s.waits)
          .slice(0, 4)
          .map(([k, v]) => `${k} ${(v * 100).toFixed(0)}%`)
          .join(', ')
      : '—';
  const rows: Array<{ order: number; line: string }> = [];
  for (const p of results.pgbench) {
    const s = p.sampling;
    rows.push({
      order: p.seq,
      line: `| ${p.round} | pgbench | ${p.clients} | ${f0(p.tps)} | 1 | 1 | 1 | 3 | ${f2(s.lockWaitsMean)} (${s.lockWaitsMax}) | ${f1(s.activeMean)} | ${f1(s.idleInTransactionMean)} | ${waitsText(s)} | — | — | ${f2((s.backendCpuSeconds * 1000) / Math.max(1, p.transactions))} | ${f2(p.clientCpuSeconds / SECONDS)} | ${f2(((s.backendCpuSeconds + p.clientCpuSeconds) * 1000) / Math.max(1, p.transactions))} |`,
    });
  }
  for (const run of results.runs) {
    const s = run.sampling;
    const n = Math.max(1, run.load.ok);
    const c = run.counters;
    rows.push({
      order: run.seq,
      line: `| ${run.round} | ${run.scenario} | ${run.load.connections} | ${f0(run.load.tps)} | ${run.transfersPerBatch ? f1(run.transfersPerBatch) : '—'} | ${c ? f2(c.xact_commit / n) : '—'} | ${c ? f2(c.tup_inserted / n) : '—'} | ${c ? f2(c.tup_updated / n) : '—'} | ${s ? `${f2(s.lockWaitsMean)} (${s.lockWaitsMax})` : '—'} | ${s ? f1(s.activeMean) : '—'} | ${s ? f1(s.idleInTransactionMean) : '—'} | ${waitsText(s)} | ${run.serverCpuSeconds !== undefined ? f2(run.serverCpuSeconds / run.load.seconds) : '—'} | ${run.serverCpuSeconds !== undefined ? f2((run.serverCpuSeconds * 1000) / n) : '—'} | ${s ? f2((s.backendCpuSeconds * 1000) / n) : '—'} | ${f2(run.load.clientCpuSeconds / run.load.seconds)} | ${s && run.serverCpuSeconds !== undefined ? f2(((s.backendCpuSeconds + run.serverCpuSeconds + run.load.clientCpuSeconds) * 1000) / n) : run.serverCpuSeconds !== undefined ? f2(((run.serverCpuSeconds + run.load.clientCpuSeconds) * 1000) / n) : '—'} |`,
    });
  }
  lines.push(...rows.sort((a, b) => a.order - b.order).map((r) => r.line));

  if (Object.keys(results.timings).length) {
    lines.push('', '## Reads at both sizes (median of 20 sequential calls, ms; the new customer: 5 calls)', '');
    lines.push(
      '| ledger | journal entries | transactions | one-month statement (customer) | GET /transactions/?limit=20 admin | same, customer with history | same, new customer without any |',
    );
    lines.push('|---|---:|---:|---|---:|---:|---:|');
    for (const [name, t] of Object.entries(results.timings)) {
      const st = 'skipped' in t.statement ? `skipped: ${t.statement.skipped}` : `${f1(t.statement.medianMs)} (${t.statement.note})`;
      lines.push(
        `| ${name} | ${t.ledgerEntries} | ${t.transactions} | ${st} | ${f1(t.listAdmin.medianMs)} | ${f1(t.listCustomer.medianMs)} | ${f1(t.listNewCustomer.medianMs)} |`,
      );
    }
  }

  if (results.roundTrips) {
    const r = results.roundTrips;
    lines.push('', '## Round trips per transfer (in process, sequential, pg.Client#query spy)', '');
    lines.push(
      `Statements per transfer: ${r.statementsPerTransfer}, of which ${r.inTransactionPerTransfer} between BEGIN and COMMIT and ${r.outsideTransactionPerTransfer} each a transaction of its own; pg_stat_database per transfer: ${JSON.stringify(r.perTransfer)}.`,
      '',
      '| # | statement | median round trip ms |',
      '|---:|---|---:|',
      ...r.sequence.map((s, i) => `| ${i + 1} | \`${s}\` | ${f2(r.medianMs[i])} |`),
    );
  }

  if (results.inDatabase) {
    const d = results.inDatabase;
    lines.push(
      '',
      '## Inside PostgreSQL alone (one backend, one PL/pgSQL loop, a commit per iteration without waiting for the disk; no network, no client)',
      '',
      '| work | ms each | to TPC-B |',
      '|---|---:|---:|',
      `| TPC-B transaction (3 updates, a select, an insert; scale 10) | ${d.tpcbMs} | 1.0 |`,
      `| bare transfer (2 rows locked and checked, 2 updates, 3 inserts; primary keys only) | ${d.bareTransferMs} | ${f1(d.bareTransferMs / d.tpcbMs)} |`,
      ...d.transfers.flatMap((t) => {
        const label = t.batchSize === 1 ? 'a lone transfer' : `transfers in batches of ${t.batchSize}, each`;
        return [
          `| ${label}: \`transfer_batch\` (tokens, stored keys read, locks, history, checks, postings, audit entries, answers stored) | ${t.statementMs} | ${f1(t.statementMs / d.tpcbMs)} |`,
          `| ${label}: commit (deferred balance checks) | ${t.commitMs} | ${f1(t.commitMs / d.tpcbMs)} |`,
          `| ${label}, both | ${t.totalMs} | **${f1(t.totalMs / d.tpcbMs)}** |`,
        ];
      }),
      '',
      `${d.iterations} of each, alternated in two halves after a warm-up, on one scratch database.`,
    );
  }

  if (results.profile) {
    lines.push(
      '',
      `## CPU profile of the server at ${results.profile.connections} connections (${f0(results.profile.load.tps)} transfers/s under the profiler)`,
      '',
    );
    lines.push(profileMarkdown({ ...results.profile.summary, functions: results.profile.summary.functions.slice(0, 20) }));
  }
  if (results.failures.length) lines.push('', '## FAILURES', '', ...results.failures.map((f) => `- ${f}`));
  return lines.join('\n');
}

// ---------------------------------------------------------------- main

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = true;
    log(`${signal}: cleaning up`);
    void (async () => {
      for (const cleanup of cleanups) await cleanup().catch(() => {});
      await dropAllScratchDatabases();
      process.exit(130);
    })();
  });
}

async function phase(name: string, fn: () => Promise<void>): Promise<void> {
  if (!PHASES.has(name) || interrupted) return;
  log(`----- phase ${name}`);
  try {
    await fn();
  } catch (error) {
    results.failures.push(`phase ${name} failed: ${(error as Error).stack ?? String(error)}`);
    log(`phase ${name} FAILED: ${(error as Error).message}`);
  }
}

try {
  results.machine = await describeMachine();
  log(`results in ${OUT}`);
  await phase('service', phaseService);
  await phase('audit', phaseAudit);
  await phase('pglite', phasePglite);
  await phase('profile', phaseProfile);
  await phase('roundtrips', async () => {
    results.roundTrips = await countRoundTrips(200);
  });
  await phase('indatabase', async () => {
    results.inDatabase = await measureInDatabase();
    log(`in the database: ${JSON.stringify(results.inDatabase)}`);
  });
} finally {
  for (const cleanup of cleanups) await cleanup().catch(() => {});
  await dropAllScratchDatabases();
  if (emptyTarget) rmSync(emptyTarget.dataDir, { recursive: true, force: true });
}

const markdown = report();
writeFileSync(join(OUT, 'results.json'), JSON.stringify(results, null, 2));
writeFileSync(join(OUT, 'results.md'), markdown);
console.log('\n' + markdown + '\n');
console.log(`results: ${OUT}`);
process.exit(results.failures.length ? 1 : 0);
