import { sql } from 'kysely';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sqlState } from '../src/db/transaction.js';
import { postingInstant } from '../src/ledger/post.js';
import { addMonths } from '../src/loans/schedule.js';
import { REVIEW_AT_500_ONLY, testApp, type Customer, type Response, type TestApp } from './helpers/app.js';

interface StatementEntry {
  transaction_id: string;
  posted_at: string;
  type: string;
  amount: string;
  balance_after: string;
}

function created(response: Response): Record<string, any> {
  expect(response.statusCode, response.body).toBe(201);
  return response.data;
}

describe('postingInstant', () => {
  const now = new Date('2031-01-01T00:00:00.000Z');

  it('is the clock’s now, or the latest last posting of the locked accounts if that is later', () => {
    expect(postingInstant(now, [])).toEqual(now);
    expect(postingInstant(now, [{ last_posted_at: null }, { last_posted_at: new Date('2030-12-31T23:59:59.999Z') }])).toEqual(now);
    const later = new Date('2031-01-01T00:00:00.002Z');
    expect(
      postingInstant(now, [{ last_posted_at: new Date('2031-01-01T00:00:00.001Z') }, { last_posted_at: later }, { last_posted_at: null }]),
    ).toEqual(later);
  });
});

/**
 * Every posting takes its instant from the app's clock (bank.clock here). Each test sets it later than
 * the test before did: the bank's cash account, which every deposit touches, keeps the latest instant
 * it was posted at, and no posting on it goes back before that.
 */
describe('one clock for every posting', () => {
  let bank: TestApp;
  const db = () => bank.database.handle.db;

  const statement = async (customer: Customer, from: string, to: string): Promise<StatementEntry[]> => {
    const response = await bank.admin.get(`/accounts/${customer.account.id}/statement?from=${from}&to=${to}`);
    expect(response.statusCode, response.body).toBe(200);
    return response.data.entries;
  };
  const transaction = async (id: string) => (await bank.admin.get(`/transactions/${id}`)).data;
  const lastPostedAt = async (accountId: string) =>
    (await db().selectFrom('accounts').select('last_posted_at').where('id', '=', accountId).executeTakeFirstOrThrow()).last_posted_at;
  const deposit = async (customer: Customer, amount: string) =>
    created(await bank.admin.post(`/accounts/${customer.account.id}/deposit`, { amount }));
  const withdraw = async (customer: Customer, amount: string) =>
    created(await bank.admin.post(`/accounts/${customer.account.id}/withdraw`, { amount }));

  beforeAll(async () => {
    bank = await testApp(REVIEW_AT_500_ONLY);
  });
  afterEach(() => bank.clock.reset());

  it('stamps an opening deposit, a deposit and a withdrawal at the clock’s instant', async () => {
    bank.clock.set('2031-01-10T09:15:00.123Z');
    const alice = await bank.customer('100.00');
    bank.clock.set('2031-01-11T10:00:00.456Z');
    const paidIn = await deposit(alice, '25.00');
    bank.clock.set('2031-01-12T11:30:00.789Z');
    const paidOut = await withdraw(alice, '5.00');

    expect(paidIn.created_at).toBe('2031-01-11T10:00:00.456Z');
    expect(paidOut.created_at).toBe('2031-01-12T11:30:00.789Z');
    expect((await transaction(paidOut.id)).created_at).toBe('2031-01-12T11:30:00.789Z');
    const entries = await statement(alice, '2031-01-01', '2031-01-31');
    expect(entries.map((entry) => [entry.type, entry.posted_at, entry.amount, entry.balance_after])).toEqual([
      ['deposit', '2031-01-10T09:15:00.123Z', '100.00', '100.00'],
      ['deposit', '2031-01-11T10:00:00.456Z', '25.00', '125.00'],
      ['withdrawal', '2031-01-12T11:30:00.789Z', '-5.00', '120.00'],
    ]);
    expect(await lastPostedAt(alice.account.id)).toEqual(new Date('2031-01-12T11:30:00.789Z'));
  });

  it('stamps a reversal at the clock’s instant', async () => {
    const bob = await bank.customer();
    bank.clock.set('2031-02-01T08:00:00.000Z');
    const original = await deposit(bob, '40.00');
    bank.clock.set('2031-02-03T17:45:30.250Z');
    const reversal = created(await bank.admin.post(`/transactions/${original.id}/reverse`, { reason: 'wrong account' }));

    expect(reversal).toMatchObject({ type: 'reversal', reverses: original.id, created_at: '2031-02-03T17:45:30.250Z' });
    const entries = await statement(bob, '2031-02-01', '2031-02-28');
    expect(entries.map((entry) => [entry.transaction_id, entry.posted_at, entry.balance_after])).toEqual([
      [original.id, '2031-02-01T08:00:00.000Z', '40.00'],
      [reversal.id, '2031-02-03T17:45:30.250Z', '0.00'],
    ]);
  });

  it('disburses a loan and takes a repayment at the clock’s instant, the schedule counted from its date', async () => {
    const carol = await bank.customer();
    const applied = await carol.post('/loans', { account_id: carol.account.id, principal: '1200.00', term_months: 12 });
    expect(applied.statusCode, applied.body).toBe(201);
    // The last millisecond of a month's last day: the clock's date, not the database's, fixes the schedule.
    bank.clock.set('2031-03-31T23:59:59.999Z');
    const approved = await bank.admin.post(`/loans/${applied.data.id}/approve`, {});
    expect(approved.statusCode, approved.body).toBe(200);
    expect(approved.data.decided_at).toBe('2031-03-31T23:59:59.999Z');
    expect(approved.data.schedule[0].due_date).toBe(addMonths('2031-03-31', 1));
    expect(approved.data.schedule[0].due_date).toBe('2031-04-30');
    const disbursements = await bank.admin.get(`/transactions/?account_id=${carol.account.id}&type=loan_disbursement`);
    expect(disbursements.data.items.map((item: { created_at: string }) => item.created_at)).toEqual(['2031-03-31T23:59:59.999Z']);

    bank.clock.set('2031-04-15T12:00:00.000Z');
    const repaid = created(await carol.post(`/loans/${applied.data.id}/repay`, { amount: '50.00' }));
    expect(repaid.transaction).toMatchObject({ type: 'loan_repayment', created_at: '2031-04-15T12:00:00.000Z' });
    const entries = await statement(carol, '2031-03-01', '2031-04-30');
    expect(entries.map((entry) => [entry.type, entry.posted_at, entry.balance_after])).toEqual([
      ['loan_disbursement', '2031-03-31T23:59:59.999Z', '1200.00'],
      ['loan_repayment', '2031-04-15T12:00:00.000Z', '1150.00'],
    ]);
  });

  it('stamps a posting at its accounts’ last posting when the clock is behind it, so statements stay in order', async () => {
    const dave = await bank.customer();
    bank.clock.set('2031-05-05T12:00:00.000Z');
    const first = await deposit(dave, '50.00');
    // Another instance whose clock is an hour behind, then one four days behind.
    bank.clock.set('2031-05-05T11:00:00.000Z');
    const second = await deposit(dave, '20.00');
    bank.clock.set('2031-05-01T00:00:00.000Z');
    const third = await withdraw(dave, '10.00');
    expect([first, second, third].map((posted) => posted.created_at)).toEqual(Array(3).fill('2031-05-05T12:00:00.000Z'));

    // Entries of one instant read in posting order, so the running balance reads in order too.
    const entries = await statement(dave, '2031-05-01', '2031-05-31');
    expect(entries.map((entry) => [entry.transaction_id, entry.posted_at, entry.amount, entry.balance_after])).toEqual([
      [first.id, '2031-05-05T12:00:00.000Z', '50.00', '50.00'],
      [second.id, '2031-05-05T12:00:00.000Z', '20.00', '70.00'],
      [third.id, '2031-05-05T12:00:00.000Z', '-10.00', '60.00'],
    ]);

    // Once the clock has passed it again, the clock is the instant.
    bank.clock.set('2031-05-06T00:00:00.001Z');
    expect((await deposit(dave, '1.00')).created_at).toBe('2031-05-06T00:00:00.001Z');
    expect(await lastPostedAt(dave.account.id)).toEqual(new Date('2031-05-06T00:00:00.001Z'));
  });

  describe('ledger_post, called directly', () => {
    /** What a refused posting must leave as it was. */
    const snapshot = async (accountIds: string[]) => ({
      accounts: await db()
        .selectFrom('accounts')
        .select(['id', 'balance', 'held', 'last_posted_at'])
        .where('id', 'in', accountIds)
        .orderBy('id')
        .execute(),
      entries: (
        await db()
          .selectFrom('journal_entries')
          .select((eb) => eb.fn.countAll<string>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    });
    const refusal = async (query: ReturnType<typeof sql>): Promise<Error> => {
      const error = await query.execute(db()).then(
        () => undefined,
        (failure: unknown) => failure as Error,
      );
      expect(error, 'ledger_post should have refused').toBeDefined();
      return error!;
    };

    it('refuses a posting earlier than an account’s last posting, or without an instant, naming the account and changing nothing', async () => {
      const erin = await bank.customer();
      const frank = await bank.customer();
      bank.clock.set('2031-06-06T06:06:06.606Z');
      const paidIn = await deposit(erin, '100.00');
      const before = await snapshot([erin.account.id, frank.account.id]);
      const justBefore = new Date('2031-06-06T06:06:06.605Z');

      // 1.00 from Erin (last posted at 06.606) to Frank (never posted) at 06.605.
      const move = (at: Date | null) => sql`SELECT ledger_post(
        ARRAY[${paidIn.id}]::uuid[], ARRAY[NULL]::uuid[], '{0}', '{1,1}',
        ARRAY[${erin.account.id}, ${frank.account.id}]::uuid[], '{-100,100}', ${at}::timestamptz)`;
      const early = await refusal(move(justBefore));
      expect(sqlState(early)).toBe('22023');
      expect(early.message).toContain(erin.account.id);
      expect(early.message).not.toContain(frank.account.id);
      expect(early.message).toMatch(/is earlier than the last posting of account/);

      const unstamped = await refusal(move(null));
      expect(sqlState(unstamped)).toBe('22023');
      expect(unstamped.message).toMatch(/p_posted_at/);

      // A hold alone is a posting on its account too.
      const hold = await refusal(sql`SELECT ledger_post(
        ARRAY[${paidIn.id}]::uuid[], ARRAY[${erin.account.id}]::uuid[], '{100}', '{}', '{}', '{}', ${justBefore}::timestamptz)`);
      expect(sqlState(hold)).toBe('22023');
      expect(hold.message).toContain(erin.account.id);

      expect(await snapshot([erin.account.id, frank.account.id])).toEqual(before);
      expect(before.accounts.find((account) => account.id === erin.account.id)?.last_posted_at).toEqual(
        new Date('2031-06-06T06:06:06.606Z'),
      );
      expect(before.accounts.find((account) => account.id === frank.account.id)?.last_posted_at).toBeNull();
    });
  });
});

/**
 * Reviews in a database of their own, where no posting is in the future: the held transfers are made
 * at the real time, before the clock moves.
 */
describe('reviews of held transfers, by the clock', () => {
  let bank: TestApp;

  beforeAll(async () => {
    bank = await testApp(REVIEW_AT_500_ONLY);
  });
  afterEach(() => bank.clock.reset());

  const hold = async (from: Customer, to: Customer, amount: string): Promise<Record<string, any>> => {
    const held = created(
      await from.post('/transactions/transfer', {
        from_account: from.account.account_number,
        to_account: to.account.account_number,
        amount,
      }),
    );
    expect(held.status).toBe('pending_review');
    return held;
  };

  it('approves at the clock’s instant: reviewed_at and the entries’ posted_at; rejects at it too', async () => {
    const [alice, bob, carol, dave] = [
      await bank.customer('1000.00'),
      await bank.customer(),
      await bank.customer('1000.00'),
      await bank.customer(),
    ];
    const approving = await hold(alice, bob, '600.00');
    const rejecting = await hold(carol, dave, '700.00');

    bank.clock.set('2031-07-07T07:07:07.077Z');
    const approved = await bank.admin.post(`/transactions/${approving.id}/approve`, { note: 'called the customer' });
    expect(approved.statusCode, approved.body).toBe(200);
    expect(approved.data).toMatchObject({ status: 'completed', created_at: approving.created_at, reviewed_at: '2031-07-07T07:07:07.077Z' });
    const entries = (await bank.admin.get(`/accounts/${bob.account.id}/statement?from=2031-07-01&to=2031-07-31`)).data.entries;
    expect(entries).toEqual([
      expect.objectContaining({ transaction_id: approving.id, posted_at: '2031-07-07T07:07:07.077Z', balance_after: '600.00' }),
    ]);

    bank.clock.set('2031-07-08T08:08:08.088Z');
    const rejected = await bank.admin.post(`/transactions/${rejecting.id}/reject`, { reason: 'looks like fraud' });
    expect(rejected.statusCode, rejected.body).toBe(200);
    expect(rejected.data).toMatchObject({ status: 'rejected', reviewed_at: '2031-07-08T08:08:08.088Z' });
    const carolsAccount = await bank.database.handle.db
      .selectFrom('accounts')
      .select(['held', 'last_posted_at'])
      .where('id', '=', carol.account.id)
      .executeTakeFirstOrThrow();
    expect(carolsAccount).toEqual({ held: 0n, last_posted_at: new Date('2031-07-08T08:08:08.088Z') });
  });
});
