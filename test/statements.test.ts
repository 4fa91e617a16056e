import type { AddressInfo } from 'node:net';
import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { testApp, type Client, type Customer, type TestApp } from './helpers/app.js';
import { insertBulkHistory, insertHistory } from './helpers/ledger-history.js';
import { pdfPageCount, pdfPageTexts } from './helpers/pdf-text.js';

// Held transfers from 100.00 up; no other risk rule and no rate limit in the way.
const ENV = {
  REVIEW_THRESHOLD: '100.00',
  RATE_LIMIT_TRANSFERS_PER_MINUTE: '100000',
  RISK_VELOCITY_COUNT: '0',
  RISK_NEW_ACCOUNT_AMOUNT: '0',
  RISK_NEW_PAYEE_AMOUNT: '0',
};

const CSV_HEADER = ['transaction_id', 'posted_at', 'type', 'description', 'counterparty', 'amount', 'balance_after'];

interface Entry {
  transaction_id: string;
  posted_at: string;
  type: string;
  description: string | null;
  amount: string;
  balance_after: string;
  counterparty: string | null;
}

const cents = (amount: string): bigint => BigInt(amount.replace('.', ''));
const today = (): string => new Date().toISOString().slice(0, 10);
const daysAgo = (days: number): string => new Date(Date.now() - days * 86_400_000).toISOString().slice(0, 10);

/** Each entry's balance is the one before it plus its amount, from the opening balance to the closing one. */
function expectRunningBalance(statement: { opening_balance: string; closing_balance: string; entries: Entry[] }): void {
  let balance = cents(statement.opening_balance);
  for (const entry of statement.entries) {
    balance += cents(entry.amount);
    expect(cents(entry.balance_after), `balance after ${entry.transaction_id}`).toBe(balance);
  }
  expect(cents(statement.closing_balance)).toBe(balance);
}

/** RFC 4180 records (quoted fields may hold commas, quotes and line breaks). */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (quoted) {
      if (char === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (char === '"') quoted = false;
      else field += char;
    } else if (char === '"') quoted = true;
    else if (char === ',') {
      record.push(field);
      field = '';
    } else if (char === '\r' && text[i + 1] === '\n') {
      record.push(field);
      records.push(record);
      field = '';
      record = [];
      i++;
    } else field += char;
  }
  expect(field, 'the last record ends with CRLF').toBe('');
  return records;
}

describe('account statements and balances', () => {
  let bank: TestApp;
  let alice: Customer;
  let bob: Customer;
  /** An account whose history lies in 2024. */
  let carol: Customer;
  let auditor: Client;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    bank = await testApp(ENV);
    auditor = await bank.user('auditor');
    carol = await bank.customer(undefined, { currency: 'EUR' });
    await insertHistory(bank.database.handle, carol.account, [
      { at: '2024-01-10T12:00:00.000Z', amount: 100_000n, description: 'Opening deposit' },
      { at: '2024-02-15T08:30:00.000Z', amount: -10_000n, description: 'Cash' },
      // Two transactions at one instant: posting order (id) decides which balance is the later one.
      { at: '2024-03-01T09:00:00.000Z', amount: 1_000n, description: 'First of two' },
      { at: '2024-03-01T09:00:00.000Z', amount: 500n, description: 'Second of two' },
    ]);

    alice = await bank.customer('500.00');
    bob = await bank.customer('300.00');
    const deposit = await bank.admin.post(`/accounts/${alice.account.id}/deposit`, { amount: '200.00', description: 'Salary' });
    const withdrawal = await bank.admin.post(`/accounts/${alice.account.id}/withdraw`, { amount: '50.00' });
    const out = await alice.post('/transactions/transfer', {
      from_account: alice.account.account_number,
      to_account: bob.account.account_number,
      amount: '30.00',
      description: '=HYPERLINK("http://evil.example","click")',
    });
    const incoming = await bob.post('/transactions/transfer', {
      from_account: bob.account.account_number,
      to_account: alice.account.account_number,
      amount: '20.00',
      description: 'a,b"c',
    });
    const reversal = await bank.admin.post(`/transactions/${withdrawal.data.id}/reverse`, { reason: 'Teller error' });
    const held = await alice.post('/transactions/transfer', {
      from_account: alice.account.account_number,
      to_account: bob.account.account_number,
      amount: '150.00',
      description: 'Car',
    });
    for (const response of [deposit, withdrawal, out, incoming, reversal, held]) expect(response.statusCode, response.body).toBe(201);
    expect(held.data.status).toBe('pending_review');
    Object.assign(ids, {
      deposit: deposit.data.id,
      withdrawal: withdrawal.data.id,
      out: out.data.id,
      incoming: incoming.data.id,
      reversal: reversal.data.id,
      held: held.data.id,
    });
  });

  describe('JSON', () => {
    it('lists this month’s entries with opening, closing, totals and a running balance, by default', async () => {
      const response = await alice.get(`/accounts/${alice.account.id}/statement`);
      expect(response.statusCode, response.body).toBe(200);
      const statement = response.data;
      expect(statement.from).toBe(`${today().slice(0, 7)}-01`);
      expect(statement.to).toBe(today());
      expect(statement.account).toMatchObject({ id: alice.account.id, account_number: alice.account.account_number, currency: 'USD' });
      expect(statement).toMatchObject({
        opening_balance: '0.00',
        closing_balance: '690.00',
        total_credits: '770.00',
        total_debits: '80.00',
      });
      expect(statement.entries.map((entry: Entry) => [entry.type, entry.amount, entry.balance_after, entry.counterparty])).toEqual([
        ['deposit', '500.00', '500.00', null],
        ['deposit', '200.00', '700.00', null],
        ['withdrawal', '-50.00', '650.00', null],
        ['transfer', '-30.00', '620.00', bob.account.account_number],
        ['transfer', '20.00', '640.00', bob.account.account_number],
        ['reversal', '50.00', '690.00', null],
      ]);
      expect(statement.entries.map((entry: Entry) => entry.transaction_id).slice(1)).toEqual([
        ids.deposit,
        ids.withdrawal,
        ids.out,
        ids.incoming,
        ids.reversal,
      ]);
      expect(statement.entries[1]).toMatchObject({ description: 'Salary' });
      expect(statement.entries[5]).toMatchObject({ description: 'Teller error' });
      expectRunningBalance(statement);
    });

    it('shows a held transfer apart from the entries: no money has moved, so no balance includes it', async () => {
      const statement = (await alice.get(`/accounts/${alice.account.id}/statement?from=${today()}&to=${today()}`)).data;
      expect(statement.entries.map((entry: Entry) => entry.transaction_id)).not.toContain(ids.held);
      expect(statement.held).toEqual([
        {
          transaction_id: ids.held,
          created_at: expect.any(String),
          amount: '-150.00',
          counterparty: bob.account.account_number,
          review_reasons: ['amount_threshold'],
        },
      ]);
      expect(statement.closing_balance).toBe('690.00');
      // The receiver's statement does not show somebody else's hold.
      expect((await bob.get(`/accounts/${bob.account.id}/statement`)).data.held).toEqual([]);
    });

    it('takes the opening balance from the journal before `from`, not from today’s balance', async () => {
      const february = (await carol.get(`/accounts/${carol.account.id}/statement?from=2024-02-01&to=2024-02-29`)).data;
      expect(february).toMatchObject({
        opening_balance: '1000.00',
        closing_balance: '900.00',
        total_credits: '0.00',
        total_debits: '100.00',
      });
      expect(february.entries).toEqual([
        expect.objectContaining({
          posted_at: '2024-02-15T08:30:00.000Z',
          type: 'withdrawal',
          amount: '-100.00',
          balance_after: '900.00',
          description: 'Cash',
        }),
      ]);

      const quarter = (await carol.get(`/accounts/${carol.account.id}/statement?from=2024-01-01&to=2024-03-31`)).data;
      expect(quarter).toMatchObject({
        opening_balance: '0.00',
        closing_balance: '915.00',
        total_credits: '1015.00',
        total_debits: '100.00',
      });
      expect(quarter.entries.map((entry: Entry) => entry.description)).toEqual([
        'Opening deposit',
        'Cash',
        'First of two',
        'Second of two',
      ]);
      expectRunningBalance(quarter);

      // `to` is inclusive to the last millisecond of its day; a period after all entries opens and closes at the last balance.
      expect((await carol.get(`/accounts/${carol.account.id}/statement?from=2024-01-01&to=2024-01-10`)).data.entries).toHaveLength(1);
      const later = (await carol.get(`/accounts/${carol.account.id}/statement?from=2024-06-01&to=2024-06-30`)).data;
      expect(later).toMatchObject({ opening_balance: '915.00', closing_balance: '915.00', entries: [], held: [] });
    });

    it('defaults `from` to the first day of the month of a given `to`', async () => {
      const response = await carol.get(`/accounts/${carol.account.id}/statement?to=2024-02-20`);
      expect(response.data).toMatchObject({ from: '2024-02-01', to: '2024-02-20', opening_balance: '1000.00', closing_balance: '900.00' });
    });
  });

  describe('who may read it, and what it accepts', () => {
    it('answers the owner, admin and auditor, and 404 to another customer as for a missing account', async () => {
      for (const client of [alice, bank.admin, auditor]) {
        expect((await client.get(`/accounts/${alice.account.id}/statement`)).statusCode).toBe(200);
        expect((await client.get(`/accounts/${alice.account.id}/balance`)).statusCode).toBe(200);
      }
      for (const format of ['json', 'csv', 'pdf']) {
        const stranger = await bob.get(`/accounts/${alice.account.id}/statement?format=${format}`);
        expect(stranger.statusCode).toBe(404);
        expect(stranger.headers['content-type']).toMatch(/application\/problem\+json/);
        expect(stranger.data.code).toBe('not_found');
      }
      expect((await bob.get(`/accounts/${alice.account.id}/balance`)).data.code).toBe('not_found');
      const missing = await bank.admin.get('/accounts/00000000-0000-4000-8000-000000000000/statement?format=csv');
      expect([missing.statusCode, missing.data.code]).toEqual([404, 'not_found']);
      expect((await bank.anonymous.get(`/accounts/${alice.account.id}/statement`)).statusCode).toBe(401);
    });

    it.each([
      ['a malformed date', 'from=2024-1-01&to=2024-01-31', 'from'],
      ['a day that does not exist', 'from=2024-02-30&to=2024-03-01', 'from'],
      ['a malformed `to`', 'to=yesterday', 'to'],
      ['`from` after `to`', 'from=2024-03-02&to=2024-03-01', 'from'],
      ['a period over STATEMENT_MAX_DAYS (366)', 'from=2023-01-01&to=2024-01-02', 'to'],
      ['an unknown format', 'format=xlsx', 'format'],
      ['an unknown parameter', 'since=2024-01-01', 'since'],
      ['a date before 1900 (PostgreSQL has no year 0)', 'from=0000-01-01&to=0000-01-31', 'from'],
    ])('refuses %s with 422 validation_error', async (_case, query, field) => {
      const response = await alice.get(`/accounts/${alice.account.id}/statement?${query}`);
      expect(response.statusCode, response.body).toBe(422);
      expect(response.data.code).toBe('validation_error');
      expect(response.data.errors.map((error: { field: string }) => error.field)).toContain(field);
    });

    it('accepts a period of exactly STATEMENT_MAX_DAYS days (a leap year)', async () => {
      expect((await alice.get(`/accounts/${alice.account.id}/statement?from=2024-01-01&to=2024-12-31`)).statusCode).toBe(200);
    });
  });

  describe('CSV', () => {
    it('is a header row and one RFC 4180 row per entry, with formulas in descriptions neutralised and amounts left as numbers', async () => {
      const response = await alice.get(`/accounts/${alice.account.id}/statement?format=csv&from=${today()}&to=${today()}`);
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toBe('text/csv; charset=utf-8');
      expect(response.headers['content-disposition']).toBe(
        `attachment; filename="statement-${alice.account.account_number}-${today()}-${today()}.csv"`,
      );
      expect(response.headers['cache-control']).toBe('no-store');
      expect(response.body).toContain('"\'=HYPERLINK(""http://evil.example"",""click"")"');
      expect(response.body).toContain(',"a,b""c",');

      const [header, ...rows] = parseCsv(response.body);
      expect(header).toEqual(CSV_HEADER);
      const json = (await alice.get(`/accounts/${alice.account.id}/statement?from=${today()}&to=${today()}`)).data;
      expect(rows).toEqual(
        json.entries.map((entry: Entry) => [
          entry.transaction_id,
          entry.posted_at,
          entry.type,
          entry.description === '=HYPERLINK("http://evil.example","click")' ? `'${entry.description}` : (entry.description ?? ''),
          entry.counterparty ?? '',
          entry.amount,
          entry.balance_after,
        ]),
      );
      expect(rows.find((row) => row[0] === ids.out)?.[5]).toBe('-30.00');
    });

    it('neutralises every formula trigger (= + - @ TAB CR) and keeps line breaks inside quotes', async () => {
      const dave = await bank.customer(undefined, { currency: 'GBP' });
      const descriptions = ['+1+1', '-2+3', '@SUM(A1)', '\tcmd', '\rcmd', 'two\nlines', 'plain'];
      await insertHistory(
        bank.database.handle,
        dave.account,
        descriptions.map((description, i) => ({ at: `2024-05-0${i + 1}T10:00:00.000Z`, amount: 100n, description })),
      );
      const rows = parseCsv((await dave.get(`/accounts/${dave.account.id}/statement?format=csv&from=2024-05-01&to=2024-05-31`)).body).slice(
        1,
      );
      expect(rows.map((row) => row[3])).toEqual(["'+1+1", "'-2+3", "'@SUM(A1)", "'\tcmd", "'\rcmd", 'two\nlines', 'plain']);
    });
  });

  describe('PDF', () => {
    it('is a PDF of several pages for 150 entries, each page numbered "Page X of Y"', async () => {
      const erin = await bank.customer(undefined, { currency: 'CHF' });
      const start = Date.parse(`${daysAgo(8)}T00:00:00.000Z`);
      await insertHistory(
        bank.database.handle,
        erin.account,
        Array.from({ length: 150 }, (_, i) => ({
          at: new Date(start + i * 3_600_000).toISOString(),
          amount: i % 4 === 3 ? -2_500n : 10_000n,
          description:
            i === 7
              ? 'A description far too long for its column, which the statement cuts with an ellipsis rather than letting it run into the counterparty'
              : `Payment ${i + 1}`,
        })),
      );
      const response = await erin.get(`/accounts/${erin.account.id}/statement?format=pdf&from=${daysAgo(8)}&to=${today()}`);
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toBe('application/pdf');
      expect(response.headers['content-disposition']).toMatch(/^attachment; filename="statement-\d{10}-[\d-]+\.pdf"$/);
      const pdf = response.rawPayload;
      expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
      expect(pdf.subarray(-6).toString('latin1')).toMatch(/%%EOF\s*$/);

      const pageCount = pdfPageCount(pdf);
      expect(pageCount).toBeGreaterThan(1);
      const pages = pdfPageTexts(pdf);
      expect(pages).toHaveLength(pageCount);
      pages.forEach((text, i) => expect(text).toContain(`Page ${i + 1} of ${pageCount}`));
      // The table header row is repeated at the top of every page.
      for (const text of pages) expect(text).toMatch(/Date\s+Description\s+Counterparty\s+Amount\s+Balance/);
      expect(pages[0]).toContain('Modular Bank');
      expect(pages[0]).toContain(erin.user.name);
      expect(pages[0]).toContain(erin.account.account_number);
      expect(pages.join('\n')).toContain('Payment 150');
    });

    it('lists held transfers in a section of their own', async () => {
      const pages = pdfPageTexts(
        (await alice.get(`/accounts/${alice.account.id}/statement?format=pdf&from=${today()}&to=${today()}`)).rawPayload,
      );
      expect(pages).toHaveLength(1);
      expect(pages[0]).toContain('Held for review');
      expect(pages[0]).toContain('amount threshold');
      expect(pages[0]).toContain('-150.00');
    });
  });

  describe('GET /accounts/{id}/balance?at=', () => {
    it('is the balance after the last entry posted at or before the instant', async () => {
      const balanceAt = async (at: string) => {
        const response = await carol.get(`/accounts/${carol.account.id}/balance?at=${encodeURIComponent(at)}`);
        expect(response.statusCode, response.body).toBe(200);
        return response.data;
      };
      expect(await balanceAt('2024-01-10T11:59:59.999Z')).toEqual({
        account_id: carol.account.id,
        at: '2024-01-10T11:59:59.999Z',
        balance: '0.00',
      });
      expect((await balanceAt('2024-01-10T12:00:00.000Z')).balance).toBe('1000.00');
      expect((await balanceAt('2024-02-01T00:00:00+01:00')).at).toBe('2024-01-31T23:00:00.000Z');
      expect((await balanceAt('2024-02-15T08:30:00.000Z')).balance).toBe('900.00');
      // Two transactions at one instant: the balance after the later posted one.
      expect((await balanceAt('2024-03-01T09:00:00.000Z')).balance).toBe('915.00');
      expect((await balanceAt('2025-01-01T00:00:00Z')).balance).toBe('915.00');
    });

    it('defaults to now and agrees with the account’s balance', async () => {
      const response = await alice.get(`/accounts/${alice.account.id}/balance`);
      expect(response.data.balance).toBe('690.00');
      expect((await alice.get(`/accounts/${alice.account.id}`)).data.balance).toBe('690.00');
      expect(Math.abs(Date.parse(response.data.at) - Date.now())).toBeLessThan(60_000);
    });

    it('follows today’s postings instant by instant', async () => {
      const created = async (id: string) => (await bank.admin.get(`/transactions/${id}`)).data.created_at as string;
      const afterDeposit = await alice.get(`/accounts/${alice.account.id}/balance?at=${encodeURIComponent(await created(ids.deposit!))}`);
      expect(afterDeposit.data.balance).toBe('700.00');
      const afterTransferOut = await alice.get(`/accounts/${alice.account.id}/balance?at=${encodeURIComponent(await created(ids.out!))}`);
      expect(afterTransferOut.data.balance).toBe('620.00');
    });

    it.each([
      ['a future instant', () => new Date(Date.now() + 3_600_000).toISOString()],
      ['an instant without a time zone', () => '2024-01-01T00:00:00'],
      ['a date alone', () => '2024-01-01'],
      ['an instant before 1900', () => '0000-06-01T00:00:00Z'],
    ])('refuses %s with 422 validation_error', async (_case, at) => {
      const response = await carol.get(`/accounts/${carol.account.id}/balance?at=${encodeURIComponent(at())}`);
      expect(response.statusCode).toBe(422);
      expect(response.data.code).toBe('validation_error');
    });
  });

  it('ends the snapshot transaction when a client abandons a download', async () => {
    const frank = await bank.customer(undefined, { currency: 'JPY' });
    // About 5 MB of CSV: more than the sockets between server and client buffer, so the download is cut in the middle.
    await insertBulkHistory(bank.database.handle, frank.account, { count: 50_000, start: '2024-06-01T00:00:00Z', stepSeconds: 30 });
    await bank.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = bank.app.server.address() as AddressInfo;
    const responseFinished = new Promise<boolean>((resolve) =>
      bank.app.server.once('request', (_request, response) => response.once('close', () => resolve(response.writableFinished))),
    );
    const abort = new AbortController();
    const response = await fetch(
      `http://127.0.0.1:${port}/accounts/${frank.account.id}/statement?format=csv&from=2024-06-01&to=2024-06-30`,
      {
        headers: { authorization: `Bearer ${frank.token}` },
        signal: abort.signal,
      },
    );
    const reader = response.body!.getReader();
    expect((await reader.read()).done).toBe(false);
    abort.abort();
    await reader.read().catch(() => {});
    expect(await responseFinished, 'the server saw the download end before its last byte').toBe(false);

    // A transaction left open would hold PGlite's only session (every request below would wait for
    // ever) or a PostgreSQL connection idle in transaction.
    const after = await Promise.all(
      Array.from({ length: 5 }, () => frank.get(`/accounts/${frank.account.id}/statement?from=2024-06-01&to=2024-06-01`)),
    );
    for (const answer of after) expect(answer.statusCode).toBe(200);
    if (bank.database.handle.engine === 'postgres') {
      const stuck = await sql<{ n: bigint }>`
        SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'`.execute(
        bank.database.handle.db,
      );
      expect(stuck.rows[0]!.n).toBe(0n);
    }
    expect((await bank.admin.get('/reports/reconciliation')).data).toMatchObject({ ok: true });
  });
});
