import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { testApp, type Client, type Customer, type TestApp } from './helpers/app.js';

const ENV = {
  RATE_LIMIT_TRANSFERS_PER_MINUTE: '100000',
  RISK_VELOCITY_COUNT: '0',
  RISK_NEW_ACCOUNT_AMOUNT: '0',
  RISK_NEW_PAYEE_AMOUNT: '0',
  REVIEW_THRESHOLD: '250.00',
};

interface Tx {
  id: string;
  type: string;
  status: string;
  amount: string;
  from_account: string | null;
  to_account: string | null;
  created_at: string;
}

/** Newest first, by (created_at, id) descending. */
function expectNewestFirst(items: Tx[]): void {
  for (let i = 1; i < items.length; i++) {
    const [newer, older] = [items[i - 1]!, items[i]!];
    const ordered = newer.created_at > older.created_at || (newer.created_at === older.created_at && newer.id > older.id);
    expect(ordered, `${newer.id}@${newer.created_at} before ${older.id}@${older.created_at}`).toBe(true);
  }
}

describe('GET /transactions/', () => {
  let bank: TestApp;
  let alice: Customer;
  let bob: Customer;
  let carol: Customer;
  let auditor: Client;

  beforeAll(async () => {
    bank = await testApp(ENV);
    alice = await bank.customer('1000.00');
    bob = await bank.customer('500.00');
    carol = await bank.customer('1000.00');
    auditor = await bank.user('auditor');
    const send = async (from: Customer, to: Customer, amount: string) => {
      const response = await from.post('/transactions/transfer', {
        from_account: from.account.account_number,
        to_account: to.account.account_number,
        amount,
      });
      expect(response.statusCode).toBe(201);
    };
    await send(alice, bob, '10.00');
    await send(bob, alice, '5.00');
    await send(carol, bob, '7.00');
    const withdrawn = await bank.admin.post(`/accounts/${alice.account.id}/withdraw`, { amount: '20.00' });
    expect(withdrawn.statusCode).toBe(201);
    const deposited = await bank.admin.post(`/accounts/${carol.account.id}/deposit`, { amount: '3.00' });
    expect(deposited.statusCode).toBe(201);
  });

  async function listAll(client: Client, query = ''): Promise<Tx[]> {
    const items: Tx[] = [];
    let cursor: string | null = null;
    do {
      const response = await client.get(`/transactions/?limit=100${query}${cursor ? `&cursor=${cursor}` : ''}`);
      expect(response.statusCode).toBe(200);
      items.push(...response.data.items);
      cursor = response.data.next_cursor;
    } while (cursor);
    return items;
  }

  async function allIdsInDatabase(): Promise<string[]> {
    const rows = await bank.database.handle.db.selectFrom('transactions').select('id').execute();
    return rows.map((row) => row.id);
  }

  it('shows a customer only the transactions touching its own accounts', async () => {
    const items = await listAll(alice);
    // Initial deposit, alice -> bob, bob -> alice, the withdrawal.
    expect(items).toHaveLength(4);
    for (const item of items) expect([item.from_account, item.to_account]).toContain(alice.account.account_number);
    expect(items.map((item) => item.type).sort()).toEqual(['deposit', 'transfer', 'transfer', 'withdrawal']);
    expectNewestFirst(items);

    const carols = await listAll(carol);
    expect(carols).toHaveLength(3);
    for (const item of carols) expect([item.from_account, item.to_account]).toContain(carol.account.account_number);

    // A customer cannot read another customer's transaction either.
    const foreign = carols.find((item) => item.type === 'transfer')!;
    const read = await alice.get(`/transactions/${foreign.id}`);
    expect(read.statusCode).toBe(404);
    expect(read.data.code).toBe('not_found');
  });

  it('shows admin and auditor every transaction', async () => {
    const everything = (await allIdsInDatabase()).sort();
    for (const staff of [bank.admin, auditor]) {
      const items = await listAll(staff);
      expect(items.map((item) => item.id).sort()).toEqual(everything);
      expectNewestFirst(items);
    }
  });

  it('answers 401 without a token', async () => {
    const response = await bank.anonymous.get('/transactions/');
    expect(response.statusCode).toBe(401);
    expect(response.data.code).toBe('unauthorized');
  });

  it('filters by account_id; a foreign or unknown account is 404 not_found for a customer', async () => {
    const own = await listAll(alice, `&account_id=${alice.account.id}`);
    expect(own).toHaveLength(4);

    const asAdmin = await listAll(bank.admin, `&account_id=${bob.account.id}`);
    // Bob: initial deposit, alice -> bob, bob -> alice, carol -> bob.
    expect(asAdmin).toHaveLength(4);
    for (const item of asAdmin) expect([item.from_account, item.to_account]).toContain(bob.account.account_number);
    const asAuditor = await listAll(auditor, `&account_id=${bob.account.id}`);
    expect(asAuditor.map((item) => item.id)).toEqual(asAdmin.map((item) => item.id));

    for (const accountId of [bob.account.id, randomUUID()]) {
      const refused = await alice.get(`/transactions/?account_id=${accountId}`);
      expect(refused.statusCode).toBe(404);
      expect(refused.data.code).toBe('not_found');
    }
    const unknown = await bank.admin.get(`/transactions/?account_id=${randomUUID()}`);
    expect(unknown.statusCode).toBe(404);
    const malformed = await bank.admin.get('/transactions/?account_id=not-a-uuid');
    expect(malformed.statusCode).toBe(422);
    expect(malformed.data.code).toBe('validation_error');
  });

  it('filters by type', async () => {
    const all = await listAll(bank.admin);
    for (const type of ['deposit', 'transfer', 'withdrawal'] as const) {
      const items = await listAll(bank.admin, `&type=${type}`);
      expect(items.length).toBeGreaterThan(0);
      expect(items.every((item) => item.type === type)).toBe(true);
      expect(items.map((item) => item.id).sort()).toEqual(
        all
          .filter((item) => item.type === type)
          .map((item) => item.id)
          .sort(),
      );
    }
    expect(await listAll(bank.admin, '&type=transfer')).toHaveLength(3);
    expect(await listAll(bank.admin, '&type=withdrawal')).toHaveLength(1);
    expect(await listAll(alice, '&type=transfer')).toHaveLength(2);
    expect(await listAll(bank.admin, '&type=loan_disbursement')).toHaveLength(0);
    const bad = await bank.admin.get('/transactions/?type=gift');
    expect(bad.statusCode).toBe(422);
    expect(bad.data.code).toBe('validation_error');
  });

  it('filters by status', async () => {
    // Two transfers at the review threshold wait for review; an admin rejects one of them.
    const held: Tx[] = [];
    for (let i = 0; i < 2; i++) {
      const sent = await carol.post('/transactions/transfer', {
        from_account: carol.account.account_number,
        to_account: bob.account.account_number,
        amount: '250.00',
      });
      expect(sent.statusCode).toBe(201);
      expect(sent.data.status).toBe('pending_review');
      held.push(sent.data);
    }
    const rejected = await bank.admin.post(`/transactions/${held[0]!.id}/reject`, { reason: 'suspicious' });
    expect(rejected.statusCode).toBe(200);
    expect(rejected.data.status).toBe('rejected');
    const pending = held[1]!;

    expect((await listAll(bank.admin, '&status=pending_review')).map((item) => item.id)).toEqual([pending.id]);
    const onlyRejected = await listAll(bank.admin, '&status=rejected');
    expect(onlyRejected.map((item) => item.id)).toEqual([held[0]!.id]);
    expect(onlyRejected[0]).toMatchObject({ status: 'rejected', amount: '250.00', type: 'transfer' });
    expect((await listAll(carol, '&status=rejected')).map((item) => item.id)).toEqual([held[0]!.id]);
    expect(await listAll(alice, '&status=rejected')).toHaveLength(0);
    expect((await listAll(bank.admin, '&status=rejected&type=transfer')).map((item) => item.id)).toEqual([held[0]!.id]);
    expect(await listAll(bank.admin, '&status=rejected&type=deposit')).toHaveLength(0);

    const all = await listAll(bank.admin);
    const completed = await listAll(bank.admin, '&status=completed');
    expect(completed.every((item) => item.status === 'completed')).toBe(true);
    expect(completed.map((item) => item.id).sort()).toEqual(
      all
        .filter((item) => item.status === 'completed')
        .map((item) => item.id)
        .sort(),
    );
    expect(completed).toHaveLength(all.length - 2);
    for (const status of ['pending_review', 'rejected'] as const) {
      const items = await listAll(bank.admin, `&status=${status}`);
      expect(items.every((item) => item.status === status)).toBe(true);
      expect(items).toHaveLength(all.filter((item) => item.status === status).length);
    }
    const bad = await bank.admin.get('/transactions/?status=done');
    expect(bad.statusCode).toBe(422);
    expect(bad.data.code).toBe('validation_error');
  });

  it('filters by from/to dates, both inclusive, and validates them', async () => {
    const all = await listAll(bank.admin);
    const days = [...new Set(all.map((item) => item.created_at.slice(0, 10)))].sort();
    const first = days[0]!;
    const last = days.at(-1)!;
    const dayBefore = new Date(Date.parse(`${first}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
    const dayAfter = new Date(Date.parse(`${last}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);

    expect(await listAll(bank.admin, `&from=${first}&to=${last}`)).toHaveLength(all.length);
    expect(await listAll(bank.admin, `&from=${first}`)).toHaveLength(all.length);
    expect(await listAll(bank.admin, `&to=${last}`)).toHaveLength(all.length);
    expect(await listAll(bank.admin, `&from=${dayBefore}&to=${dayBefore}`)).toHaveLength(0);
    expect(await listAll(bank.admin, `&to=${dayBefore}`)).toHaveLength(0);
    expect(await listAll(bank.admin, `&from=${dayAfter}`)).toHaveLength(0);
    for (const day of days) {
      const onDay = await listAll(bank.admin, `&from=${day}&to=${day}`);
      expect(onDay.map((item) => item.id).sort()).toEqual(
        all
          .filter((item) => item.created_at.startsWith(day))
          .map((item) => item.id)
          .sort(),
      );
    }
    expect(await listAll(alice, `&from=${first}&to=${last}&type=transfer`)).toHaveLength(2);

    const reversed = await bank.admin.get(`/transactions/?from=${dayAfter}&to=${dayBefore}`);
    expect(reversed.statusCode).toBe(422);
    expect(reversed.data.code).toBe('validation_error');
    for (const malformed of ['2024-13-01', '2024-02-30', '2024-1-5', '20240105', 'yesterday', '2024-01-05T00:00:00Z']) {
      for (const field of ['from', 'to']) {
        const response = await bank.admin.get(`/transactions/?${field}=${encodeURIComponent(malformed)}`);
        expect(response.statusCode, `${field}=${malformed}`).toBe(422);
        expect(response.data.code).toBe('validation_error');
      }
    }
  });

  it('validates limit and cursor', async () => {
    for (const limit of ['0', '101', 'ten']) {
      const response = await bank.admin.get(`/transactions/?limit=${limit}`);
      expect(response.statusCode, `limit=${limit}`).toBe(422);
    }
    const badCursor = await bank.admin.get('/transactions/?cursor=garbage');
    expect(badCursor.statusCode).toBe(422);
    expect(badCursor.data.code).toBe('validation_error');
  });

  it('walks every row exactly once, newest first, with limit=3', async () => {
    const expected = await listAll(bank.admin);
    const walked: Tx[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const response = await bank.admin.get(`/transactions/?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      expect(response.statusCode).toBe(200);
      expect(response.data.items.length).toBeLessThanOrEqual(3);
      walked.push(...response.data.items);
      cursor = response.data.next_cursor;
      pages++;
    } while (cursor);

    expect(walked.map((item) => item.id)).toEqual(expected.map((item) => item.id));
    expect(new Set(walked.map((item) => item.id)).size).toBe(walked.length);
    expect(pages).toBe(Math.ceil(expected.length / 3));
    expectNewestFirst(walked);
  });

  it('a page walk while new transfers arrive returns every row that existed at the start exactly once', async () => {
    const atStart = await listAll(alice);
    expect(atStart.length).toBeGreaterThanOrEqual(4);

    const walked: Tx[] = [];
    let cursor: string | null = null;
    let inserted = 0;
    do {
      const response = await alice.get(`/transactions/?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      expect(response.statusCode).toBe(200);
      walked.push(...response.data.items);
      cursor = response.data.next_cursor;
      // New rows between page fetches: one each way, touching alice's account.
      for (const [from, to] of [
        [alice, bob],
        [bob, alice],
      ] as const) {
        const sent = await from.post('/transactions/transfer', {
          from_account: from.account.account_number,
          to_account: to.account.account_number,
          amount: '1.00',
        });
        expect(sent.statusCode).toBe(201);
        inserted++;
      }
    } while (cursor);

    const ids = walked.map((item) => item.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const row of atStart) expect(ids.filter((id) => id === row.id)).toHaveLength(1);
    expectNewestFirst(walked);
    expect(inserted).toBeGreaterThan(0);
    expect(await listAll(alice)).toHaveLength(atStart.length + inserted);
  });

  it('lists a customer with several accounts page by page: each transaction once, a transfer between its own accounts too', async () => {
    const dave = await bank.customer('100.00');
    const erin = await bank.customer('10.00');
    const savings = await bank.admin.post(`/accounts/?user_id=${dave.user.id}`, { type: 'savings', initial_deposit: '50.00' });
    expect(savings.statusCode).toBe(201);
    for (const [from, to, amount] of [
      [dave.account.account_number, savings.data.account_number, '1.00'],
      [savings.data.account_number, dave.account.account_number, '2.00'],
      [dave.account.account_number, erin.account.account_number, '3.00'],
    ]) {
      expect((await dave.post('/transactions/transfer', { from_account: from, to_account: to, amount })).statusCode).toBe(201);
    }
    expect(
      (
        await erin.post('/transactions/transfer', {
          from_account: erin.account.account_number,
          to_account: savings.data.account_number,
          amount: '4.00',
        })
      ).statusCode,
    ).toBe(201);

    const seen: Tx[] = [];
    let cursor: string | null = null;
    do {
      const response = await dave.get(`/transactions/?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(response.statusCode).toBe(200);
      expect(response.data.items.length).toBeLessThanOrEqual(2);
      seen.push(...response.data.items);
      cursor = response.data.next_cursor;
    } while (cursor);
    // Two opening deposits, the two transfers between its own accounts, one to erin, one from erin.
    expect(seen.map((item) => item.amount).sort()).toEqual(['1.00', '100.00', '2.00', '3.00', '4.00', '50.00']);
    expect(new Set(seen.map((item) => item.id)).size).toBe(seen.length);
    expectNewestFirst(seen);
  });
});
