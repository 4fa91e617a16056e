import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { purgeExpiredIdempotencyKeys } from '../src/db/idempotency.js';
import { testApp, type Client, type Customer, type TestApp } from './helpers/app.js';

// Many transfers from few accounts: keep the rate limit and the risk rules out of the way, so that
// every answer below is about idempotency alone.
const ENV = {
  RATE_LIMIT_TRANSFERS_PER_MINUTE: '100000',
  RISK_VELOCITY_COUNT: '0',
  RISK_NEW_ACCOUNT_AMOUNT: '0',
  RISK_NEW_PAYEE_AMOUNT: '0',
};

describe('Idempotency-Key', () => {
  let bank: TestApp;
  beforeAll(async () => {
    bank = await testApp(ENV);
  });

  const db = () => bank.database.handle.db;

  async function transactionCount(): Promise<number> {
    const row = await db()
      .selectFrom('transactions')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async function balanceOf(client: Customer): Promise<string> {
    const response = await bank.admin.get(`/accounts/${client.account.id}`);
    expect(response.statusCode).toBe(200);
    return response.data.balance as string;
  }

  async function keyRows(key: string) {
    return db().selectFrom('idempotency_keys').selectAll().where('key', '=', key).execute();
  }

  const transferOf = (from: Customer, to: Customer, amount: string, extra: Record<string, unknown> = {}) => ({
    from_account: from.account.account_number,
    to_account: to.account.account_number,
    amount,
    ...extra,
  });

  it('replays a repeated transfer: same status and body, Idempotent-Replayed on the repeat, money moved once', async () => {
    const alice = await bank.customer('1000.00');
    const bob = await bank.customer();
    const key = randomUUID();
    const body = transferOf(alice, bob, '125.50', { description: 'rent' });
    const before = await transactionCount();

    const first = await alice.post('/transactions/transfer', body, { 'idempotency-key': key });
    expect(first.statusCode).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    expect(first.data).toMatchObject({ type: 'transfer', status: 'completed', amount: '125.50', description: 'rent' });
    expect(first.data.transaction_id).toBe(first.data.id);

    const second = await alice.post('/transactions/transfer', body, { 'idempotency-key': key });
    expect(second.statusCode).toBe(201);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(second.data).toEqual(first.data);
    expect(second.body).toBe(first.body);

    const third = await alice.post('/transactions/transfer', body, { 'idempotency-key': key });
    expect(third.statusCode).toBe(201);
    expect(third.headers['idempotent-replayed']).toBe('true');
    expect(third.data).toEqual(first.data);

    expect(await transactionCount()).toBe(before + 1);
    expect(await balanceOf(alice)).toBe('874.50');
    expect(await balanceOf(bob)).toBe('125.50');
    const listed = await alice.get(`/transactions/?account_id=${alice.account.id}&type=transfer`);
    expect(listed.data.items.map((t: { id: string }) => t.id)).toEqual([first.data.id]);
  });

  it('a key sent without one is not a replay: requests without a key each move money', async () => {
    const alice = await bank.customer('100.00');
    const bob = await bank.customer();
    const body = transferOf(alice, bob, '10.00');
    const first = await alice.post('/transactions/transfer', body);
    const second = await alice.post('/transactions/transfer', body);
    expect([first.statusCode, second.statusCode]).toEqual([201, 201]);
    expect(second.data.id).not.toBe(first.data.id);
    expect(second.headers['idempotent-replayed']).toBeUndefined();
    expect(await balanceOf(alice)).toBe('80.00');
  });

  it('refuses the same key with a different body (422 idempotency_key_reused) and changes nothing', async () => {
    const alice = await bank.customer('1000.00');
    const bob = await bank.customer();
    const carol = await bank.customer();
    const key = randomUUID();
    const first = await alice.post('/transactions/transfer', transferOf(alice, bob, '100.00'), { 'idempotency-key': key });
    expect(first.statusCode).toBe(201);
    const before = await transactionCount();

    for (const body of [
      transferOf(alice, bob, '100.01'),
      transferOf(alice, carol, '100.00'),
      transferOf(alice, bob, '100.00', { description: 'now with a description' }),
    ]) {
      const reused = await alice.post('/transactions/transfer', body, { 'idempotency-key': key });
      expect(reused.statusCode).toBe(422);
      expect(reused.headers['content-type']).toMatch(/application\/problem\+json/);
      expect(reused.data.code).toBe('idempotency_key_reused');
      expect(reused.headers['idempotent-replayed']).toBeUndefined();
    }

    expect(await transactionCount()).toBe(before);
    expect(await balanceOf(alice)).toBe('900.00');
    expect(await balanceOf(bob)).toBe('100.00');
    expect(await balanceOf(carol)).toBe('0.00');
    const rows = await keyRows(key);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.transaction_id).toBe(first.data.id);

    // The original request with that key still replays its first answer.
    const replay = await alice.post('/transactions/transfer', transferOf(alice, bob, '100.00'), { 'idempotency-key': key });
    expect(replay.statusCode).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.data).toEqual(first.data);
  });

  it('compares what requests mean, not how they are written: "7", 7 and "7.00" in any key order are one transfer; 7.01 reuses the key', async () => {
    const alice = await bank.customer('100.00');
    const bob = await bank.customer();
    const key = { 'idempotency-key': randomUUID() };
    const first = await alice.post('/transactions/transfer', transferOf(alice, bob, '7'), key);
    expect(first.statusCode).toBe(201);
    for (const body of [
      { amount: 7, to_account: bob.account.account_number, from_account: alice.account.account_number },
      transferOf(alice, bob, '7.00'),
      transferOf(alice, bob, '7.0'),
    ]) {
      const repeat = await alice.post('/transactions/transfer', body, key);
      expect(repeat.statusCode, repeat.body).toBe(201);
      expect(repeat.headers['idempotent-replayed']).toBe('true');
      expect(repeat.data).toEqual(first.data);
    }
    const reused = await alice.post('/transactions/transfer', transferOf(alice, bob, '7.01'), key);
    expect(reused.statusCode).toBe(422);
    expect(reused.data.code).toBe('idempotency_key_reused');
    expect(await balanceOf(alice)).toBe('93.00');
  });

  it('compares what teller requests and loan repayments mean, not how they are written (amounts, key order, the letter case of ids)', async () => {
    const alice = await bank.customer('100.00');
    const applied = await alice.post('/loans', { account_id: alice.account.id, principal: '100.00', term_months: 2 });
    expect((await bank.admin.post(`/loans/${applied.data.id}/approve`, {})).statusCode).toBe(200);
    const endpoints: [url: string, client: Client, extra: Record<string, unknown>][] = [
      [`/accounts/${alice.account.id}/deposit`, bank.admin, { description: 'cash' }],
      [`/accounts/${alice.account.id}/withdraw`, bank.admin, {}],
      [`/loans/${applied.data.id}/repay`, alice, { from_account_id: alice.account.id }],
    ];
    for (const [url, client, extra] of endpoints) {
      const key = { 'idempotency-key': randomUUID() };
      const first = await client.post(url, { amount: '7', ...extra }, key);
      expect(first.statusCode, first.body).toBe(201);
      // Ids compare as UUIDs do, whatever their letter case, in the path and in the body.
      const upperIds = (text: string) => text.replace(/[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}/g, (id) => id.toUpperCase());
      const upperExtra = Object.fromEntries(
        Object.entries(extra).map(([name, value]) => [name, typeof value === 'string' ? upperIds(value) : value]),
      );
      for (const [path, body] of [
        [url, { ...extra, amount: 7 }],
        [url, { amount: '7.00', ...extra }],
        [upperIds(url), { amount: '7', ...upperExtra }],
      ] as const) {
        const repeat = await client.post(path, body, key);
        expect(repeat.statusCode, repeat.body).toBe(201);
        expect(repeat.headers['idempotent-replayed'], path).toBe('true');
        expect(repeat.data).toEqual(first.data);
      }
      const reused = await client.post(url, { amount: '7.01', ...extra }, key);
      expect(reused.statusCode).toBe(422);
      expect(reused.data.code).toBe('idempotency_key_reused');
    }
    // 100.00 + the loan's 100.00 + 7.00 deposited - 7.00 withdrawn - 7.00 repaid
    expect(await balanceOf(alice)).toBe('193.00');
  });

  it('scopes a key to its user: another user with the same key moves money independently', async () => {
    const alice = await bank.customer('500.00');
    const dave = await bank.customer('500.00');
    const erin = await bank.customer();
    const key = randomUUID();

    const byAlice = await alice.post('/transactions/transfer', transferOf(alice, erin, '50.00'), { 'idempotency-key': key });
    const byDave = await dave.post('/transactions/transfer', transferOf(dave, erin, '50.00'), { 'idempotency-key': key });
    expect(byAlice.statusCode).toBe(201);
    expect(byDave.statusCode).toBe(201);
    expect(byDave.headers['idempotent-replayed']).toBeUndefined();
    expect(byDave.data.id).not.toBe(byAlice.data.id);
    expect(byDave.data.from_account).toBe(dave.account.account_number);

    expect(await balanceOf(alice)).toBe('450.00');
    expect(await balanceOf(dave)).toBe('450.00');
    expect(await balanceOf(erin)).toBe('100.00');
    expect(await keyRows(key)).toHaveLength(2);
  });

  it('scopes a key to its endpoint: deposit, withdraw and transfer with one key are independent', async () => {
    const alice = await bank.customer('200.00');
    const bob = await bank.customer();
    const key = randomUUID();

    const deposited = await bank.admin.post(`/accounts/${alice.account.id}/deposit`, { amount: '30.00' }, { 'idempotency-key': key });
    expect(deposited.statusCode).toBe(201);
    expect(deposited.data).toMatchObject({
      type: 'deposit',
      amount: '30.00',
      to_account: alice.account.account_number,
      from_account: null,
    });

    const withdrawn = await bank.admin.post(`/accounts/${alice.account.id}/withdraw`, { amount: '30.00' }, { 'idempotency-key': key });
    expect(withdrawn.statusCode).toBe(201);
    expect(withdrawn.headers['idempotent-replayed']).toBeUndefined();
    expect(withdrawn.data).toMatchObject({
      type: 'withdrawal',
      amount: '30.00',
      from_account: alice.account.account_number,
      to_account: null,
    });

    const sent = await alice.post('/transactions/transfer', transferOf(alice, bob, '30.00'), { 'idempotency-key': key });
    expect(sent.statusCode).toBe(201);
    expect(sent.headers['idempotent-replayed']).toBeUndefined();

    expect(new Set([deposited.data.id, withdrawn.data.id, sent.data.id]).size).toBe(3);
    expect(await balanceOf(alice)).toBe('170.00');
    expect(await balanceOf(bob)).toBe('30.00');
    expect(await keyRows(key)).toHaveLength(3);
  });

  it('honours keys on teller deposits and withdrawals (admin)', async () => {
    const alice = await bank.customer('100.00');
    const depositKey = randomUUID();
    const withdrawKey = randomUUID();
    const before = await transactionCount();

    const deposit = await bank.admin.post(
      `/accounts/${alice.account.id}/deposit`,
      { amount: '40.00', description: 'cash' },
      { 'idempotency-key': depositKey },
    );
    const depositAgain = await bank.admin.post(
      `/accounts/${alice.account.id}/deposit`,
      { amount: '40.00', description: 'cash' },
      { 'idempotency-key': depositKey },
    );
    expect(deposit.statusCode).toBe(201);
    expect(deposit.headers['idempotent-replayed']).toBeUndefined();
    expect(depositAgain.statusCode).toBe(201);
    expect(depositAgain.headers['idempotent-replayed']).toBe('true');
    expect(depositAgain.data).toEqual(deposit.data);
    expect(await balanceOf(alice)).toBe('140.00');

    const withdrawal = await bank.admin.post(
      `/accounts/${alice.account.id}/withdraw`,
      { amount: '15.00' },
      { 'idempotency-key': withdrawKey },
    );
    const withdrawalAgain = await bank.admin.post(
      `/accounts/${alice.account.id}/withdraw`,
      { amount: '15.00' },
      { 'idempotency-key': withdrawKey },
    );
    expect(withdrawal.statusCode).toBe(201);
    expect(withdrawalAgain.statusCode).toBe(201);
    expect(withdrawalAgain.headers['idempotent-replayed']).toBe('true');
    expect(withdrawalAgain.data).toEqual(withdrawal.data);
    expect(await balanceOf(alice)).toBe('125.00');
    expect(await transactionCount()).toBe(before + 2);

    // Same key, different amount on the same endpoint: refused, nothing moves.
    const changed = await bank.admin.post(
      `/accounts/${alice.account.id}/deposit`,
      { amount: '41.00', description: 'cash' },
      { 'idempotency-key': depositKey },
    );
    expect(changed.statusCode).toBe(422);
    expect(changed.data.code).toBe('idempotency_key_reused');
    // Same key and body, but another account (the concrete path is part of the request): refused too.
    const bob = await bank.customer('1.00');
    const elsewhere = await bank.admin.post(
      `/accounts/${bob.account.id}/deposit`,
      { amount: '40.00', description: 'cash' },
      { 'idempotency-key': depositKey },
    );
    expect(elsewhere.statusCode).toBe(422);
    expect(elsewhere.data.code).toBe('idempotency_key_reused');
    expect(await balanceOf(alice)).toBe('125.00');
    expect(await balanceOf(bob)).toBe('1.00');
  });

  it('validates the key: 255 characters pass, 256 and the empty key answer 422', async () => {
    const alice = await bank.customer('100.00');
    const bob = await bank.customer();
    const before = await transactionCount();

    for (const key of ['k'.repeat(256), '']) {
      const response = await alice.post('/transactions/transfer', transferOf(alice, bob, '1.00'), { 'idempotency-key': key });
      expect(response.statusCode).toBe(422);
      expect(response.data.code).toBe('validation_error');
    }
    const tooLongDeposit = await bank.admin.post(
      `/accounts/${alice.account.id}/deposit`,
      { amount: '1.00' },
      { 'idempotency-key': 'k'.repeat(256) },
    );
    expect(tooLongDeposit.statusCode).toBe(422);
    expect(tooLongDeposit.data.code).toBe('validation_error');
    expect(await transactionCount()).toBe(before);
    expect(await balanceOf(alice)).toBe('100.00');

    const longest = `${randomUUID()}${'k'.repeat(255 - 36)}`;
    expect(longest).toHaveLength(255);
    const accepted = await alice.post('/transactions/transfer', transferOf(alice, bob, '1.00'), { 'idempotency-key': longest });
    expect(accepted.statusCode).toBe(201);
    const replayed = await alice.post('/transactions/transfer', transferOf(alice, bob, '1.00'), { 'idempotency-key': longest });
    expect(replayed.headers['idempotent-replayed']).toBe('true');
    expect(await balanceOf(alice)).toBe('99.00');
  });

  it('purges keys older than 24 hours and keeps fresh ones', async () => {
    const alice = await bank.customer('100.00');
    const bob = await bank.customer();
    const freshKey = randomUUID();
    const oldKey = randomUUID();

    const fresh = await alice.post('/transactions/transfer', transferOf(alice, bob, '5.00'), { 'idempotency-key': freshKey });
    expect(fresh.statusCode).toBe(201);
    await db()
      .insertInto('idempotency_keys')
      .values({
        user_id: alice.user.id,
        endpoint: 'POST /transactions/transfer',
        key: oldKey,
        fingerprint: 'f'.repeat(64),
        transaction_id: fresh.data.id,
        created_at: sql<Date>`now() - interval '25 hours'`,
      })
      .execute();
    expect(await keyRows(oldKey)).toHaveLength(1);

    const purged = await purgeExpiredIdempotencyKeys(db());
    expect(purged).toBeGreaterThanOrEqual(1n);
    expect(await keyRows(oldKey)).toHaveLength(0);
    expect(await keyRows(freshKey)).toHaveLength(1);

    // Purging again finds nothing of ours; the fresh key still replays.
    await purgeExpiredIdempotencyKeys(db());
    const replayed = await alice.post('/transactions/transfer', transferOf(alice, bob, '5.00'), { 'idempotency-key': freshKey });
    expect(replayed.statusCode).toBe(201);
    expect(replayed.headers['idempotent-replayed']).toBe('true');
    expect(replayed.data).toEqual(fresh.data);

    // The purged key is free again: the request runs (and moves money) afresh.
    const rerun = await alice.post('/transactions/transfer', transferOf(alice, bob, '5.00'), { 'idempotency-key': oldKey });
    expect(rerun.statusCode).toBe(201);
    expect(rerun.headers['idempotent-replayed']).toBeUndefined();
    expect(await balanceOf(alice)).toBe('90.00');
  });

  it('leaves the ledger reconciled', async () => {
    const report = await bank.admin.get('/reports/reconciliation');
    expect(report.statusCode).toBe(200);
    expect(report.data).toMatchObject({ ok: true, ledger_sum: '0.00', mismatches: [] });
  });
});
