import { decodeJwt } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { withAutocommit } from '../src/db/transaction.js';
import type { Settled } from '../src/db/batch-queue.js';
import type { Outcome } from '../src/db/idempotency.js';
import { parseAmount } from '../src/money.js';
import { transferBatch, type TransferRequest } from '../src/transfers/service.js';
import { testApp, type Customer, type TestApp } from './helpers/app.js';

/**
 * Group commit puts concurrent transfers in one database transaction. These tests build batches by
 * hand, through the service, so that what the HTTP load makes by chance happens every time: each
 * transfer of a batch must be checked against what the batch's earlier ones did, and answered alone.
 */
const ENDPOINT = 'POST /transactions/transfer';

let bank: TestApp;
beforeAll(async () => {
  bank = await testApp({
    RATE_LIMIT_TRANSFERS_PER_MINUTE: '100000',
    REVIEW_THRESHOLD: '999999999.00',
    RISK_NEW_PAYEE_AMOUNT: '0',
    RISK_NEW_ACCOUNT_AMOUNT: '0',
    RISK_VELOCITY_COUNT: '0',
  });
});

function request(from: Customer, to: { account: { account_number: string } }, amount: string, key?: string): TransferRequest {
  return {
    actor: { id: from.user.id, role: 'customer', jti: decodeJwt(from.token!).jti!, ip: '127.0.0.1', requestId: 'group-commit-test' },
    input: {
      fromAccount: from.account.account_number,
      toAccount: to.account.account_number,
      amount: parseAmount(amount),
      description: null,
    },
    idempotency: key
      ? {
          userId: from.user.id,
          endpoint: ENDPOINT,
          key,
          fingerprint: `${from.account.account_number}>${to.account.account_number}:${amount}`,
        }
      : null,
  };
}

function batch(requests: TransferRequest[], settings: Partial<TestApp['config']> = {}): Promise<Settled<Outcome>[]> {
  return withAutocommit(bank.database.handle, (session) => transferBatch(session, requests, { ...bank.config, ...settings }, new Date()));
}

async function balanceOf(customer: Customer): Promise<string> {
  return (await bank.admin.get(`/accounts/${customer.account.id}`)).data.balance;
}

function codeOf(result: Settled<Outcome>): string {
  if (result.ok) return result.value.replayed ? 'created replayed' : 'created';
  return (result.error as { code?: string }).code ?? String(result.error);
}

describe('a batch of transfers (group commit)', () => {
  it('checks each transfer against the balance the batch’s earlier ones left: the one that would overdraw is refused alone', async () => {
    const alice = await bank.customer('100.00');
    const bob = await bank.customer();
    const carol = await bank.customer();
    const results = await batch([
      request(alice, bob, '60.00', 'a1'),
      request(alice, carol, '60.00', 'a2'),
      request(alice, carol, '40.00', 'a3'),
    ]);
    expect(results.map(codeOf)).toEqual(['created', 'insufficient_funds', 'created']);
    expect(await balanceOf(alice)).toBe('0.00');
    expect(await balanceOf(bob)).toBe('60.00');
    expect(await balanceOf(carol)).toBe('40.00');
    // Money received earlier in the same batch is spendable by the transfers after it.
    const relay = await batch([request(bob, carol, '70.00'), request(carol, bob, '10.00'), request(bob, carol, '70.00')]);
    expect(relay.map(codeOf)).toEqual(['insufficient_funds', 'created', 'created']);
    expect(await balanceOf(bob)).toBe('0.00');
    expect(await balanceOf(carol)).toBe('100.00');
  });

  it('stores a refused transfer’s key with its refusal: the same key replays it, even once the money is there', async () => {
    const alice = await bank.customer('10.00');
    const bob = await bank.customer();
    const [refused] = await batch([request(alice, bob, '50.00', 'refused-once'), request(bob, alice, '0.01')]);
    expect(codeOf(refused!)).toBe('insufficient_funds');
    await bank.admin.post(`/accounts/${alice.account.id}/deposit`, { amount: '40.00' });
    const [repeated] = await batch([request(alice, bob, '50.00', 'refused-once')]);
    expect(codeOf(repeated!)).toBe('insufficient_funds');
    expect(!repeated!.ok && (repeated!.error as { extra?: { replayed?: boolean } }).extra?.replayed).toBe(true);
    expect(await balanceOf(alice)).toBe('50.00');
  });

  it('counts the batch’s earlier transfers against the daily limit', async () => {
    const alice = await bank.customer('1000.00', { daily_limit: '100.00' });
    const bob = await bank.customer();
    const results = await batch([
      request(alice, bob, '40.00'),
      request(alice, bob, '40.00'),
      request(alice, bob, '40.00'),
      request(alice, bob, '20.00'),
    ]);
    expect(results.map(codeOf)).toEqual(['created', 'created', 'daily_limit_exceeded', 'created']);
    expect(await balanceOf(bob)).toBe('100.00');
  });

  it('runs the risk rules on the batch’s history too: velocity counts earlier transfers, a payee paid earlier in the batch is no longer new', async () => {
    const alice = await bank.customer('1000.00');
    const bob = await bank.customer();
    const velocity = await batch([request(alice, bob, '1.00'), request(alice, bob, '1.00'), request(alice, bob, '1.00')], {
      riskVelocityCount: 2,
      riskVelocityMinutes: 60,
    });
    expect(velocity.map((result) => (result.ok ? (result.value.body as { review_reasons: string[] }).review_reasons : null))).toEqual([
      [],
      [],
      ['velocity'],
    ]);

    const carol = await bank.customer();
    const dave = await bank.customer();
    const payees = await batch(
      [request(alice, carol, '1.00'), request(alice, carol, '50.00'), request(alice, dave, '50.00'), request(alice, dave, '50.00')],
      { riskNewPayeeAmount: parseAmount('50.00') },
    );
    // Carol was paid by the first transfer; Dave's first transfer is held, so Dave is still a new payee.
    expect(payees.map((result) => (result.ok ? (result.value.body as { review_reasons: string[] }).review_reasons : null))).toEqual([
      [],
      [],
      ['new_payee'],
      ['new_payee'],
    ]);
    // 1000 less the completed 1 + 1 + 1 + 50; held: the 1 that velocity flagged and Dave's two 50s.
    const account = (await bank.admin.get(`/accounts/${alice.account.id}`)).data;
    expect([account.balance, account.available_balance]).toEqual(['947.00', '846.00']);
  });

  it('answers each request on its own: replays, a reused key, unknown, frozen and same accounts next to transfers that pass', async () => {
    const alice = await bank.customer('100.00');
    const bob = await bank.customer('100.00');
    const frozen = await bank.customer('100.00');
    expect((await bank.admin.patch(`/accounts/${frozen.account.id}`, { status: 'frozen' })).statusCode).toBe(200);
    const [first] = await batch([request(alice, bob, '5.00', 'once')]);
    expect(codeOf(first!)).toBe('created');

    const mixed = await batch([
      request(alice, bob, '5.00', 'once'),
      { ...request(alice, bob, '6.00', 'other'), idempotency: { ...request(alice, bob, '6.00', 'once').idempotency! } },
      request(alice, { account: { account_number: frozen.account.account_number } }, '1.00'),
      request(bob, alice, '1.00'),
      request(alice, alice, '1.00'),
      request(frozen, alice, '1.00'),
      // Alice names Bob's account as hers.
      { ...request(alice, alice, '1.00'), input: { ...request(alice, alice, '1.00').input, fromAccount: bob.account.account_number } },
      request(alice, bob, '2.00', 'fresh'),
    ]);
    expect(mixed.map(codeOf)).toEqual([
      'created replayed',
      'idempotency_key_reused',
      'account_not_active',
      'created',
      'validation_error',
      'account_not_active',
      'account_not_found',
      'created',
    ]);
    expect(mixed[0]!.ok && first!.ok && mixed[0]!.value.body).toEqual(first!.ok && first!.value.body);
    expect(await balanceOf(alice)).toBe('94.00');
    expect(await balanceOf(bob)).toBe('106.00');
    expect((await bank.admin.get('/reports/reconciliation')).data.ok).toBe(true);
  });

  it('checks each request’s access token in the batch: a revoked one is refused alone, and nothing of it is written, its key included', async () => {
    const alice = await bank.customer('100.00');
    const bob = await bank.customer('100.00');
    expect((await bob.post('/auth/logout')).statusCode).toBe(204);
    const results = await batch([request(alice, bob, '1.00', 'k1'), request(bob, alice, '1.00', 'k2'), request(alice, bob, '2.00')]);
    expect(results.map(codeOf)).toEqual(['created', 'unauthorized', 'created']);
    expect(await balanceOf(alice)).toBe('97.00');
    const stored = await bank.database.handle.db.selectFrom('idempotency_keys').select('key').where('user_id', '=', bob.user.id).execute();
    expect(stored).toEqual([]);
  });

  it('commits concurrent HTTP transfers together and answers each correctly (group commit under load)', async () => {
    const customers = await Promise.all(Array.from({ length: 6 }, () => bank.customer('10.00')));
    const before = await bank.anonymous.get('/metrics');
    const batchesBefore = Number(/^transfer_batch_size_count (\d+)/m.exec(before.body)?.[1] ?? 0);
    // Each sends 3.00 four times, to the next customer: the fourth of a customer's sends may or may not
    // find the 3.00 that its predecessor sent it, but nobody ever overdraws.
    const answers = await Promise.all(
      customers.flatMap((from, i) =>
        Array.from({ length: 4 }, () =>
          from.post('/transactions/transfer', {
            from_account: from.account.account_number,
            to_account: customers[(i + 1) % customers.length]!.account.account_number,
            amount: '3.00',
          }),
        ),
      ),
    );
    for (const answer of answers) expect([201, 422]).toContain(answer.statusCode);
    const sent = answers.filter((answer) => answer.statusCode === 201).length;
    expect(answers.filter((answer) => answer.statusCode === 422).every((answer) => answer.data.code === 'insufficient_funds')).toBe(true);
    const balances = await Promise.all(customers.map(balanceOf));
    expect(balances.every((balance) => parseAmount(balance) >= 0n)).toBe(true);
    expect(balances.reduce((sum, balance) => sum + parseAmount(balance), 0n)).toBe(parseAmount('60.00'));
    expect(sent).toBeGreaterThanOrEqual(18);
    const after = await bank.anonymous.get('/metrics');
    const batches = Number(/^transfer_batch_size_count (\d+)/m.exec(after.body)![1]) - batchesBefore;
    // PGlite runs in this thread and answers without yielding to I/O, so injected requests reach the
    // queue one after the other; on PostgreSQL they arrive while a batch is being committed.
    if (bank.database.handle.engine === 'postgres') expect(batches).toBeLessThan(answers.length);
    else expect(batches).toBeLessThanOrEqual(answers.length);
    expect((await bank.admin.get('/reports/reconciliation')).data.ok).toBe(true);
  });
});
