import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { REVIEW_AT_500_ONLY, testApp, type Customer, type Response, type TestApp } from './helpers/app.js';

/**
 * docs/api.md (Idempotency-Key): a business refusal under an Idempotency-Key is an answer like any other, kept and replayed,
 * even after the state that caused it has changed (the probe that found the defect: a transfer refused
 * insufficient_funds, repeated with its key after a deposit, moved money). Answers that say the request
 * was not processed at all (validation_error, ...) are not kept: a corrected retry with the key runs.
 */

let bank: TestApp;
beforeAll(async () => {
  bank = await testApp(REVIEW_AT_500_ONLY);
});

const db = () => bank.database.handle.db;
const keyed = () => ({ 'idempotency-key': randomUUID() });

const transferOf = (from: Customer, to: { account: { account_number: string } }, amount: string) => ({
  from_account: from.account.account_number,
  to_account: to.account.account_number,
  amount,
});

async function balanceOf(accountId: string): Promise<string> {
  const response = await bank.admin.get(`/accounts/${accountId}`);
  expect(response.statusCode, response.body).toBe(200);
  return response.data.balance as string;
}

const deposit = async (accountId: string, amount: string) => {
  const response = await bank.admin.post(`/accounts/${accountId}/deposit`, { amount });
  expect(response.statusCode, response.body).toBe(201);
};

const setAccount = async (accountId: string, changes: Record<string, unknown>) => {
  const response = await bank.admin.patch(`/accounts/${accountId}`, changes);
  expect(response.statusCode, response.body).toBe(200);
};

/** What moving money would change: the ledger's size and the named accounts' balances. */
async function ledgerState(accountIds: string[]) {
  const count = async (table: 'transactions' | 'journal_entries') =>
    Number(
      (
        await db()
          .selectFrom(table)
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
  return {
    transactions: await count('transactions'),
    entries: await count('journal_entries'),
    balances: await Promise.all(accountIds.map(balanceOf)),
  };
}

function expectRefusal(response: Response, status: number, code: string): void {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(response.data.code).toBe(code);
  expect(response.headers['idempotent-replayed']).toBeUndefined();
}

/** The repeat answers the first answer again, marked as a replay. */
function expectReplayOf(repeat: Response, first: Response): void {
  expect(repeat.statusCode, repeat.body).toBe(first.statusCode);
  expect(repeat.headers['idempotent-replayed']).toBe('true');
  expect(repeat.headers['content-type']).toBe(first.headers['content-type']);
  expect(repeat.data).toEqual(first.data);
}

/**
 * Sends a request that is refused, makes the change that would let it pass, and sends it again with the
 * same key: the refusal is replayed and nothing moves.
 */
async function expectRefusalKept(
  send: (headers: Record<string, string>) => Promise<Response>,
  refusal: { status: number; code: string },
  change: () => Promise<void>,
  accountIds: string[],
): Promise<void> {
  const headers = keyed();
  const first = await send(headers);
  expectRefusal(first, refusal.status, refusal.code);
  await change();
  const before = await ledgerState(accountIds);
  const repeat = await send(headers);
  expectReplayOf(repeat, first);
  expect(await ledgerState(accountIds)).toEqual(before);
  const [stored] = await db().selectFrom('idempotency_keys').selectAll().where('key', '=', headers['idempotency-key']).execute();
  expect(stored).toMatchObject({ problem_code: refusal.code, problem_detail: first.data.detail, transaction_id: null, response: null });
}

/** A request that was not processed is not kept: the corrected request with the same key runs. */
async function expectCorrectionRuns(
  send: (headers: Record<string, string>) => Promise<Response>,
  correct: (headers: Record<string, string>) => Promise<Response>,
) {
  const headers = keyed();
  expectRefusal(await send(headers), 422, 'validation_error');
  const corrected = await correct(headers);
  expect(corrected.statusCode, corrected.body).toBe(201);
  expect(corrected.headers['idempotent-replayed']).toBeUndefined();
  expectReplayOf(await correct(headers), corrected);
}

describe('POST /transactions/transfer: refusals under an Idempotency-Key', () => {
  it('replays insufficient_funds after a deposit: no money moves', async () => {
    const alice = await bank.customer('10.00');
    const bob = await bank.customer();
    await expectRefusalKept(
      (headers) => alice.post('/transactions/transfer', transferOf(alice, bob, '50.00'), headers),
      { status: 422, code: 'insufficient_funds' },
      () => deposit(alice.account.id, '100.00'),
      [alice.account.id, bob.account.id],
    );
    expect(await balanceOf(alice.account.id)).toBe('110.00');
  });

  it('replays daily_limit_exceeded after the limit is raised', async () => {
    const alice = await bank.customer('400.00', { daily_limit: '100.00' });
    const bob = await bank.customer();
    await expectRefusalKept(
      (headers) => alice.post('/transactions/transfer', transferOf(alice, bob, '150.00'), headers),
      { status: 422, code: 'daily_limit_exceeded' },
      () => setAccount(alice.account.id, { daily_limit: '1000.00' }),
      [alice.account.id, bob.account.id],
    );
  });

  it('replays account_not_active after the receiver is unfrozen', async () => {
    const alice = await bank.customer('100.00');
    const bob = await bank.customer();
    await setAccount(bob.account.id, { status: 'frozen' });
    await expectRefusalKept(
      (headers) => alice.post('/transactions/transfer', transferOf(alice, bob, '10.00'), headers),
      { status: 409, code: 'account_not_active' },
      () => setAccount(bob.account.id, { status: 'active' }),
      [alice.account.id, bob.account.id],
    );
  });

  it('replays account_not_found and currency_mismatch', async () => {
    const alice = await bank.customer('100.00');
    const bob = await bank.customer('100.00');
    const euro = await bank.customer(undefined, { currency: 'EUR' });
    const accounts = [alice.account.id, bob.account.id, euro.account.id];
    // From an account that is not hers.
    await expectRefusalKept(
      (headers) => alice.post('/transactions/transfer', transferOf(bob, alice, '10.00'), headers),
      { status: 404, code: 'account_not_found' },
      async () => {},
      accounts,
    );
    await expectRefusalKept(
      (headers) => alice.post('/transactions/transfer', transferOf(alice, euro, '10.00'), headers),
      { status: 422, code: 'currency_mismatch' },
      async () => {},
      accounts,
    );
  });

  it('keeps a refusal and a success of one batch each under its own key', async () => {
    const alice = await bank.customer('100.00');
    const bob = await bank.customer();
    const [refusedKey, passedKey] = [keyed(), keyed()];
    const [refused, passed] = await Promise.all([
      alice.post('/transactions/transfer', transferOf(alice, bob, '500.01'), refusedKey),
      alice.post('/transactions/transfer', transferOf(alice, bob, '60.00'), passedKey),
    ]);
    expectRefusal(refused, 422, 'insufficient_funds');
    expect(passed.statusCode, passed.body).toBe(201);
    await deposit(alice.account.id, '1000.00');
    expectReplayOf(await alice.post('/transactions/transfer', transferOf(alice, bob, '500.01'), refusedKey), refused);
    expectReplayOf(await alice.post('/transactions/transfer', transferOf(alice, bob, '60.00'), passedKey), passed);
    expect(await balanceOf(alice.account.id)).toBe('1040.00');
    expect(await balanceOf(bob.account.id)).toBe('60.00');
  });

  it('does not keep a validation_error: the corrected request with the key runs', async () => {
    const alice = await bank.customer('100.00');
    const bob = await bank.customer();
    // Refused by the route (the amount), and by the service before the batch (the same account twice).
    await expectCorrectionRuns(
      (headers) => alice.post('/transactions/transfer', transferOf(alice, bob, '1.001'), headers),
      (headers) => alice.post('/transactions/transfer', transferOf(alice, bob, '1.00'), headers),
    );
    await expectCorrectionRuns(
      (headers) => alice.post('/transactions/transfer', transferOf(alice, alice, '2.00'), headers),
      (headers) => alice.post('/transactions/transfer', transferOf(alice, bob, '2.00'), headers),
    );
    expect(await balanceOf(bob.account.id)).toBe('3.00');
  });
});

describe('teller deposit and withdrawal: refusals under an Idempotency-Key', () => {
  it('replays a withdrawal refused insufficient_funds after a deposit', async () => {
    const alice = await bank.customer('10.00');
    await expectRefusalKept(
      (headers) => bank.admin.post(`/accounts/${alice.account.id}/withdraw`, { amount: '50.00' }, headers),
      { status: 422, code: 'insufficient_funds' },
      () => deposit(alice.account.id, '100.00'),
      [alice.account.id],
    );
    expect(await balanceOf(alice.account.id)).toBe('110.00');
  });

  it('replays a deposit refused account_not_active after the account is unfrozen', async () => {
    const alice = await bank.customer('10.00');
    await setAccount(alice.account.id, { status: 'frozen' });
    await expectRefusalKept(
      (headers) => bank.admin.post(`/accounts/${alice.account.id}/deposit`, { amount: '5.00' }, headers),
      { status: 409, code: 'account_not_active' },
      () => setAccount(alice.account.id, { status: 'active' }),
      [alice.account.id],
    );
    expect(await balanceOf(alice.account.id)).toBe('10.00');
  });

  it('replays not_found for an account that does not exist', async () => {
    const nowhere = randomUUID();
    await expectRefusalKept(
      (headers) => bank.admin.post(`/accounts/${nowhere}/deposit`, { amount: '5.00' }, headers),
      { status: 404, code: 'not_found' },
      async () => {},
      [],
    );
  });

  it('does not keep a validation_error: the corrected withdrawal with the key runs', async () => {
    const alice = await bank.customer('10.00');
    await expectCorrectionRuns(
      (headers) => bank.admin.post(`/accounts/${alice.account.id}/withdraw`, { amount: '0' }, headers),
      (headers) => bank.admin.post(`/accounts/${alice.account.id}/withdraw`, { amount: '4.00' }, headers),
    );
    expect(await balanceOf(alice.account.id)).toBe('6.00');
  });
});

describe('POST /transactions/{id}/reverse: refusals under an Idempotency-Key', () => {
  const reverse = (id: string, headers: Record<string, string>, reason = 'customer complaint') =>
    bank.admin.post(`/transactions/${id}/reverse`, { reason }, headers);
  const transfer = async (from: Customer, to: Customer, amount: string): Promise<string> => {
    const response = await from.post('/transactions/transfer', transferOf(from, to, amount));
    expect(response.statusCode, response.body).toBe(201);
    return response.data.id;
  };

  it('replays not_reversible after the held transfer is approved: it stays unreversed', async () => {
    const alice = await bank.customer('1000.00');
    const bob = await bank.customer();
    const held = await transfer(alice, bob, '600.00');
    await expectRefusalKept(
      (headers) => reverse(held, headers),
      { status: 409, code: 'not_reversible' },
      async () => {
        const approved = await bank.admin.post(`/transactions/${held}/approve`, {});
        expect(approved.statusCode, approved.body).toBe(200);
      },
      [alice.account.id, bob.account.id],
    );
    expect((await bank.admin.get(`/transactions/${held}`)).data).toMatchObject({ status: 'completed', reversed_by: null });
  });

  it('replays already_reversed', async () => {
    const alice = await bank.customer('100.00');
    const bob = await bank.customer();
    const id = await transfer(alice, bob, '30.00');
    expect((await reverse(id, keyed())).statusCode).toBe(201);
    await expectRefusalKept(
      (headers) => reverse(id, headers, 'again'),
      { status: 409, code: 'already_reversed' },
      async () => {},
      [alice.account.id, bob.account.id],
    );
  });

  it('replays insufficient_funds after the receiver is topped up', async () => {
    const alice = await bank.customer('100.00');
    const bob = await bank.customer();
    const carol = await bank.customer();
    const id = await transfer(alice, bob, '30.00');
    await transfer(bob, carol, '30.00');
    await expectRefusalKept(
      (headers) => reverse(id, headers),
      { status: 422, code: 'insufficient_funds' },
      () => deposit(bob.account.id, '100.00'),
      [alice.account.id, bob.account.id],
    );
    expect(await balanceOf(bob.account.id)).toBe('100.00');
  });

  it('does not keep a validation_error: the corrected reversal with the key runs', async () => {
    const alice = await bank.customer('100.00');
    const bob = await bank.customer();
    const id = await transfer(alice, bob, '30.00');
    await expectCorrectionRuns(
      (headers) => reverse(id, headers, ''),
      (headers) => reverse(id, headers),
    );
    expect(await balanceOf(alice.account.id)).toBe('100.00');
  });
});

describe('POST /loans/{id}/repay: refusals under an Idempotency-Key', () => {
  /** A customer with an approved loan of 100.00 over one month (101.00 payable at 12 %) and a second, empty account. */
  const borrower = async () => {
    const customer = await bank.customer('50.00');
    const applied = await customer.post('/loans', { account_id: customer.account.id, principal: '100.00', term_months: 1 });
    expect(applied.statusCode, applied.body).toBe(201);
    expect((await bank.admin.post(`/loans/${applied.data.id}/approve`, {})).statusCode).toBe(200);
    const spare = await bank.admin.post(`/accounts/?user_id=${customer.user.id}`, {});
    expect(spare.statusCode, spare.body).toBe(201);
    return { customer, loanId: applied.data.id as string, spareId: spare.data.id as string };
  };
  const outstandingOf = async (customer: Customer, loanId: string) =>
    (await customer.get(`/loans/${loanId}`)).data.outstanding_principal as string;

  it('replays overpayment', async () => {
    const { customer, loanId } = await borrower();
    await expectRefusalKept(
      (headers) => customer.post(`/loans/${loanId}/repay`, { amount: '101.01' }, headers),
      { status: 422, code: 'overpayment' },
      async () => {},
      [customer.account.id],
    );
    expect(await outstandingOf(customer, loanId)).toBe('100.00');
  });

  it('replays insufficient_funds after the paying account is topped up', async () => {
    const { customer, loanId, spareId } = await borrower();
    await expectRefusalKept(
      (headers) => customer.post(`/loans/${loanId}/repay`, { amount: '20.00', from_account_id: spareId }, headers),
      { status: 422, code: 'insufficient_funds' },
      () => deposit(spareId, '500.00'),
      [customer.account.id, spareId],
    );
    expect(await balanceOf(spareId)).toBe('500.00');
    expect(await outstandingOf(customer, loanId)).toBe('100.00');
  });

  it('does not keep a validation_error: the corrected repayment with the key runs', async () => {
    const { customer, loanId } = await borrower();
    await expectCorrectionRuns(
      (headers) => customer.post(`/loans/${loanId}/repay`, { amount: '-1.00' }, headers),
      (headers) => customer.post(`/loans/${loanId}/repay`, { amount: '1.00' }, headers),
    );
  });
});

describe('refusals under an Idempotency-Key, concurrently', () => {
  const RACE_DELAYS = [0, 1, 5, 20, 50];

  /** The answers to one keyed request, sent at once: all the same answer, the first of them only not a replay. */
  function expectOneAnswer(answers: Response[]): Response {
    const fresh = answers.filter((answer) => answer.headers['idempotent-replayed'] === undefined);
    expect(fresh, answers.map((answer) => answer.body).join('\n')).toHaveLength(1);
    for (const answer of answers) {
      expect(answer.statusCode, answer.body).toBe(fresh[0]!.statusCode);
      expect(answer.data).toEqual(fresh[0]!.data);
    }
    return fresh[0]!;
  }

  /**
   * Sends the request, then, `delay` ms later, the deposit of 100.00 that would fund it together with
   * the request three times more. Each delay makes another order likely: the deposit first, the first
   * request's refusal first, or the deposit among the repeats.
   */
  async function racingDeposit(send: () => Promise<Response>, accountId: string, delay: number): Promise<Response[]> {
    const answers = [send()];
    await sleep(delay);
    const deposited = deposit(accountId, '100.00');
    answers.push(send(), send(), send());
    await deposited;
    return Promise.all(answers);
  }

  it('answers one keyed transfer sent five times at once with one refusal, kept once', async () => {
    const alice = await bank.customer('10.00');
    const bob = await bank.customer();
    const headers = keyed();
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => alice.post('/transactions/transfer', transferOf(alice, bob, '50.00'), headers)),
    );
    expect(expectOneAnswer(answers).data.code).toBe('insufficient_funds');
    expect(
      await db().selectFrom('idempotency_keys').select('problem_code').where('key', '=', headers['idempotency-key']).execute(),
    ).toEqual([{ problem_code: 'insufficient_funds' }]);
  });

  it('answers a keyed transfer racing the deposit that would fund it with one answer: the refusal, or the one transfer', async () => {
    for (const delay of RACE_DELAYS) {
      const alice = await bank.customer('10.00');
      const bob = await bank.customer();
      const headers = keyed();
      const send = () => alice.post('/transactions/transfer', transferOf(alice, bob, '50.00'), headers);
      const answer = expectOneAnswer(await racingDeposit(send, alice.account.id, delay));
      const moved = answer.statusCode === 201;
      if (!moved) expect(answer.data.code).toBe('insufficient_funds');
      expect(await balanceOf(alice.account.id)).toBe(moved ? '60.00' : '110.00');
      expect(await balanceOf(bob.account.id)).toBe(moved ? '50.00' : '0.00');
    }
  });

  it('answers a keyed withdrawal racing the deposit that would fund it with one answer: the refusal, or the one withdrawal', async () => {
    for (const delay of RACE_DELAYS) {
      const alice = await bank.customer('10.00');
      const headers = keyed();
      const send = () => bank.admin.post(`/accounts/${alice.account.id}/withdraw`, { amount: '50.00' }, headers);
      const answer = expectOneAnswer(await racingDeposit(send, alice.account.id, delay));
      const moved = answer.statusCode === 201;
      if (!moved) expect(answer.data.code).toBe('insufficient_funds');
      expect(await balanceOf(alice.account.id)).toBe(moved ? '60.00' : '110.00');
    }
  });

  it('leaves the ledger reconciled', async () => {
    const report = await bank.admin.get('/reports/reconciliation');
    expect(report.data).toMatchObject({ ok: true, ledger_sum: '0.00', mismatches: [] });
  });
});
