import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp, type TestApp } from './helpers/app.js';

/**
 * A transfer waits for two kinds of lock: the idempotency key that another request with the same key
 * is writing (its answer, with its money, uncommitted), and the accounts another transaction holds.
 * Both waits end at the pool's lock_timeout (5 s), and they mean different things to the client: a key
 * still being processed is 409 idempotency_in_progress (retry later for the stored answer); a busy
 * account is 503 (nothing happened, retry). A second session of our own holds each lock.
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

  it('answers 409 idempotency_in_progress while another transaction is writing the key, and 503 while the account is locked', async () => {
    const alice = await bank.customer('100.00');
    const bob = await bank.customer('100.00');
    const carol = await bank.customer('100.00');
    const body = (from: string) => ({ from_account: from, to_account: carol.account.account_number, amount: '1.00' });
    const endpoint = 'POST /transactions/transfer';

    await holder.query('BEGIN');
    // As a first request with this key would have: written, not yet committed.
    await holder.query(
      `INSERT INTO idempotency_keys (user_id, endpoint, key, fingerprint, problem_code) VALUES ($1, $2, 'k-held', 'x', 'insufficient_funds')`,
      [alice.user.id, endpoint],
    );
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

  it('replays the answer of a request with the same key that commits while the transfer waits on it, and runs the transfer when that one rolls back', async () => {
    const alice = await bank.customer('100.00');
    const carol = await bank.customer();
    const body = { from_account: alice.account.account_number, to_account: carol.account.account_number, amount: '1.00' };
    const first = await alice.post('/transactions/transfer', body, { 'idempotency-key': 'k-first' });
    expect(first.statusCode).toBe(201);
    const [stored] = (
      await holder.query(`SELECT user_id, endpoint, fingerprint, transaction_id FROM idempotency_keys WHERE key = 'k-first'`)
    ).rows;
    const race = async (key: string, end: 'COMMIT' | 'ROLLBACK') => {
      await holder.query('BEGIN');
      // Another instance's request with this key and body, its answer written with its money, not yet committed.
      await holder.query(`INSERT INTO idempotency_keys (user_id, endpoint, key, fingerprint, transaction_id) VALUES ($1, $2, $3, $4, $5)`, [
        stored.user_id,
        stored.endpoint,
        key,
        stored.fingerprint,
        stored.transaction_id,
      ]);
      const answer = alice.post('/transactions/transfer', body, { 'idempotency-key': key });
      await new Promise((resolve) => setTimeout(resolve, 300));
      await holder.query(end);
      return answer;
    };

    // The transfer's statement waited on the key, found it committed, and ran again to replay it: no money moved.
    const replayed = await race('k-commits', 'COMMIT');
    expect(replayed.statusCode).toBe(201);
    expect(replayed.headers['idempotent-replayed']).toBe('true');
    expect(replayed.data).toEqual(first.data);
    expect((await bank.admin.get(`/accounts/${alice.account.id}`)).data.balance).toBe('99.00');

    // The other request was refused (rolled back): this one moves the money and stores its own answer.
    const ran = await race('k-rolls-back', 'ROLLBACK');
    expect(ran.statusCode).toBe(201);
    expect(ran.headers['idempotent-replayed']).toBeUndefined();
    expect(ran.data.id).not.toBe(first.data.id);
    expect((await bank.admin.get(`/accounts/${alice.account.id}`)).data.balance).toBe('98.00');
    expect((await alice.post('/transactions/transfer', body, { 'idempotency-key': 'k-rolls-back' })).data).toEqual(ran.data);
  });

  // The teller's, reversal's and repayment's protocol (src/http/idempotency.ts) is the transfers' one:
  // the key is written last, and a concurrent writer of it is told apart by its own SQLSTATE.
  it('answers a teller deposit 409 idempotency_in_progress while another transaction is writing its key, and moves nothing', async () => {
    const alice = await bank.customer('100.00');
    const teller = await bank.user('admin');
    const url = `/accounts/${alice.account.id}/deposit`;
    await holder.query('BEGIN');
    await holder.query(
      `INSERT INTO idempotency_keys (user_id, endpoint, key, fingerprint, problem_code) VALUES ($1, $2, 'k-teller', 'x', 'not_found')`,
      [teller.user.id, 'POST /accounts/:id/deposit'],
    );
    const waited = await teller.post(url, { amount: '5.00' }, { 'idempotency-key': 'k-teller' });
    await holder.query('ROLLBACK');
    expect(waited.statusCode, waited.body).toBe(409);
    expect(waited.data.code).toBe('idempotency_in_progress');
    expect((await bank.admin.get(`/accounts/${alice.account.id}`)).data.balance).toBe('100.00');

    // The other transaction is gone: the deposit runs, once.
    const ran = await teller.post(url, { amount: '5.00' }, { 'idempotency-key': 'k-teller' });
    expect(ran.statusCode, ran.body).toBe(201);
    expect((await teller.post(url, { amount: '5.00' }, { 'idempotency-key': 'k-teller' })).headers['idempotent-replayed']).toBe('true');
    expect((await bank.admin.get(`/accounts/${alice.account.id}`)).data.balance).toBe('105.00');
  });
});
