import { beforeAll, describe, expect, it } from 'vitest';
import { REVIEW_AT_500_ONLY, testApp, type Client, type Customer, type Response, type TestApp } from './helpers/app.js';

function expectProblem(response: Response, status: number, code: string): void {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(response.data.code).toBe(code);
}

describe('POST /transactions/{id}/reverse', () => {
  let bank: TestApp;
  let auditor: Client & { user: { id: string } };
  let adminId: string;

  const send = (from: Customer, to: Customer, amount: string) =>
    from.post('/transactions/transfer', { from_account: from.account.account_number, to_account: to.account.account_number, amount });
  const transfer = async (from: Customer, to: Customer, amount: string): Promise<string> => {
    const response = await send(from, to, amount);
    expect(response.statusCode, response.body).toBe(201);
    return response.data.id;
  };
  const reverse = (id: string, body: unknown = { reason: 'customer complaint' }, headers?: Record<string, string>) =>
    bank.admin.post(`/transactions/${id}/reverse`, body, headers);
  const balance = async (customer: Customer) => (await bank.admin.get(`/accounts/${customer.account.id}`)).data.balance as string;
  const available = async (customer: Customer) =>
    (await bank.admin.get(`/accounts/${customer.account.id}`)).data.available_balance as string;
  const transaction = async (id: string) => (await bank.admin.get(`/transactions/${id}`)).data;
  const reversalsOf = async (id: string) =>
    bank.database.handle.db.selectFrom('transactions').select(['id', 'type']).where('reverses_id', '=', id).execute();
  const countTransactions = async () => (await bank.database.handle.db.selectFrom('transactions').select('id').execute()).length;
  const expectReconciled = async () => {
    const report = await bank.admin.get('/reports/reconciliation');
    expect(report.statusCode, report.body).toBe(200);
    expect(report.data).toMatchObject({ ok: true, ledger_sum: '0.00', mismatches: [], unbalanced_transactions: [], hold_mismatches: [] });
  };

  beforeAll(async () => {
    bank = await testApp(REVIEW_AT_500_ONLY);
    auditor = await bank.user('auditor');
    adminId = (await bank.admin.get('/auth/me')).data.id;
  });

  describe('what it reverses', () => {
    it('reverses a completed transfer: 201 reversal with reverses, the money back, the original shows reversed_by', async () => {
      const alice = await bank.customer('100.00');
      const bob = await bank.customer('5.00');
      const id = await transfer(alice, bob, '30.00');
      const response = await reverse(id, { reason: 'sent by mistake' });
      expect(response.statusCode, response.body).toBe(201);
      expect(response.data).toMatchObject({
        type: 'reversal',
        status: 'completed',
        amount: '30.00',
        currency: 'USD',
        from_account: bob.account.account_number,
        to_account: alice.account.account_number,
        description: 'sent by mistake',
        created_by: adminId,
        reverses: id,
        reversed_by: null,
      });
      expect(response.data.id).not.toBe(id);
      expect(await balance(alice)).toBe('100.00');
      expect(await balance(bob)).toBe('5.00');

      const original = await transaction(id);
      expect(original).toMatchObject({ id, type: 'transfer', status: 'completed', reversed_by: response.data.id, reverses: null });
      // The parties see both.
      expect((await alice.get(`/transactions/${id}`)).data.reversed_by).toBe(response.data.id);
      expect((await bob.get(`/transactions/${response.data.id}`)).data.reverses).toBe(id);

      const entries = await bank.database.handle.db
        .selectFrom('journal_entries')
        .select(['account_id', 'amount'])
        .where('transaction_id', '=', response.data.id)
        .orderBy('amount')
        .execute();
      expect(entries).toEqual([
        { account_id: bob.account.id, amount: -3000n },
        { account_id: alice.account.id, amount: 3000n },
      ]);
    });

    it('reverses a deposit: the money goes back to the bank', async () => {
      const carol = await bank.customer('10.00');
      const deposit = await bank.admin.post(`/accounts/${carol.account.id}/deposit`, { amount: '20.00' });
      expect(deposit.statusCode).toBe(201);
      const response = await reverse(deposit.data.id, { reason: 'counterfeit notes' });
      expect(response.statusCode, response.body).toBe(201);
      expect(response.data).toMatchObject({
        type: 'reversal',
        amount: '20.00',
        from_account: carol.account.account_number,
        to_account: null,
        reverses: deposit.data.id,
      });
      expect(await balance(carol)).toBe('10.00');
      expect((await transaction(deposit.data.id)).reversed_by).toBe(response.data.id);
    });

    it('reverses a withdrawal: the money comes back from the bank', async () => {
      const carol = await bank.customer('10.00');
      const withdrawal = await bank.admin.post(`/accounts/${carol.account.id}/withdraw`, { amount: '7.50' });
      expect(withdrawal.statusCode).toBe(201);
      const response = await reverse(withdrawal.data.id, { reason: 'cash not paid out' });
      expect(response.statusCode, response.body).toBe(201);
      expect(response.data).toMatchObject({
        type: 'reversal',
        amount: '7.50',
        from_account: null,
        to_account: carol.account.account_number,
        reverses: withdrawal.data.id,
      });
      expect(await balance(carol)).toBe('10.00');
    });

    it('reverses an initial deposit, down to a zero balance', async () => {
      const dave = await bank.customer('15.00');
      const [opening] = (await bank.admin.get(`/transactions/?account_id=${dave.account.id}`)).data.items;
      expect(opening).toMatchObject({ type: 'deposit', amount: '15.00' });
      expect((await reverse(opening.id)).statusCode).toBe(201);
      expect(await balance(dave)).toBe('0.00');
    });

    it('reverses a transfer that completed after review', async () => {
      const alice = await bank.customer('1000.00');
      const bob = await bank.customer();
      const response = await send(alice, bob, '600.00');
      expect(response.data.status).toBe('pending_review');
      expect((await bank.admin.post(`/transactions/${response.data.id}/approve`, {})).statusCode).toBe(200);
      expect((await reverse(response.data.id)).statusCode).toBe(201);
      expect(await balance(alice)).toBe('1000.00');
      expect(await balance(bob)).toBe('0.00');
    });
  });

  describe('what it refuses', () => {
    it('answers 409 already_reversed to a second reversal', async () => {
      const alice = await bank.customer('100.00');
      const bob = await bank.customer('100.00');
      const id = await transfer(alice, bob, '10.00');
      expect((await reverse(id)).statusCode).toBe(201);
      expectProblem(await reverse(id, { reason: 'again' }), 409, 'already_reversed');
      expect(await reversalsOf(id)).toHaveLength(1);
      expect(await balance(alice)).toBe('100.00');
      expect(await balance(bob)).toBe('100.00');
    });

    it('answers 409 not_reversible for a reversal itself', async () => {
      const alice = await bank.customer('100.00');
      const bob = await bank.customer('100.00');
      const id = await transfer(alice, bob, '10.00');
      const reversal = await reverse(id);
      expect(reversal.statusCode).toBe(201);
      expectProblem(await reverse(reversal.data.id), 409, 'not_reversible');
      expect(await balance(alice)).toBe('100.00');
      expect(await balance(bob)).toBe('100.00');
    });

    it('answers 409 not_reversible for a transfer pending review or rejected, and leaves the hold alone', async () => {
      const alice = await bank.customer('1000.00');
      const bob = await bank.customer();
      const pending = await send(alice, bob, '500.00');
      expect(pending.data.status).toBe('pending_review');
      expectProblem(await reverse(pending.data.id), 409, 'not_reversible');
      expect(await balance(alice)).toBe('1000.00');
      expect(await available(alice)).toBe('500.00');
      expect((await transaction(pending.data.id)).status).toBe('pending_review');

      expect((await bank.admin.post(`/transactions/${pending.data.id}/reject`, { reason: 'no' })).statusCode).toBe(200);
      expectProblem(await reverse(pending.data.id), 409, 'not_reversible');
      expect(await available(alice)).toBe('1000.00');
      expect(await balance(bob)).toBe('0.00');
      expect(await reversalsOf(pending.data.id)).toEqual([]);
    });

    it('answers 422 insufficient_funds when the giver lacks the money, and changes nothing', async () => {
      const alice = await bank.customer('100.00');
      const bob = await bank.customer();
      const carol = await bank.customer();
      const id = await transfer(alice, bob, '40.00');
      await transfer(bob, carol, '30.00');
      const before = await countTransactions();
      expectProblem(await reverse(id), 422, 'insufficient_funds');
      expect(await countTransactions()).toBe(before);
      expect(await balance(alice)).toBe('60.00');
      expect(await balance(bob)).toBe('10.00');
      expect((await transaction(id)).reversed_by).toBeNull();
      expect((await bank.admin.get(`/audit-logs?action=transaction.reversed&target_id=${id}`)).data.items).toEqual([]);
      // Once the money is back, the reversal goes through.
      await transfer(carol, bob, '30.00');
      expect((await reverse(id)).statusCode).toBe(201);
      expect(await balance(bob)).toBe('0.00');
    });

    it('counts held money as not there: 422 insufficient_funds when the giver’s balance is held', async () => {
      const alice = await bank.customer('100.00');
      const bob = await bank.customer('500.00');
      const carol = await bank.customer();
      const id = await transfer(alice, bob, '50.00');
      const held = await send(bob, carol, '500.00');
      expect(held.data.status).toBe('pending_review');
      expect(await available(bob)).toBe('50.00');
      expect((await reverse(id)).statusCode).toBe(201);
      // The hold still covers its transfer: bob's available balance is now 0.
      expect(await available(bob)).toBe('0.00');
      const second = await transfer(alice, bob, '1.00');
      expect(await available(bob)).toBe('1.00');
      const third = await transfer(alice, bob, '2.00');
      expect((await reverse(second)).statusCode).toBe(201);
      // 2.00 available now (balance 502, held 500): reversing 2.00 works, and then nothing is left.
      expect((await reverse(third)).statusCode).toBe(201);
      const fourth = await transfer(alice, bob, '3.00');
      await transfer(bob, carol, '1.00');
      expectProblem(await reverse(fourth), 422, 'insufficient_funds');
      expect(await balance(bob)).toBe('502.00');
      expect(await available(bob)).toBe('2.00');
    });

    for (const side of ['giver', 'taker'] as const) {
      it(`answers 409 account_not_active when the ${side} is frozen, then works once unfrozen`, async () => {
        const alice = await bank.customer('100.00');
        const bob = await bank.customer();
        const id = await transfer(alice, bob, '25.00');
        const frozen = side === 'giver' ? bob : alice;
        expect((await bank.admin.patch(`/accounts/${frozen.account.id}`, { status: 'frozen' })).statusCode).toBe(200);
        expectProblem(await reverse(id), 409, 'account_not_active');
        expect(await balance(alice)).toBe('75.00');
        expect(await balance(bob)).toBe('25.00');
        expect(await reversalsOf(id)).toEqual([]);
        expect((await bank.admin.patch(`/accounts/${frozen.account.id}`, { status: 'active' })).statusCode).toBe(200);
        expect((await reverse(id)).statusCode).toBe(201);
        expect(await balance(alice)).toBe('100.00');
      });
    }

    it('answers 409 account_not_active for a deposit into an account closed since', async () => {
      const erin = await bank.customer();
      const deposit = await bank.admin.post(`/accounts/${erin.account.id}/deposit`, { amount: '5.00' });
      const other = await bank.customer();
      await transfer(erin, other, '5.00');
      expect((await bank.admin.patch(`/accounts/${erin.account.id}`, { status: 'closed' })).statusCode).toBe(200);
      expectProblem(await reverse(deposit.data.id), 409, 'account_not_active');
    });

    it('is for admins only: 403 for customers (even a party) and the auditor, 401 without a token', async () => {
      const alice = await bank.customer('100.00');
      const bob = await bank.customer();
      const id = await transfer(alice, bob, '10.00');
      for (const caller of [alice, bob, auditor]) {
        expectProblem(await caller.post(`/transactions/${id}/reverse`, { reason: 'mine' }), 403, 'forbidden');
      }
      expectProblem(await bank.anonymous.post(`/transactions/${id}/reverse`, { reason: 'x' }), 401, 'unauthorized');
      expect(await reversalsOf(id)).toEqual([]);
    });

    it('answers 422 for a missing, empty or too long reason and for unknown fields; 404 for an unknown transaction', async () => {
      const alice = await bank.customer('100.00');
      const bob = await bank.customer();
      const id = await transfer(alice, bob, '10.00');
      for (const body of [{}, { reason: '' }, { reason: 'x'.repeat(501) }, { reason: 'ok', amount: '5.00' }, { note: 'wrong field' }]) {
        expectProblem(await reverse(id, body), 422, 'validation_error');
      }
      expectProblem(await bank.admin.post(`/transactions/${id}/reverse`), 422, 'validation_error');
      expect(await reversalsOf(id)).toEqual([]);
      expectProblem(await reverse('00000000-0000-4000-8000-000000000000'), 404, 'not_found');
      expectProblem(await reverse('nope'), 422, 'validation_error');
    });
  });

  describe('idempotency and concurrency', () => {
    it('replays a repeat with the same Idempotency-Key: same status and body, Idempotent-Replayed: true, money moved once', async () => {
      const alice = await bank.customer('100.00');
      const bob = await bank.customer('100.00');
      const id = await transfer(alice, bob, '20.00');
      const headers = { 'idempotency-key': `reverse-${id}` };
      const first = await reverse(id, { reason: 'dup' }, headers);
      expect(first.statusCode, first.body).toBe(201);
      expect(first.headers['idempotent-replayed']).toBeUndefined();
      const second = await reverse(id, { reason: 'dup' }, headers);
      expect(second.statusCode, second.body).toBe(201);
      expect(second.headers['idempotent-replayed']).toBe('true');
      expect(second.data).toEqual(first.data);
      expect(await reversalsOf(id)).toHaveLength(1);
      expect(await balance(alice)).toBe('100.00');
      expect(await balance(bob)).toBe('100.00');

      // The same key with another body is refused; another key meets the reversal already made.
      expectProblem(await reverse(id, { reason: 'other' }, headers), 422, 'idempotency_key_reused');
      expectProblem(await reverse(id, { reason: 'dup' }, { 'idempotency-key': `other-${id}` }), 409, 'already_reversed');
    });

    it('replays concurrent repeats with one key as one reversal', async () => {
      const alice = await bank.customer('100.00');
      const bob = await bank.customer('100.00');
      const id = await transfer(alice, bob, '20.00');
      const headers = { 'idempotency-key': `burst-${id}` };
      const responses = await Promise.all(Array.from({ length: 5 }, () => reverse(id, { reason: 'burst' }, headers)));
      const created = responses.filter((r) => r.statusCode === 201);
      // A repeat may also see the first still running (409 idempotency_in_progress); nothing else.
      for (const r of responses) expect([201, 409], r.body).toContain(r.statusCode);
      for (const r of responses.filter((r) => r.statusCode === 409)) expect(r.data.code).toBe('idempotency_in_progress');
      expect(created.length).toBeGreaterThanOrEqual(1);
      expect(new Set(created.map((r) => r.data.id)).size).toBe(1);
      expect(await reversalsOf(id)).toHaveLength(1);
      expect(await balance(bob)).toBe('100.00');
    });

    it('takes exactly one of 20 concurrent reversals of one transaction; the rest answer 409 already_reversed', async () => {
      const alice = await bank.customer('100.00');
      const bob = await bank.customer('100.00');
      const id = await transfer(alice, bob, '20.00');
      const responses = await Promise.all(
        Array.from({ length: 20 }, (_, i) => reverse(id, { reason: `race ${i}` }, { 'idempotency-key': `race-${i}-${id}` })),
      );
      const statuses = responses.map((r) => r.statusCode).sort();
      expect(statuses, responses.map((r) => r.body).join('\n')).toEqual([201, ...Array(19).fill(409)]);
      for (const r of responses.filter((r) => r.statusCode === 409)) expect(r.data.code).toBe('already_reversed');
      const winner = responses.find((r) => r.statusCode === 201)!;
      expect(await reversalsOf(id)).toEqual([{ id: winner.data.id, type: 'reversal' }]);
      expect((await transaction(id)).reversed_by).toBe(winner.data.id);
      expect(await balance(alice)).toBe('100.00');
      expect(await balance(bob)).toBe('100.00');
      expect((await bank.admin.get(`/audit-logs?action=transaction.reversed&target_id=${id}`)).data.items).toHaveLength(1);
    });
  });

  it('records transaction.reversed in the audit log, with the reversal and the reason', async () => {
    const alice = await bank.customer('100.00');
    const bob = await bank.customer();
    const id = await transfer(alice, bob, '12.34');
    const reversal = await reverse(id, { reason: 'duplicate payment' });
    expect(reversal.statusCode).toBe(201);
    for (const reader of [bank.admin, auditor]) {
      const entries = (await reader.get(`/audit-logs?action=transaction.reversed&target_id=${id}`)).data.items;
      expect(entries).toHaveLength(1);
      expect(entries[0]).toMatchObject({
        actor_id: adminId,
        actor_role: 'admin',
        action: 'transaction.reversed',
        target_type: 'transaction',
        target_id: id,
      });
      expect(entries[0].details).toMatchObject({
        reversal_id: reversal.data.id,
        amount: '12.34',
        reason: 'duplicate payment',
        type: 'transfer',
      });
    }
  });

  it('leaves the ledger reconciled', async () => {
    await expectReconciled();
    const verify = await bank.admin.get('/audit-logs/verify');
    expect(verify.statusCode).toBe(200);
    expect(verify.data.ok).toBe(true);
  });
});
