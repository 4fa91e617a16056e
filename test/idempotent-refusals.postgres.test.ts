import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp, type TestApp } from './helpers/app.js';

/**
 * A refusal and another answer for the same key, at the worst moments, made with a second session of
 * our own that holds a lock: every request with the key ends with the one answer stored under it.
 */
describe('refusals racing for their key, on PostgreSQL', () => {
  let bank: TestApp;
  let holder: pg.Client;
  // Outside any transaction, which would read pg_stat_activity once and keep that snapshot.
  let watcher: pg.Client;
  beforeAll(async () => {
    bank = await testApp({ RISK_NEW_PAYEE_AMOUNT: '0', RISK_NEW_ACCOUNT_AMOUNT: '0' });
    holder = new pg.Client({ connectionString: bank.database.url });
    watcher = new pg.Client({ connectionString: bank.database.url });
    await Promise.all([holder.connect(), watcher.connect()]);
  });
  afterAll(async () => {
    await Promise.all([holder.end(), watcher.end()]);
  });

  /** Waits until `count` sessions of the test's database wait for a lock. */
  const lockWaiters = async (count: number) => {
    for (;;) {
      const { rows } = await watcher.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
      );
      if (rows[0]!.n >= count) return;
      await sleep(10);
    }
  };
  const balanceOf = async (accountId: string) => (await bank.admin.get(`/accounts/${accountId}`)).data.balance as string;
  const storedUnder = async (key: string) =>
    (
      await holder.query<{ fingerprint: string; transaction_id: string }>(
        'SELECT fingerprint, transaction_id FROM idempotency_keys WHERE key = $1',
        [key],
      )
    ).rows[0]!;

  it('a refused transfer whose key another request writes meanwhile replays that answer, and moves nothing', async () => {
    const alice = await bank.customer('10.00');
    const bob = await bank.customer();
    const body = { from_account: alice.account.account_number, to_account: bob.account.account_number, amount: '50.00' };
    // The same request under another key: its stored refusal gives the request's fingerprint. The other
    // request's answer is a real one's (the route's response schema checks what it sends).
    const [probeKey, answeredKey, key] = [randomUUID(), randomUUID(), randomUUID()];
    expect((await alice.post('/transactions/transfer', body, { 'idempotency-key': probeKey })).data.code).toBe('insufficient_funds');
    const answered = await alice.post('/transactions/transfer', { ...body, amount: '1.00' }, { 'idempotency-key': answeredKey });
    expect(answered.statusCode).toBe(201);

    await holder.query('BEGIN');
    await holder.query('INSERT INTO idempotency_keys (user_id, endpoint, key, fingerprint, transaction_id) VALUES ($1, $2, $3, $4, $5)', [
      alice.user.id,
      'POST /transactions/transfer',
      key,
      (await storedUnder(probeKey)).fingerprint,
      (await storedUnder(answeredKey)).transaction_id,
    ]);
    // transfer_batch reads the key (not yet visible), is refused, and waits to write its refusal under it;
    // once the other answer commits, it runs again and replays that answer.
    const answer = alice.post('/transactions/transfer', body, { 'idempotency-key': key });
    await lockWaiters(1);
    await holder.query('COMMIT');

    const replayed = await answer;
    expect(replayed.statusCode, replayed.body).toBe(201);
    expect(replayed.headers['idempotent-replayed']).toBe('true');
    expect(replayed.data).toEqual(answered.data);
    expect(await balanceOf(alice.account.id)).toBe('9.00');
  });

  it('a repeat of a refused withdrawal racing the first answers the same refusal, replayed: one refusal is kept, nothing moves', async () => {
    const alice = await bank.customer('10.00');
    const url = `/accounts/${alice.account.id}/withdraw`;
    const headers = { 'idempotency-key': randomUUID() };
    // Both withdrawals wait for the account, which the holder locks. Each is refused; the one whose
    // refusal is written under the key first is the original, and the other, finding the key written
    // when it writes its own, runs again and replays it. Which one wins is not fixed: a refusal rolls its
    // work back to a savepoint, which frees the account for the other before the first commits.
    await holder.query('BEGIN');
    await holder.query('SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE', [alice.account.id]);
    const first = bank.admin.post(url, { amount: '50.00' }, headers);
    await lockWaiters(1);
    const repeat = bank.admin.post(url, { amount: '50.00' }, headers);
    await lockWaiters(2);
    await holder.query('COMMIT');

    const answers = await Promise.all([first, repeat]);
    for (const answer of answers) {
      expect(answer.statusCode, answer.body).toBe(422);
      expect(answer.data.code).toBe('insufficient_funds');
    }
    expect(answers.map((answer) => answer.headers['idempotent-replayed'] ?? 'fresh').sort()).toEqual(['fresh', 'true']);
    expect(answers[1].data).toEqual(answers[0].data);
    expect(await balanceOf(alice.account.id)).toBe('10.00');
  });
});
