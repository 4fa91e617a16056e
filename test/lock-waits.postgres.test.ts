import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp, type TestApp } from './helpers/app.js';

/**
 * A transfer's first statement waits for two kinds of lock: the idempotency key another request with
 * the same key has claimed, and the accounts another transaction holds. Both waits end at the pool's
 * lock_timeout (5 s), and they mean different things to the client: a key still being processed is
 * 409 idempotency_in_progress (retry later for the stored answer); a busy account is 503 (nothing
 * happened, retry). A second session of our own holds each lock past the timeout.
 */
describe('lock waits of a transfer on PostgreSQL', () => {
  let bank: TestApp;
  let holder: pg.Client;
  beforeAll(async () => {
    bank = await testApp({ RISK_NEW_PAYEE_AMOUNT: '0', RISK_NEW_ACCOUNT_AMOUNT: '0' });
    holder = new pg.Client({ connectionString: bank.database.url });
    await holder.connect();
  });
  afterAll(async () => {
    await holder.end();
  });

  it('answers 409 idempotency_in_progress while the key is claimed, and 503 while the account is locked', async () => {
    const alice = await bank.customer('100.00');
    const bob = await bank.customer('100.00');
    const carol = await bank.customer('100.00');
    const body = (from: string) => ({ from_account: from, to_account: carol.account.account_number, amount: '1.00' });
    const endpoint = 'POST /transactions/transfer';

    await holder.query('BEGIN');
    // As a first request with this key would have: claimed, not yet committed.
    await holder.query(`INSERT INTO idempotency_keys (user_id, endpoint, key, fingerprint) VALUES ($1, $2, 'k-held', 'x')`, [alice.user.id, endpoint]);
    await holder.query('SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE', [bob.account.id]);
    const [keyWait, accountWait] = await Promise.all([
      alice.post('/transactions/transfer', body(alice.account.account_number), { 'idempotency-key': 'k-held' }),
      bob.post('/transactions/transfer', body(bob.account.account_number), { 'idempotency-key': 'k-bob' }),
    ]);
    await holder.query('ROLLBACK');

    expect(keyWait.statusCode).toBe(409);
    expect(keyWait.data.code).toBe('idempotency_in_progress');
    expect(accountWait.statusCode).toBe(503);
    expect(accountWait.data.code).toBe('service_unavailable');

    // Nothing was moved or kept; the same keys now work.
    const retried = await bob.post('/transactions/transfer', body(bob.account.account_number), { 'idempotency-key': 'k-bob' });
    expect(retried.statusCode).toBe(201);
    expect((await bank.admin.get(`/accounts/${alice.account.id}`)).data.balance).toBe('100.00');
  });
});
