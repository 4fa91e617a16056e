import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMigrations } from '../src/db/migrate.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD, http, sleep, startServers, type HttpAnswer, type ServerProcess } from './helpers/server-process.js';

/**
 * Three real server processes (`node --import tsx src/server.ts`) started at the same instant on one
 * fresh PostgreSQL database: their migrations race, then money races across them through plain HTTP.
 * The guarantees of docs/api.md "Transactions and transfers" must hold exactly as they do on one instance.
 */

const serverUrl = process.env.TEST_DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/postgres';
const databaseName = `bank_multi_${randomBytes(6).toString('hex')}`;
const databaseUrl = (() => {
  const url = new URL(serverUrl);
  url.pathname = `/${databaseName}`;
  return url.toString();
})();

// The rules this file does not examine are turned off, so that only concurrency decides the answers.
const SERVER_ENV = {
  RATE_LIMIT_TRANSFERS_PER_MINUTE: '100000',
  RISK_VELOCITY_COUNT: '0',
  RISK_NEW_PAYEE_AMOUNT: '0',
  RISK_NEW_ACCOUNT_AMOUNT: '0',
  LOGIN_MAX_FAILURES: '1000',
};

async function onServer<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

let servers: ServerProcess[] = [];
let db: pg.Pool;
let tearingDown = false;
let adminToken: string;

interface Customer {
  token: string;
  userId: string;
  account: { id: string; account_number: string };
}

/** Registers a customer through one instance and opens its account through another. */
async function customer(registerOn: ServerProcess, openOn: ServerProcess, initialDeposit?: string): Promise<Customer> {
  const suffix = randomBytes(4).toString('hex');
  const registered = await http(registerOn.url, 'POST', '/auth/register', {
    token: adminToken,
    body: { name: `Customer ${suffix}`, email: `c-${suffix}@bank.test`, password: `password-${suffix}`, role: 'customer' },
  });
  expect(registered.status, registered.text).toBe(201);
  const opened = await http(openOn.url, 'POST', `/accounts/?user_id=${registered.body.user.id}`, {
    token: adminToken,
    body: initialDeposit ? { initial_deposit: initialDeposit } : {},
  });
  expect(opened.status, opened.text).toBe(201);
  return { token: registered.body.access_token, userId: registered.body.user.id, account: opened.body };
}

function transfer(
  on: ServerProcess,
  from: Customer,
  to: Customer,
  amount: string,
  headers: Record<string, string> = {},
): Promise<HttpAnswer> {
  return http(on.url, 'POST', '/transactions/transfer', {
    token: from.token,
    body: { from_account: from.account.account_number, to_account: to.account.account_number, amount },
    headers,
  });
}

async function balanceOf(account: { id: string }): Promise<string> {
  const { rows } = await db.query<{ balance: string }>('SELECT balance::text AS balance FROM accounts WHERE id = $1', [account.id]);
  return rows[0]!.balance;
}

function diagnostics(): string {
  return servers.map((server) => server.output()).join('\n');
}

describe('three server processes on one PostgreSQL database', () => {
  beforeAll(async () => {
    await onServer(serverUrl, (client) => client.query(`CREATE DATABASE ${databaseName}`));
    db = new pg.Pool({ connectionString: databaseUrl, max: 4 });
    // pool.end() resolves before its connections have closed on the server, so the forced DROP in
    // afterAll may still terminate one (57P01, emitted on the pool). Any other error stays uncaught.
    db.on('error', (error) => {
      if (!tearingDown) throw error;
    });
  });

  afterAll(async () => {
    tearingDown = true;
    await Promise.all(servers.map((server) => server.dispose()));
    await db?.end().catch(() => {});
    await onServer(serverUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`));
  });

  it('all three start at once on an empty database; each migration is applied exactly once', async () => {
    servers = await startServers(3, { databaseUrl, env: SERVER_ENV });
    for (const server of servers) {
      const ready = await http(server.url, 'GET', '/ready');
      expect(ready.status, diagnostics()).toBe(200);
    }
    const { rows } = await db.query<{ version: number; count: string }>(
      'SELECT version, count(*)::text AS count FROM schema_migrations GROUP BY version ORDER BY version',
    );
    expect(rows.map((row) => Number(row.version))).toEqual(readMigrations().map((migration) => migration.version));
    expect(rows.every((row) => row.count === '1')).toBe(true);
    // The three raced to create the admin of ADMIN_EMAIL too: there is exactly one.
    const admins = await db.query("SELECT id FROM users WHERE role = 'admin'");
    expect(admins.rowCount).toBe(1);
  });

  it('a token issued by one instance is honoured by the others', async () => {
    const login = await http(servers[0]!.url, 'POST', '/auth/login', { body: { email: ADMIN_EMAIL, password: ADMIN_PASSWORD } });
    expect(login.status, login.text).toBe(200);
    adminToken = login.body.access_token;
    for (const server of servers) {
      const me = await http(server.url, 'GET', '/auth/me', { token: adminToken });
      expect(me.status, me.text).toBe(200);
      expect(me.body.email).toBe(ADMIN_EMAIL);
    }
  });

  it('60 concurrent transfers of 100.00 from 1000.00, spread over the three instances: exactly 10 succeed', async () => {
    const [s0, s1, s2] = servers as [ServerProcess, ServerProcess, ServerProcess];
    const sender = await customer(s0, s1, '1000.00');
    const receiver = await customer(s1, s2);
    const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => transfer(servers[i % 3]!, sender, receiver, '100.00')));

    const created = answers.filter((a) => a.status === 201);
    const refused = answers.filter((a) => a.status === 422 && a.body?.code === 'insufficient_funds');
    expect(created.length, JSON.stringify(answers.filter((a) => a.status !== 201 && a.status !== 422).map((a) => a.text))).toBe(10);
    expect(refused.length).toBe(50);
    for (const answer of refused) expect(answer.contentType).toMatch(/^application\/problem\+json/);
    expect(new Set(created.map((a) => a.body.id)).size).toBe(10);

    expect(await balanceOf(sender.account)).toBe('0');
    expect(await balanceOf(receiver.account)).toBe('100000');
    const { rows } = await db.query("SELECT count(*)::int AS n FROM transactions WHERE type = 'transfer' AND from_account_id = $1", [
      sender.account.id,
    ]);
    expect(rows[0].n).toBe(10);
    // Each instance sees the same account state.
    for (const server of servers) {
      const account = await http(server.url, 'GET', `/accounts/${sender.account.id}`, { token: sender.token });
      expect(account.status).toBe(200);
      expect(account.body.balance).toBe('0.00');
    }
  });

  it('one Idempotency-Key sent to all three instances at once moves money once', async () => {
    const [s0, s1, s2] = servers as [ServerProcess, ServerProcess, ServerProcess];
    const payer = await customer(s2, s0, '500.00');
    const payee = await customer(s1, s1);
    const key = randomUUID();
    const answers = await Promise.all(
      Array.from({ length: 9 }, (_, i) => transfer(servers[i % 3]!, payer, payee, '25.00', { 'idempotency-key': key })),
    );

    const created = answers.filter((a) => a.status === 201);
    const inProgress = answers.filter((a) => a.status === 409 && a.body?.code === 'idempotency_in_progress');
    expect(created.length + inProgress.length, JSON.stringify(answers.map((a) => [a.status, a.text]))).toBe(answers.length);
    expect(created.length).toBeGreaterThanOrEqual(1);
    const ids = new Set(created.map((a) => a.body.id));
    expect(ids.size).toBe(1);
    // Exactly one answer is the original; every other 201 is a replay of it.
    expect(created.filter((a) => a.headers.get('idempotent-replayed') !== 'true').length).toBe(1);
    const [id] = [...ids];

    // Once settled, the key replays the same answer on every instance.
    for (const server of servers) {
      const again = await transfer(server, payer, payee, '25.00', { 'idempotency-key': key });
      expect(again.status, again.text).toBe(201);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(again.body.id).toBe(id);
    }
    const { rows } = await db.query("SELECT id FROM transactions WHERE type = 'transfer' AND from_account_id = $1", [payer.account.id]);
    expect(rows.map((row) => row.id)).toEqual([id]);
    expect(await balanceOf(payer.account)).toBe('47500');
    expect(await balanceOf(payee.account)).toBe('2500');
  });

  it('random transfers among several customers through all instances keep the ledger reconciled', async () => {
    const people = await Promise.all(Array.from({ length: 4 }, (_, i) => customer(servers[i % 3]!, servers[(i + 1) % 3]!, '300.00')));
    const answers = await Promise.all(
      Array.from({ length: 60 }, (_, i) => {
        const from = people[i % 4]!;
        const to = people[(i + 1 + (i % 3)) % 4]!;
        return transfer(servers[i % 3]!, from, to, String(10 + (i % 7) * 15));
      }),
    );
    for (const answer of answers) {
      expect([201, 422], answer.text).toContain(answer.status);
      if (answer.status === 422) expect(answer.body.code).toBe('insufficient_funds');
    }
    const total = (await Promise.all(people.map((p) => balanceOf(p.account)))).reduce((sum, b) => sum + BigInt(b), 0n);
    expect(total).toBe(120000n);
    const negative = await db.query("SELECT id FROM accounts WHERE type <> 'internal' AND balance < 0");
    expect(negative.rowCount).toBe(0);

    for (const server of servers) {
      const report = await http(server.url, 'GET', '/reports/reconciliation', { token: adminToken });
      expect(report.status, report.text).toBe(200);
      expect(report.body.ok, report.text).toBe(true);
      expect(report.body.ledger_sum).toBe('0.00');
      expect(report.body.mismatches).toEqual([]);
    }
  });

  it('SIGTERM lets the requests in flight finish, then the process exits 0', async () => {
    const [s0, s1, victim] = servers as [ServerProcess, ServerProcess, ServerProcess];
    const payer = await customer(s0, s1, '100.00');
    const payee = await customer(s1, s0);

    // Hold both accounts' rows so that the transfers below wait inside the victim, mid-request.
    const blocker = new pg.Client({ connectionString: databaseUrl });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT id FROM accounts WHERE id = ANY($1) FOR UPDATE', [[payer.account.id, payee.account.id]]);

      // Plain fetch keeps its connections alive: the server must close them after answering, or it
      // would wait for them to idle out and miss its shutdown deadline (exit 1 after 10 s).
      const inFlight = Array.from({ length: 4 }, () =>
        transfer(victim, payer, payee, '1.00').then(
          (answer) => ({ answer }),
          (error: Error) => ({ error }),
        ),
      );
      // Wait until the first is blocked on the row lock inside the database; the other three wait
      // behind it in the victim's group-commit queue, for the next batch.
      const deadline = Date.now() + 3_000;
      for (;;) {
        const { rows } = await db.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
        );
        if (rows[0]!.n >= 1) break;
        if (Date.now() > deadline) throw new Error(`no transfer reached the lock\n${victim.output()}`);
        await sleep(20);
      }
      await sleep(300);

      victim.child.kill('SIGTERM');
      await sleep(400);
      // Still there: it is waiting for the four requests.
      expect(victim.alive, victim.output()).toBe(true);
      await blocker.query('COMMIT');

      const results = await Promise.all(inFlight);
      for (const result of results) {
        expect('answer' in result, 'error' in result ? String(result.error) : '').toBe(true);
        const { answer } = result as { answer: HttpAnswer };
        if (answer.status !== 201) {
          // Anything but success must be a clean problem+json (e.g. 503 if the lock wait ran out), never a 500.
          expect(answer.status, answer.text).not.toBe(500);
          expect(answer.contentType, answer.text).toMatch(/^application\/problem\+json/);
          expect(typeof answer.body?.code, answer.text).toBe('string');
        }
      }
      const exit = await Promise.race([victim.exited, sleep(15_000).then(() => undefined)]);
      expect(exit, `no exit within 15 s of SIGTERM\n${victim.output()}`).toBeDefined();
      expect(exit, victim.output()).toEqual({ code: 0, signal: null });

      // What the answers said is what happened.
      const created = results.filter((r) => 'answer' in r && r.answer.status === 201).length;
      expect(await balanceOf(payer.account)).toBe(String(10000 - created * 100));
    } finally {
      await blocker.end().catch(() => {});
    }

    // The other two carry on.
    for (const server of [s0, s1]) {
      const report = await http(server.url, 'GET', '/reports/reconciliation', { token: adminToken });
      expect(report.status, report.text).toBe(200);
      expect(report.body.ok).toBe(true);
    }
  });
});
