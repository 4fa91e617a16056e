import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { Client, testApp, testConfig, type Customer, type Response, type TestApp } from './helpers/app.js';

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
const OUT_OF_REACH = '999999999.00';

/** Every rule off but the ones a block turns on (REVIEW_THRESHOLD cannot be 0: it is set out of reach). */
const QUIET = {
  RATE_LIMIT_TRANSFERS_PER_MINUTE: '100000',
  REVIEW_THRESHOLD: OUT_OF_REACH,
  RISK_NEW_PAYEE_AMOUNT: '0',
  RISK_NEW_ACCOUNT_AMOUNT: '0',
  RISK_VELOCITY_COUNT: '0',
};

type Payee = { account: { id?: string; account_number: string } };
type Send = (from: Customer, to: Payee, amount: string, fromNumber?: string) => Promise<Response>;

/** A transfer through `via` (by default the customer's own app) with the customer's token. */
function sender(via: (customer: Customer) => Client = (customer) => customer): Send {
  return (from, to, amount, fromNumber = from.account.account_number) =>
    via(from).post('/transactions/transfer', { from_account: fromNumber, to_account: to.account.account_number, amount });
}

const send = sender();

/**
 * One database serves every risk configuration of this file: each configuration is another instance of
 * the service (as in a multi-instance deployment) on the primary app's database, which spares a new
 * database and its migrations per configuration. Tokens issued by one instance work on all.
 */
async function instance(bank: TestApp, env: Record<string, string>): Promise<Send> {
  const app = await buildApp({ config: testConfig(env), database: bank.database.handle, logger: false, clock: bank.clock.now });
  afterAll(() => app.close());
  return sender((customer) => new Client(app, customer.token));
}

/** The file's one database, served by the primary app (the threshold configuration, 100.00). */
let shared: TestApp;
beforeAll(async () => {
  shared = await testApp({ ...QUIET, REVIEW_THRESHOLD: '100.00' });
});

function expectProblem(response: Response, status: number, code: string): void {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(response.data.code).toBe(code);
}

function expectPending(response: Response, reasons: string[]): string {
  expect(response.statusCode, response.body).toBe(201);
  expect(response.data).toMatchObject({
    type: 'transfer',
    status: 'pending_review',
    review_reasons: reasons,
    reviewed_by: null,
    reviewed_at: null,
  });
  return response.data.id as string;
}

function expectCompleted(response: Response): string {
  expect(response.statusCode, response.body).toBe(201);
  expect(response.data).toMatchObject({ type: 'transfer', status: 'completed', review_reasons: [] });
  return response.data.id as string;
}

async function accountOf(bank: TestApp, id: string): Promise<{ balance: string; available_balance: string; status: string }> {
  const response = await bank.admin.get(`/accounts/${id}`);
  expect(response.statusCode, response.body).toBe(200);
  return response.data;
}

async function money(bank: TestApp, customer: Customer): Promise<[string, string]> {
  const account = await accountOf(bank, customer.account.id);
  return [account.balance, account.available_balance];
}

async function journalOf(bank: TestApp, transactionId: string): Promise<bigint[]> {
  const rows = await bank.database.handle.db
    .selectFrom('journal_entries')
    .select('amount')
    .where('transaction_id', '=', transactionId)
    .orderBy('amount')
    .execute();
  return rows.map((row) => row.amount);
}

async function expectReconciled(bank: TestApp): Promise<void> {
  const report = await bank.admin.get('/reports/reconciliation');
  expect(report.statusCode, report.body).toBe(200);
  expect(report.data).toMatchObject({ ok: true, ledger_sum: '0.00', mismatches: [], unbalanced_transactions: [], hold_mismatches: [] });
}

async function auditEntries(bank: TestApp, action: string, targetId: string): Promise<any[]> {
  const response = await bank.admin.get(`/audit-logs?action=${action}&target_id=${targetId}`);
  expect(response.statusCode, response.body).toBe(200);
  return response.data.items;
}

describe('amount_threshold and the review of held transfers', () => {
  let bank: TestApp;
  let auditor: Client & { user: { id: string } };
  let adminId: string;

  beforeAll(async () => {
    bank = shared;
    auditor = await bank.user('auditor');
    adminId = (await bank.admin.get('/auth/me')).data.id;
  });

  it('flags a transfer of exactly REVIEW_THRESHOLD with amount_threshold, and lets one cent below complete', async () => {
    const alice = await bank.customer('1000.00');
    const bob = await bank.customer();
    expectCompleted(await send(alice, bob, '99.99'));
    const response = await send(alice, bob, '100.00');
    const id = expectPending(response, ['amount_threshold']);
    expect(response.data).toMatchObject({ amount: '100.00', review_note: null, transaction_id: id });
    // Everyone who can see it sees it pending.
    for (const viewer of [alice, bob, bank.admin, auditor]) {
      const seen = await viewer.get(`/transactions/${id}`);
      expect(seen.statusCode).toBe(200);
      expect(seen.data).toMatchObject({ status: 'pending_review', review_reasons: ['amount_threshold'] });
    }
    expectPending(await send(alice, bob, '100.01'), ['amount_threshold']);
  });

  it('holds a flagged transfer: available falls, balance does not, the receiver gets nothing, the held money cannot be spent', async () => {
    const alice = await bank.customer('500.00');
    const bob = await bank.customer();
    const carol = await bank.customer();
    const id = expectPending(await send(alice, bob, '400.00'), ['amount_threshold']);
    expect(await money(bank, alice)).toEqual(['500.00', '100.00']);
    expect(await money(bank, bob)).toEqual(['0.00', '0.00']);
    expect(await journalOf(bank, id)).toEqual([]);

    // Beyond what is available: refused by a transfer (to anyone) and by the teller.
    expectProblem(await send(alice, carol, '100.01'), 422, 'insufficient_funds');
    expectProblem(await send(alice, bob, '100.01'), 422, 'insufficient_funds');
    expectProblem(await bank.admin.post(`/accounts/${alice.account.id}/withdraw`, { amount: '100.01' }), 422, 'insufficient_funds');
    expect(await money(bank, alice)).toEqual(['500.00', '100.00']);

    // Up to what is available is fine: a small transfer, then a second hold for the rest.
    expectCompleted(await send(alice, carol, '50.00'));
    expect(await money(bank, alice)).toEqual(['450.00', '50.00']);
    expectProblem(await bank.admin.post(`/accounts/${alice.account.id}/withdraw`, { amount: '50.01' }), 422, 'insufficient_funds');
    expect((await bank.admin.post(`/accounts/${alice.account.id}/withdraw`, { amount: '50.00' })).statusCode).toBe(201);
    expect(await money(bank, alice)).toEqual(['400.00', '0.00']);
    expectProblem(await send(alice, carol, '0.01'), 422, 'insufficient_funds');
    expectProblem(await bank.admin.post(`/accounts/${alice.account.id}/withdraw`, { amount: '0.01' }), 422, 'insufficient_funds');
    expect(await money(bank, bob)).toEqual(['0.00', '0.00']);
    expect(await money(bank, carol)).toEqual(['50.00', '50.00']);

    // The reconciliation sees the hold as exactly the pending transfer.
    await expectReconciled(bank);
  });

  it('counts a held transfer toward the daily limit, and a rejected one no longer', async () => {
    const alice = await bank.customer('1000.00', { daily_limit: '500.00' });
    const bob = await bank.customer();
    const id = expectPending(await send(alice, bob, '400.00'), ['amount_threshold']);
    expectProblem(await send(alice, bob, '100.01'), 422, 'daily_limit_exceeded');
    expectCompleted(await send(alice, bob, '99.00'));
    expectCompleted(await send(alice, bob, '1.00'));
    expectProblem(await send(alice, bob, '0.01'), 422, 'daily_limit_exceeded');
    expect((await bank.admin.post(`/transactions/${id}/reject`, { reason: 'not today' })).statusCode).toBe(200);
    expectCompleted(await send(alice, bob, '0.01'));
  });

  describe('GET /transactions/flagged', () => {
    it('is for admin and auditor: 403 for a customer, 401 without a token', async () => {
      const customer = await bank.customer('10.00');
      expect((await bank.admin.get('/transactions/flagged')).statusCode).toBe(200);
      expect((await auditor.get('/transactions/flagged')).statusCode).toBe(200);
      expectProblem(await customer.get('/transactions/flagged'), 403, 'forbidden');
      expectProblem(await bank.anonymous.get('/transactions/flagged'), 401, 'unauthorized');
    });

    it('lists only transfers pending review, oldest first, page by page without gaps or repeats', async () => {
      const alice = await bank.customer('2000.00');
      const bob = await bank.customer();
      const ids: string[] = [];
      for (const amount of ['101.00', '102.00', '103.00', '104.00', '105.00'])
        ids.push(expectPending(await send(alice, bob, amount), ['amount_threshold']));
      const completed = expectCompleted(await send(alice, bob, '1.00'));

      for (const reader of [bank.admin, auditor]) {
        const seen: any[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const url: string = `/transactions/flagged?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
          const page = await reader.get(url);
          expect(page.statusCode, page.body).toBe(200);
          expect(page.data.items.length).toBeLessThanOrEqual(2);
          seen.push(...page.data.items);
          cursor = page.data.next_cursor;
          pages++;
        } while (cursor !== null && pages < 100);
        expect(cursor).toBeNull();
        const seenIds = seen.map((item) => item.id as string);
        expect(new Set(seenIds).size).toBe(seenIds.length);
        expect(seen.every((item) => item.status === 'pending_review')).toBe(true);
        expect(seenIds).not.toContain(completed);
        // Oldest first: by created_at, then id.
        const sorted = [...seen].sort((a, b) =>
          a.created_at === b.created_at ? (a.id < b.id ? -1 : 1) : a.created_at < b.created_at ? -1 : 1,
        );
        expect(seenIds).toEqual(sorted.map((item) => item.id));
        expect(seenIds.filter((id) => ids.includes(id))).toEqual(ids);
        // Everything pending in the database, and only that.
        const pending = await bank.database.handle.db
          .selectFrom('transactions')
          .select('id')
          .where('status', '=', 'pending_review')
          .execute();
        expect([...seenIds].sort()).toEqual(pending.map((row) => row.id).sort());
      }

      // A decided transfer leaves the queue.
      expect((await bank.admin.post(`/transactions/${ids[1]}/approve`, {})).statusCode).toBe(200);
      expect((await bank.admin.post(`/transactions/${ids[3]}/reject`, { reason: 'no' })).statusCode).toBe(200);
      const all = await bank.admin.get('/transactions/flagged?limit=100');
      const left = (all.data.items as any[]).map((item) => item.id);
      expect(left.filter((id) => ids.includes(id))).toEqual([ids[0], ids[2], ids[4]]);
    });

    it('answers 422 for a limit outside 1..100 or a foreign cursor', async () => {
      for (const query of ['limit=0', 'limit=101', 'limit=x', 'cursor=not-a-cursor', 'status=completed']) {
        expectProblem(await bank.admin.get(`/transactions/flagged?${query}`), 422, 'validation_error');
      }
    });
  });

  describe('approve and reject', () => {
    it('approve: completed, the money moves, the hold is released, the review is recorded', async () => {
      const alice = await bank.customer('1000.00');
      const bob = await bank.customer('5.00');
      const id = expectPending(await send(alice, bob, '250.00'), ['amount_threshold']);
      const approved = await bank.admin.post(`/transactions/${id}/approve`, { note: 'called the customer' });
      expect(approved.statusCode, approved.body).toBe(200);
      expect(approved.data).toMatchObject({
        id,
        type: 'transfer',
        status: 'completed',
        amount: '250.00',
        from_account: alice.account.account_number,
        to_account: bob.account.account_number,
        review_reasons: ['amount_threshold'],
        reviewed_by: adminId,
        review_note: 'called the customer',
      });
      expect(approved.data.reviewed_at).toMatch(ISO_UTC);
      expect(Date.parse(approved.data.reviewed_at)).toBeGreaterThanOrEqual(Date.parse(approved.data.created_at));
      expect(await money(bank, alice)).toEqual(['750.00', '750.00']);
      expect(await money(bank, bob)).toEqual(['255.00', '255.00']);
      expect(await journalOf(bank, id)).toEqual([-25000n, 25000n]);
      expect((await alice.get(`/transactions/${id}`)).data).toMatchObject({
        status: 'completed',
        reviewed_by: adminId,
        review_note: 'called the customer',
      });

      const audit = await auditEntries(bank, 'transfer.approved', id);
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({ actor_id: adminId, actor_role: 'admin', target_type: 'transaction', target_id: id });
      expect(audit[0].details).toMatchObject({ note: 'called the customer', amount: '250.00' });
      await expectReconciled(bank);
    });

    it('approve without a note: review_note stays null', async () => {
      const alice = await bank.customer('1000.00');
      const bob = await bank.customer();
      const id = expectPending(await send(alice, bob, '100.00'), ['amount_threshold']);
      const approved = await bank.admin.post(`/transactions/${id}/approve`, {});
      expect(approved.statusCode, approved.body).toBe(200);
      expect(approved.data).toMatchObject({ status: 'completed', reviewed_by: adminId, review_note: null });
      expect(await money(bank, bob)).toEqual(['100.00', '100.00']);
    });

    it('reject: rejected, the hold is released, nothing moves, the reason is recorded', async () => {
      const alice = await bank.customer('1000.00');
      const bob = await bank.customer('5.00');
      const id = expectPending(await send(alice, bob, '250.00'), ['amount_threshold']);
      expect(await money(bank, alice)).toEqual(['1000.00', '750.00']);
      const rejected = await bank.admin.post(`/transactions/${id}/reject`, { reason: 'looks like fraud' });
      expect(rejected.statusCode, rejected.body).toBe(200);
      expect(rejected.data).toMatchObject({
        id,
        status: 'rejected',
        reviewed_by: adminId,
        review_note: 'looks like fraud',
        review_reasons: ['amount_threshold'],
      });
      expect(rejected.data.reviewed_at).toMatch(ISO_UTC);
      expect(await money(bank, alice)).toEqual(['1000.00', '1000.00']);
      expect(await money(bank, bob)).toEqual(['5.00', '5.00']);
      expect(await journalOf(bank, id)).toEqual([]);

      const audit = await auditEntries(bank, 'transfer.rejected', id);
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({ actor_id: adminId, actor_role: 'admin', target_id: id });
      expect(audit[0].details).toMatchObject({ reason: 'looks like fraud' });
      expect(await auditEntries(bank, 'transfer.approved', id)).toEqual([]);
      await expectReconciled(bank);
    });

    it('answers 409 not_pending to a second decision, and to a transfer that never waited', async () => {
      const alice = await bank.customer('1000.00');
      const bob = await bank.customer();
      const approved = expectPending(await send(alice, bob, '100.00'), ['amount_threshold']);
      const rejected = expectPending(await send(alice, bob, '200.00'), ['amount_threshold']);
      expect((await bank.admin.post(`/transactions/${approved}/approve`, {})).statusCode).toBe(200);
      expect((await bank.admin.post(`/transactions/${rejected}/reject`, { reason: 'no' })).statusCode).toBe(200);
      const direct = expectCompleted(await send(alice, bob, '1.00'));
      for (const id of [approved, rejected, direct]) {
        expectProblem(await bank.admin.post(`/transactions/${id}/approve`, { note: 'again' }), 409, 'not_pending');
        expectProblem(await bank.admin.post(`/transactions/${id}/reject`, { reason: 'again' }), 409, 'not_pending');
      }
      // Nothing moved twice: 100 + 1 left alice.
      expect(await money(bank, alice)).toEqual(['899.00', '899.00']);
      expect(await money(bank, bob)).toEqual(['101.00', '101.00']);
      expect((await bank.admin.get(`/transactions/${rejected}`)).data).toMatchObject({ status: 'rejected', review_note: 'no' });
    });

    it('answers 404 for an unknown transaction and 422 for a malformed id', async () => {
      const unknown = '00000000-0000-4000-8000-000000000000';
      expectProblem(await bank.admin.post(`/transactions/${unknown}/approve`, {}), 404, 'not_found');
      expectProblem(await bank.admin.post(`/transactions/${unknown}/reject`, { reason: 'x' }), 404, 'not_found');
      expectProblem(await bank.admin.post('/transactions/not-a-uuid/approve', {}), 422, 'validation_error');
    });

    it('answers 422 to a reject without a reason or with an empty one, and to unknown fields; the transfer stays pending', async () => {
      const alice = await bank.customer('1000.00');
      const bob = await bank.customer();
      const id = expectPending(await send(alice, bob, '100.00'), ['amount_threshold']);
      expectProblem(await bank.admin.post(`/transactions/${id}/reject`, {}), 422, 'validation_error');
      expectProblem(await bank.admin.post(`/transactions/${id}/reject`, { reason: '' }), 422, 'validation_error');
      expectProblem(await bank.admin.post(`/transactions/${id}/reject`, { note: 'wrong field' }), 422, 'validation_error');
      expectProblem(await bank.admin.post(`/transactions/${id}/reject`, { reason: 'x'.repeat(501) }), 422, 'validation_error');
      expectProblem(await bank.admin.post(`/transactions/${id}/approve`, { note: 'ok', amount: '1.00' }), 422, 'validation_error');
      expect((await bank.admin.get(`/transactions/${id}`)).data.status).toBe('pending_review');
      expect(await money(bank, alice)).toEqual(['1000.00', '900.00']);
    });

    it('lets only an admin decide: 403 for the auditor and for customers, 401 without a token', async () => {
      const alice = await bank.customer('1000.00');
      const bob = await bank.customer();
      const id = expectPending(await send(alice, bob, '100.00'), ['amount_threshold']);
      for (const caller of [auditor, alice, bob]) {
        expectProblem(await caller.post(`/transactions/${id}/approve`, { note: 'me' }), 403, 'forbidden');
        expectProblem(await caller.post(`/transactions/${id}/reject`, { reason: 'me' }), 403, 'forbidden');
      }
      expectProblem(await bank.anonymous.post(`/transactions/${id}/approve`, {}), 401, 'unauthorized');
      expect((await bank.admin.get(`/transactions/${id}`)).data.status).toBe('pending_review');
      expect(await money(bank, alice)).toEqual(['1000.00', '900.00']);
      expect(await money(bank, bob)).toEqual(['0.00', '0.00']);
    });

    for (const side of ['sender', 'receiver'] as const) {
      it(`refuses approval with 409 account_not_active when the ${side} was frozen meanwhile; the transfer stays pending and can be rejected`, async () => {
        const alice = await bank.customer('1000.00');
        const bob = await bank.customer('1.00');
        const id = expectPending(await send(alice, bob, '300.00'), ['amount_threshold']);
        const frozen = side === 'sender' ? alice : bob;
        const freeze = await bank.admin.patch(`/accounts/${frozen.account.id}`, { status: 'frozen' });
        expect(freeze.statusCode, freeze.body).toBe(200);

        expectProblem(await bank.admin.post(`/transactions/${id}/approve`, { note: 'go' }), 409, 'account_not_active');
        expect((await bank.admin.get(`/transactions/${id}`)).data).toMatchObject({
          status: 'pending_review',
          reviewed_by: null,
          review_note: null,
        });
        expect(await money(bank, alice)).toEqual(['1000.00', '700.00']);
        expect(await money(bank, bob)).toEqual(['1.00', '1.00']);
        expect(await journalOf(bank, id)).toEqual([]);
        expect(await auditEntries(bank, 'transfer.approved', id)).toEqual([]);
        await expectReconciled(bank);

        const rejected = await bank.admin.post(`/transactions/${id}/reject`, { reason: 'account frozen' });
        expect(rejected.statusCode, rejected.body).toBe(200);
        expect(rejected.data.status).toBe('rejected');
        expect(await money(bank, alice)).toEqual(['1000.00', '1000.00']);
        expect(await money(bank, bob)).toEqual(['1.00', '1.00']);
        await expectReconciled(bank);
      });
    }

    it('refuses approval into a receiver closed while the transfer waited', async () => {
      const alice = await bank.customer('1000.00');
      const bob = await bank.customer();
      const id = expectPending(await send(alice, bob, '300.00'), ['amount_threshold']);
      const close = await bank.admin.patch(`/accounts/${bob.account.id}`, { status: 'closed' });
      expect(close.statusCode, close.body).toBe(200);
      expectProblem(await bank.admin.post(`/transactions/${id}/approve`, {}), 409, 'account_not_active');
      expect(await money(bank, bob)).toEqual(['0.00', '0.00']);
      expect((await bank.admin.post(`/transactions/${id}/reject`, { reason: 'payee closed' })).statusCode).toBe(200);
      expect(await money(bank, alice)).toEqual(['1000.00', '1000.00']);
    });

    it('approves after an unfreeze', async () => {
      const alice = await bank.customer('1000.00');
      const bob = await bank.customer();
      const id = expectPending(await send(alice, bob, '300.00'), ['amount_threshold']);
      expect((await bank.admin.patch(`/accounts/${alice.account.id}`, { status: 'frozen' })).statusCode).toBe(200);
      expectProblem(await bank.admin.post(`/transactions/${id}/approve`, {}), 409, 'account_not_active');
      expect((await bank.admin.patch(`/accounts/${alice.account.id}`, { status: 'active' })).statusCode).toBe(200);
      expect((await bank.admin.post(`/transactions/${id}/approve`, {})).statusCode).toBe(200);
      expect(await money(bank, alice)).toEqual(['700.00', '700.00']);
      expect(await money(bank, bob)).toEqual(['300.00', '300.00']);
    });

    it('takes exactly one of ten concurrent decisions; the others answer 409 not_pending and money moves at most once', async () => {
      for (let round = 0; round < 2; round++) {
        const alice = await bank.customer('1000.00');
        const bob = await bank.customer();
        const id = expectPending(await send(alice, bob, '300.00'), ['amount_threshold']);
        const decisions = Array.from({ length: 10 }, (_, i) =>
          (i + round) % 2 === 0
            ? bank.admin.post(`/transactions/${id}/approve`, { note: `approve ${i}` })
            : bank.admin.post(`/transactions/${id}/reject`, { reason: `reject ${i}` }),
        );
        const responses = await Promise.all(decisions);
        const statuses = responses.map((r) => r.statusCode).sort();
        expect(statuses, responses.map((r) => r.body).join('\n')).toEqual([200, ...Array(9).fill(409)]);
        for (const loser of responses.filter((r) => r.statusCode === 409)) expect(loser.data.code).toBe('not_pending');
        const winner = responses.find((r) => r.statusCode === 200)!;

        const final = (await bank.admin.get(`/transactions/${id}`)).data;
        expect(final.status).toBe(winner.data.status);
        expect(final.review_note).toBe(winner.data.review_note);
        if (final.status === 'completed') {
          expect(await money(bank, alice)).toEqual(['700.00', '700.00']);
          expect(await money(bank, bob)).toEqual(['300.00', '300.00']);
          expect(await journalOf(bank, id)).toEqual([-30000n, 30000n]);
        } else {
          expect(final.status).toBe('rejected');
          expect(await money(bank, alice)).toEqual(['1000.00', '1000.00']);
          expect(await money(bank, bob)).toEqual(['0.00', '0.00']);
          expect(await journalOf(bank, id)).toEqual([]);
        }
        const decided = [...(await auditEntries(bank, 'transfer.approved', id)), ...(await auditEntries(bank, 'transfer.rejected', id))];
        expect(decided).toHaveLength(1);
      }
      await expectReconciled(bank);
    });
  });

  it('refuses to close an account with a hold open (409 balance_not_zero), and closes it once emptied', async () => {
    const alice = await bank.customer('100.00');
    const bob = await bank.customer();
    const id = expectPending(await send(alice, bob, '100.00'), ['amount_threshold']);
    expect(await money(bank, alice)).toEqual(['100.00', '0.00']);
    expectProblem(await bank.admin.patch(`/accounts/${alice.account.id}`, { status: 'closed' }), 409, 'balance_not_zero');
    expect((await accountOf(bank, alice.account.id)).status).toBe('active');
    expect((await bank.admin.post(`/transactions/${id}/approve`, {})).statusCode).toBe(200);
    expect(await money(bank, alice)).toEqual(['0.00', '0.00']);
    const closed = await bank.admin.patch(`/accounts/${alice.account.id}`, { status: 'closed' });
    expect(closed.statusCode, closed.body).toBe(200);
    expect(closed.data.status).toBe('closed');
  });

  it('reconciles with holds still open and after every decision', async () => {
    const alice = await bank.customer('1000.00');
    const bob = await bank.customer();
    const first = expectPending(await send(alice, bob, '100.00'), ['amount_threshold']);
    const second = expectPending(await send(alice, bob, '200.00'), ['amount_threshold']);
    await expectReconciled(bank);
    const held = await bank.database.handle.db
      .selectFrom('accounts')
      .select('held')
      .where('id', '=', alice.account.id)
      .executeTakeFirstOrThrow();
    expect(held.held).toBe(30000n);
    expect((await bank.admin.post(`/transactions/${first}/approve`, {})).statusCode).toBe(200);
    await expectReconciled(bank);
    expect((await bank.admin.post(`/transactions/${second}/reject`, { reason: 'r' })).statusCode).toBe(200);
    await expectReconciled(bank);
    expect(await money(bank, alice)).toEqual(['900.00', '900.00']);
    const auditorReport = await auditor.get('/reports/reconciliation');
    expect(auditorReport.data).toMatchObject({ ok: true, hold_mismatches: [] });
  });
});

describe('new_payee', () => {
  let bank: TestApp;
  let send: Send;
  beforeAll(async () => {
    bank = shared;
    send = await instance(bank, { ...QUIET, RISK_NEW_PAYEE_AMOUNT: '50.00' });
  });

  it('flags payments of RISK_NEW_PAYEE_AMOUNT or more to a payee until a first transfer to it completes', async () => {
    const alice = await bank.customer('1000.00');
    const bob = await bank.customer();
    const first = expectPending(await send(alice, bob, '50.00'), ['new_payee']);
    // A pending transfer does not make the payee known.
    const second = expectPending(await send(alice, bob, '60.00'), ['new_payee']);
    // Neither does a rejected one.
    expect((await bank.admin.post(`/transactions/${first}/reject`, { reason: 'r' })).statusCode).toBe(200);
    expect((await bank.admin.post(`/transactions/${second}/reject`, { reason: 'r' })).statusCode).toBe(200);
    expectPending(await send(alice, bob, '50.00'), ['new_payee']);
    // One cent below the amount completes at once, and makes the payee known.
    expectCompleted(await send(alice, bob, '49.99'));
    expectCompleted(await send(alice, bob, '50.00'));
    expectCompleted(await send(alice, bob, '500.00'));
  });

  it('knows a payee per sender account and direction', async () => {
    const alice = await bank.customer('1000.00');
    const bob = await bank.customer('1000.00');
    const carol = await bank.customer();
    expectCompleted(await send(alice, bob, '1.00'));
    expectCompleted(await send(alice, bob, '50.00'));
    // Another payee of the same sender is new.
    expectPending(await send(alice, carol, '50.00'), ['new_payee']);
    // The reverse direction is new: bob never paid alice.
    expectPending(await send(bob, alice, '50.00'), ['new_payee']);
    // Another account of the same customer never paid bob.
    const savings = (await bank.admin.post(`/accounts/?user_id=${alice.user.id}`, { type: 'savings', initial_deposit: '100.00' })).data;
    expectPending(await send(alice, bob, '50.00', savings.account_number), ['new_payee']);
  });

  it('makes a payee known once a flagged first transfer is approved', async () => {
    const dave = await bank.customer('1000.00');
    const erin = await bank.customer();
    const id = expectPending(await send(dave, erin, '80.00'), ['new_payee']);
    expect((await bank.admin.post(`/transactions/${id}/approve`, {})).statusCode).toBe(200);
    expectCompleted(await send(dave, erin, '80.00'));
    expect(await money(bank, erin)).toEqual(['160.00', '160.00']);
    await expectReconciled(bank);
  });
});

describe('new_account', () => {
  let bank: TestApp;
  let send: Send;
  beforeAll(async () => {
    bank = shared;
    send = await instance(bank, { ...QUIET, RISK_NEW_ACCOUNT_AMOUNT: '100.00', RISK_NEW_ACCOUNT_HOURS: '24' });
  });

  const age = (customer: Customer, hours: number) =>
    sql`UPDATE accounts SET created_at = now() - make_interval(hours => ${hours}) WHERE id = ${customer.account.id}`.execute(
      bank.database.handle.db,
    );

  it('flags RISK_NEW_ACCOUNT_AMOUNT or more from a fresh account, and lets one cent below complete', async () => {
    const alice = await bank.customer('1000.00');
    const bob = await bank.customer();
    expectCompleted(await send(alice, bob, '99.99'));
    expectPending(await send(alice, bob, '100.00'), ['new_account']);
    expectPending(await send(alice, bob, '500.00'), ['new_account']);
  });

  it('lets the same amounts through from an account older than RISK_NEW_ACCOUNT_HOURS', async () => {
    const alice = await bank.customer('1000.00');
    const bob = await bank.customer();
    await age(alice, 25);
    expectCompleted(await send(alice, bob, '100.00'));
    expectCompleted(await send(alice, bob, '500.00'));
    expect(await money(bank, bob)).toEqual(['600.00', '600.00']);
  });

  it('still flags an account 23 hours old', async () => {
    const alice = await bank.customer('1000.00');
    const bob = await bank.customer();
    await age(alice, 23);
    expectPending(await send(alice, bob, '100.00'), ['new_account']);
  });

  it('looks at the sender’s age only, not the receiver’s', async () => {
    const old = await bank.customer('1000.00');
    const fresh = await bank.customer();
    await age(old, 25);
    expectCompleted(await send(old, fresh, '200.00'));
    await expectReconciled(bank);
  });
});

describe('velocity', () => {
  let bank: TestApp;
  let send: Send;
  beforeAll(async () => {
    bank = shared;
    send = await instance(bank, { ...QUIET, RISK_VELOCITY_COUNT: '3', RISK_VELOCITY_MINUTES: '60' });
  });

  it('flags a transfer from an account that already sent RISK_VELOCITY_COUNT transfers within the window', async () => {
    const alice = await bank.customer('1000.00');
    const bob = await bank.customer('100.00');
    for (let i = 0; i < 3; i++) expectCompleted(await send(alice, bob, '1.00'));
    const fourth = expectPending(await send(alice, bob, '1.00'), ['velocity']);
    // Pending transfers count too.
    expectPending(await send(alice, bob, '1.00'), ['velocity']);
    // Per sending account: bob has received five but sent none.
    expectCompleted(await send(bob, alice, '1.00'));
    // Another account of the same customer has its own count.
    const savings = (await bank.admin.post(`/accounts/?user_id=${alice.user.id}`, { type: 'savings', initial_deposit: '10.00' })).data;
    expectCompleted(await send(alice, bob, '1.00', savings.account_number));
    expect((await bank.admin.post(`/transactions/${fourth}/approve`, {})).statusCode).toBe(200);
    await expectReconciled(bank);
  });

  it('forgets transfers older than RISK_VELOCITY_MINUTES', async () => {
    const carol = await bank.customer('1000.00');
    const dave = await bank.customer();
    for (let i = 0; i < 3; i++) expectCompleted(await send(carol, dave, '1.00'));
    expectPending(await send(carol, dave, '1.00'), ['velocity']);
    // 61 minutes later, by the app's clock, carol's transfers are out of the window.
    bank.clock.set(new Date(Date.now() + 61 * 60_000));
    try {
      expectCompleted(await send(carol, dave, '1.00'));
      expectCompleted(await send(carol, dave, '1.00'));
    } finally {
      bank.clock.reset();
    }
  });
});

describe('several rules at once', () => {
  let bank: TestApp;
  let send: Send;
  beforeAll(async () => {
    bank = shared;
    send = await instance(bank, {
      RATE_LIMIT_TRANSFERS_PER_MINUTE: '100000',
      REVIEW_THRESHOLD: '100.00',
      RISK_NEW_PAYEE_AMOUNT: '100.00',
      RISK_NEW_ACCOUNT_AMOUNT: '100.00',
      RISK_VELOCITY_COUNT: '2',
    });
  });

  it('gives every reason, in the order amount_threshold, new_payee, new_account, velocity', async () => {
    const alice = await bank.customer('1000.00');
    const bob = await bank.customer();
    const carol = await bank.customer();
    expectCompleted(await send(alice, carol, '1.00'));
    expectCompleted(await send(alice, carol, '1.00'));
    const id = expectPending(await send(alice, bob, '100.00'), ['amount_threshold', 'new_payee', 'new_account', 'velocity']);
    expect((await bank.admin.get('/transactions/flagged?limit=100')).data.items.map((t: { id: string }) => t.id)).toContain(id);
    const audit = await auditEntries(bank, 'transfer.created', id);
    expect(audit[0].details).toMatchObject({
      status: 'pending_review',
      review_reasons: ['amount_threshold', 'new_payee', 'new_account', 'velocity'],
    });
  });
});
