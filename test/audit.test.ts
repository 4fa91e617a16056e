import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../src/audit/canonical-json.js';
import { sealPending, verifyChain } from '../src/audit/chain.js';
import { testApp, type Customer, type TestApp } from './helpers/app.js';

/**
 * The sealer takes entries of finished transactions only, judged by the snapshot's xmin, which is
 * cluster-wide: busy transactions of other test files on the same server delay it for a moment.
 */
async function sealEverything(bank: TestApp): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await verifyChain(bank.database.handle.db)).unsealed > 0) {
    if (Date.now() > deadline) throw new Error('the sealer did not catch up within 30 s');
    await sealPending(bank.database.handle);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('the audit log and its hash chain', () => {
  let bank: TestApp;
  let alice: Customer;
  let bob: Customer;
  beforeAll(async () => {
    bank = await testApp();
    alice = await bank.customer('500.00');
    bob = await bank.customer('10.00');
    await alice.post('/transactions/transfer', {
      from_account: alice.account.account_number,
      to_account: bob.account.account_number,
      amount: '12.34',
    });
    await bank.anonymous.post('/auth/login', { email: alice.user.email, password: 'wrong password' });
  });

  it('records every change and login with actor, role, target, ip and request id', async () => {
    const auditor = await bank.user('auditor');
    const page = await auditor.get('/audit-logs?limit=100');
    expect(page.statusCode).toBe(200);
    const actions = page.data.items.map((entry: { action: string }) => entry.action);
    for (const action of ['auth.login', 'auth.login_failed', 'user.created', 'account.created', 'account.deposited', 'transfer.created']) {
      expect(actions).toContain(action);
    }
    const transfer = page.data.items.find((entry: { action: string }) => entry.action === 'transfer.created');
    expect(transfer).toMatchObject({ actor_id: alice.user.id, actor_role: 'customer', target_type: 'transaction', ip: '127.0.0.1' });
    expect(transfer.request_id).toEqual(expect.any(String));
    expect(transfer.details).toMatchObject({ amount: '12.34', from_account: alice.account.account_number });
    expect(JSON.stringify(page.data)).not.toMatch(/password_hash|\$2b\$|wrong password/);
  });

  it('filters by actor, action, target and date, and pages without repeats', async () => {
    const byAction = await bank.admin.get('/audit-logs?action=transfer.created');
    expect(byAction.data.items.map((e: { action: string }) => e.action)).toEqual(['transfer.created']);
    const byActor = await bank.admin.get(`/audit-logs?actor_id=${alice.user.id}`);
    expect(byActor.data.items.every((e: { actor_id: string }) => e.actor_id === alice.user.id)).toBe(true);
    const byTarget = await bank.admin.get(`/audit-logs?target_type=account&target_id=${alice.account.id}`);
    expect(byTarget.data.items.map((e: { action: string }) => e.action)).toEqual(['account.created']);
    const today = new Date().toISOString().slice(0, 10);
    expect((await bank.admin.get(`/audit-logs?from=${today}&to=${today}`)).data.items.length).toBeGreaterThan(0);
    expect((await bank.admin.get('/audit-logs?from=2000-01-01&to=2000-01-02')).data.items).toEqual([]);
    expect((await bank.admin.get('/audit-logs?from=2020-02-02&to=2020-02-01')).statusCode).toBe(422);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await bank.admin.get(`/audit-logs?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...page.data.items.map((e: { id: string }) => e.id));
      cursor = page.data.next_cursor;
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);
    const total = await bank.database.handle.db
      .selectFrom('audit_log')
      .select((eb) => eb.fn.countAll<bigint>().as('n'))
      .executeTakeFirstOrThrow();
    expect(seen.length).toBe(Number(total.n));
  });

  it('is readable by auditors and admins only', async () => {
    expect((await alice.get('/audit-logs')).statusCode).toBe(403);
    expect((await alice.get('/audit-logs/verify')).statusCode).toBe(403);
    expect((await bank.anonymous.get('/audit-logs')).statusCode).toBe(401);
  });

  it('seals every entry into a chain that verifies', async () => {
    await sealEverything(bank);
    const report = await bank.admin.get('/audit-logs/verify');
    expect(report.statusCode).toBe(200);
    expect(report.data).toMatchObject({ ok: true, first_invalid_sequence: null, unsealed: 0, sealer_lag_seconds: 0 });
    expect(report.data.checked).toBe(report.data.sealed);
    const entries = (await bank.admin.get('/audit-logs?limit=100')).data.items;
    const bySequence = [...entries].sort((a, b) => a.sequence - b.sequence);
    expect(bySequence[0]).toMatchObject({ sequence: 1, prev_hash: '0'.repeat(64) });
    for (let i = 1; i < bySequence.length; i++) expect(bySequence[i].prev_hash).toBe(bySequence[i - 1].hash);
  });

  it('seals a backlog larger than a batch, one transaction’s entries spanning batches, each entry once and in order', async () => {
    await sealEverything(bank);
    const before = await verifyChain(bank.database.handle.db);
    // 620 entries written by one database transaction: the sealer's batches (250 entries) stop inside it.
    await bank.database.handle.withSession((session) =>
      session.script(`INSERT INTO audit_log (actor_role, action, target_type, target_id, details)
                      SELECT 'system', 'test.backlog', 'test', i::text, jsonb_build_object('i', i) FROM generate_series(1, 620) AS i`),
    );
    await sealEverything(bank);
    const report = await verifyChain(bank.database.handle.db);
    expect(report).toMatchObject({ ok: true, first_invalid_sequence: null, unsealed: 0, sealed: before.sealed + 620 });
    const { rows } = await sql<{ target_id: string; sequence: string }>`
      SELECT a.target_id, c.sequence FROM audit_log a JOIN audit_chain c ON c.entry_id = a.id
       WHERE a.action = 'test.backlog' ORDER BY c.sequence`.execute(bank.database.handle.db);
    expect(rows.map((row) => Number(row.target_id))).toEqual(Array.from({ length: 620 }, (_, i) => i + 1));
  });

  it('refuses UPDATE, DELETE and TRUNCATE of the log and the chain in the database', async () => {
    await sealEverything(bank);
    const db = bank.database.handle.db;
    await expect(sql`UPDATE audit_log SET action = 'auth.login' WHERE action = 'transfer.created'`.execute(db)).rejects.toMatchObject({
      code: '42501',
    });
    await expect(sql`DELETE FROM audit_log`.execute(db)).rejects.toMatchObject({ code: '42501' });
    await expect(sql`TRUNCATE audit_log CASCADE`.execute(db)).rejects.toMatchObject({ code: '42501' });
    await expect(sql`UPDATE audit_chain SET hash = repeat('a', 64) WHERE sequence = 1`.execute(db)).rejects.toMatchObject({
      code: '42501',
    });
  });

  it('detects an entry changed by a superuser who bypassed the triggers, naming its sequence', async () => {
    await sealEverything(bank);
    const target = await bank.database.handle.db
      .selectFrom('audit_log as a')
      .innerJoin('audit_chain as c', 'c.entry_id', 'a.id')
      .select(['a.id', 'c.sequence'])
      .where('a.action', '=', 'transfer.created')
      .executeTakeFirstOrThrow();
    await bank.database.handle.withSession(async (session) => {
      // session_replication_role = replica switches ordinary triggers off for this session (superuser only).
      await session.script(`SET session_replication_role = replica`);
      await session.query(`UPDATE audit_log SET details = jsonb_set(details, '{amount}', '"0.01"') WHERE id = $1`, [target.id]);
      await session.script(`SET session_replication_role = origin`);
    });
    const report = await verifyChain(bank.database.handle.db);
    expect(report.ok).toBe(false);
    expect(report.first_invalid_sequence).toBe(Number(target.sequence));
    expect(report.checked).toBe(Number(target.sequence) - 1);
  });
});

describe('canonical JSON (RFC 8785)', () => {
  it('sorts keys, drops whitespace and writes numbers as ECMAScript does', () => {
    expect(canonicalJson({ b: 1, a: [true, null, 'x'], c: { z: 1.5, y: 1e21 } })).toBe(
      '{"a":[true,null,"x"],"b":1,"c":{"y":1e+21,"z":1.5}}',
    );
    expect(canonicalJson({ '\u00e9': 1, e: 2 })).toBe('{"e":2,"é":1}');
    expect(() => canonicalJson({ x: Number.NaN })).toThrow(TypeError);
  });
});
