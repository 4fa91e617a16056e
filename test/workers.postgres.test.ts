import { execFileSync } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { freePort } from './helpers/private-cluster.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD, http, ServerProcess, sleep, startServer } from './helpers/server-process.js';

/** The pids of a process's cluster workers (its children running the server, not tsx's esbuild). */
function childrenOf(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid), '-f', 'src/server.ts'], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number)
      .sort();
  } catch {
    return []; // pgrep exits 1 when there is none
  }
}

async function until<T>(what: string, probe: () => T | Promise<T>, ok: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

const listened = (server: ServerProcess) => server.output().match(/Server listening at/g)?.length ?? 0;

/**
 * WORKERS=2: one supervising process and two workers (Node's cluster module) sharing the port. The
 * real entry point, as a child process, on a PostgreSQL database of its own.
 */
describe('the server with WORKERS=2', () => {
  let database: TestDatabase;
  const servers: ServerProcess[] = [];
  const start = async () => {
    const server = await startServer({ databaseUrl: database.url!, env: { WORKERS: '2', LOG_LEVEL: 'info' } });
    servers.push(server);
    await until(
      'two workers listening',
      () => listened(server),
      (n) => n === 2,
    );
    return server;
  };
  beforeAll(async () => {
    database = await createTestDatabase({ poolSize: 2 });
  });
  afterAll(async () => {
    for (const server of servers) await server.dispose();
    await database?.drop();
  });

  it('serves from two workers, replaces one that dies, and stops them all on SIGTERM with status 0', async () => {
    const server = await start();
    const primary = server.child.pid!;
    const workers = await until(
      'workers',
      () => childrenOf(primary),
      (pids) => pids.length === 2,
    );

    const login = await http(server.url, 'POST', '/auth/login', { body: { email: ADMIN_EMAIL, password: ADMIN_PASSWORD } });
    expect(login.status).toBe(200);
    const token = (login.body as { access_token: string }).access_token;
    const answers = await Promise.all(Array.from({ length: 20 }, () => http(server.url, 'GET', '/users/', { token })));
    expect(answers.every((answer) => answer.status === 200)).toBe(true);

    process.kill(workers[0]!, 'SIGKILL');
    const replaced = await until(
      'a replacement',
      () => childrenOf(primary),
      (pids) => pids.length === 2 && !pids.includes(workers[0]!),
    );
    expect(replaced).toContain(workers[1]);
    await until(
      'the replacement listening',
      () => listened(server),
      (n) => n === 3,
    );
    expect(server.output()).toMatch(/worker \d+ died \(SIGKILL\); starting another/);
    expect((await http(server.url, 'GET', '/users/', { token })).status).toBe(200);

    expect(await server.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(childrenOf(primary)).toEqual([]);
  });

  it('stops cleanly when SIGTERM comes while a replacement worker is still starting', async () => {
    const server = await start();
    const primary = server.child.pid!;
    const [victim] = await until(
      'workers',
      () => childrenOf(primary),
      (pids) => pids.length === 2,
    );
    process.kill(victim!, 'SIGKILL');
    await until(
      'a replacement forked',
      () => childrenOf(primary),
      (pids) => pids.length === 2 && !pids.includes(victim!),
      10_000,
    );
    expect(await server.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(childrenOf(primary)).toEqual([]);
  });

  // Fixed bug: once serving, a replacement that failed to start (the database briefly away) made the
  // supervisor stop every worker and exit 1, turning one worker's crash into an outage.
  it('keeps serving when a replacement cannot start while the database is away, and replaces it once it is back', async () => {
    const server = await start();
    const primary = server.child.pid!;
    const [victim, survivor] = await until(
      'workers',
      () => childrenOf(primary),
      (pids) => pids.length === 2,
    );
    const name = new URL(database.url!).pathname.slice(1);
    const admin = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/postgres' });
    await admin.connect();
    try {
      await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
      process.kill(victim!, 'SIGKILL');
      await until(
        'a replacement failing to start',
        () => server.output().match(/failed to start \(exit 1\); starting another in/g)?.length ?? 0,
        (n) => n >= 2,
      );
      expect(server.child.exitCode).toBeNull();
      expect(childrenOf(primary)).toContain(survivor);
    } finally {
      await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
      await admin.end();
    }
    await until(
      'the replacement listening',
      () => listened(server),
      (n) => n === 3,
    );
    expect(childrenOf(primary)).toHaveLength(2);
    expect(await server.kill('SIGTERM')).toEqual({ code: 0, signal: null });
  });

  it('exits 1 when its workers cannot start, instead of forking them for ever', async () => {
    const broken = new URL(database.url!);
    broken.pathname = '/no_such_database_for_workers';
    const server = new ServerProcess(await freePort(), { databaseUrl: broken.toString(), env: { WORKERS: '2' } });
    servers.push(server);
    server.spawn();
    const exit = await server.exited;
    expect(exit).toEqual({ code: 1, signal: null });
    expect(server.output()).toMatch(/worker \d+ failed to start \(exit 1\); stopping/);
  });
});
