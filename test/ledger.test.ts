import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { withTransaction, sqlState } from '../src/db/transaction.js';
import { DomainError } from '../src/errors.js';
import { internalAccount, movement, postTransaction, UnbalancedPostingError, type Entry, type Posting } from '../src/ledger/post.js';
import { testApp, type Customer, type TestApp } from './helpers/app.js';

/** What the ledger holds, to show that a refused posting changed nothing. */
interface Snapshot {
  transactions: number;
  entries: number;
  balances: Map<string, bigint>;
}

describe('the ledger', () => {
  let bank: TestApp;
  let alice: Customer;
  let bob: Customer;

  const handle = () => bank.database.handle;
  const db = () => bank.database.handle.db;

  const snapshot = async (): Promise<Snapshot> => {
    const transactions = await db().selectFrom('transactions').select('id').execute();
    const entries = await db().selectFrom('journal_entries').select('id').execute();
    const accounts = await db().selectFrom('accounts').select(['id', 'balance']).execute();
    return { transactions: transactions.length, entries: entries.length, balances: new Map(accounts.map((a) => [a.id, a.balance])) };
  };

  const posting = (entries: Entry[], overrides: Partial<Posting> = {}): Posting => ({
    type: 'transfer',
    amount: 100n,
    currency: 'USD',
    fromAccountId: alice.account.id,
    toAccountId: bob.account.id,
    description: 'ledger test',
    createdBy: alice.user.id,
    entries,
    ...overrides,
  });

  /** Runs fn in a transaction and answers what it threw (the test fails if it threw nothing). */
  const failure = async (fn: Parameters<typeof withTransaction>[1]): Promise<unknown> => {
    try {
      await withTransaction(handle(), fn);
    } catch (error) {
      return error;
    }
    throw new Error('expected the transaction to fail');
  };

  beforeAll(async () => {
    bank = await testApp();
    alice = await bank.customer('100.00');
    bob = await bank.customer('100.00');
  });

  describe('postTransaction', () => {
    it('posts a balanced movement: balances, the transaction row and journal entries with running balances', async () => {
      const row = await withTransaction(handle(), (tx) =>
        postTransaction(tx, posting(movement(alice.account.id, bob.account.id, 2500n)), new Date()),
      );
      expect(row).toMatchObject({
        type: 'transfer',
        status: 'completed',
        amount: 100n,
        currency: 'USD',
        from_account_id: alice.account.id,
      });

      const entries = await db().selectFrom('journal_entries').selectAll().where('transaction_id', '=', row.id).orderBy('amount').execute();
      expect(entries.map((e) => [e.account_id, e.amount, e.balance_after])).toEqual([
        [alice.account.id, -2500n, 7500n],
        [bob.account.id, 2500n, 12500n],
      ]);
      const balances = (await snapshot()).balances;
      expect(balances.get(alice.account.id)).toBe(7500n);
      expect(balances.get(bob.account.id)).toBe(12500n);
    });

    it('posts more than two entries when they sum to zero', async () => {
      const carol = await bank.customer();
      const entries = [
        { accountId: alice.account.id, amount: -300n },
        { accountId: bob.account.id, amount: 100n },
        { accountId: carol.account.id, amount: 200n },
      ];
      const row = await withTransaction(handle(), (tx) =>
        postTransaction(tx, posting(entries, { toAccountId: carol.account.id, amount: 300n }), new Date()),
      );
      const journal = await db().selectFrom('journal_entries').select(['amount']).where('transaction_id', '=', row.id).execute();
      expect(journal.reduce((sum, e) => sum + e.amount, 0n)).toBe(0n);
      expect(journal).toHaveLength(3);
    });

    it.each<[string, (a: string, b: string) => Entry[]]>([
      [
        'unbalanced',
        (a, b) => [
          { accountId: a, amount: -100n },
          { accountId: b, amount: 99n },
        ],
      ],
      ['single-entry', (a) => [{ accountId: a, amount: 100n }]],
      ['empty', () => []],
      [
        'zero-amount',
        (a, b) => [
          { accountId: a, amount: 0n },
          { accountId: b, amount: 0n },
        ],
      ],
      [
        'money-from-nowhere',
        (a, b) => [
          { accountId: a, amount: 100n },
          { accountId: b, amount: 100n },
        ],
      ],
    ])('refuses a %s posting with UnbalancedPostingError before touching any row', async (_name, entriesOf) => {
      const before = await snapshot();
      const error = await failure((tx) => postTransaction(tx, posting(entriesOf(alice.account.id, bob.account.id)), new Date()));
      expect(error).toBeInstanceOf(UnbalancedPostingError);
      expect(await snapshot()).toEqual(before);
    });

    it('refuses an unbalanced posting even for accounts that do not exist: the check comes before any lookup', async () => {
      const error = await failure((tx) => postTransaction(tx, posting([{ accountId: randomUUID(), amount: 5n }]), new Date()));
      expect(error).toBeInstanceOf(UnbalancedPostingError);
    });

    it('refuses a posting that would overdraw a customer account, and changes nothing', async () => {
      const before = await snapshot();
      const tooMuch = before.balances.get(alice.account.id)! + 1n;
      const error = await failure((tx) => postTransaction(tx, posting(movement(alice.account.id, bob.account.id, tooMuch)), new Date()));
      expect(error).toBeInstanceOf(DomainError);
      expect((error as DomainError).code).toBe('insufficient_funds');
      expect(await snapshot()).toEqual(before);
    });

    it('refuses a posting across currencies, and an unknown account', async () => {
      const euros = await bank.customer('10.00', { currency: 'EUR' });
      const before = await snapshot();
      const mixed = await failure((tx) => postTransaction(tx, posting(movement(euros.account.id, bob.account.id, 100n)), new Date()));
      expect((mixed as DomainError).code).toBe('currency_mismatch');
      const unknown = await failure((tx) => postTransaction(tx, posting(movement(alice.account.id, randomUUID(), 100n)), new Date()));
      expect((unknown as DomainError).code).toBe('account_not_found');
      expect(await snapshot()).toEqual(before);
    });

    it('lets the bank’s internal cash account go negative', async () => {
      const cashBefore = await withTransaction(handle(), (tx) => internalAccount(tx, 'cash', 'USD'));
      const before = (await snapshot()).balances.get(cashBefore)!;
      await withTransaction(handle(), (tx) =>
        postTransaction(
          tx,
          posting(movement(cashBefore, bob.account.id, 1000n), { type: 'deposit', fromAccountId: cashBefore }),
          new Date(),
        ),
      );
      expect((await snapshot()).balances.get(cashBefore)).toBe(before - 1000n);
      expect(before - 1000n).toBeLessThan(0n);
    });
  });

  describe('the database’s own guards', () => {
    const someEntry = () =>
      db().selectFrom('journal_entries').selectAll().where('account_id', '=', alice.account.id).executeTakeFirstOrThrow();
    const someTransaction = () =>
      db().selectFrom('transactions').selectAll().where('to_account_id', '=', alice.account.id).executeTakeFirstOrThrow();

    it('refuses UPDATE, DELETE and TRUNCATE of journal entries', async () => {
      const entry = await someEntry();
      const update = await failure((tx) =>
        tx
          .updateTable('journal_entries')
          .set({ amount: entry.amount + 1n })
          .where('id', '=', entry.id)
          .execute(),
      );
      expect(sqlState(update)).toBe('42501');
      const del = await failure((tx) => tx.deleteFrom('journal_entries').where('id', '=', entry.id).execute());
      expect(sqlState(del)).toBe('42501');
      const truncate = await failure((tx) => sql`TRUNCATE journal_entries`.execute(tx));
      expect(sqlState(truncate)).toBe('42501');
      expect(await someEntry()).toEqual(entry);
    });

    it('refuses changing what a transaction moved, or deleting it, but lets its review state change', async () => {
      const transaction = await someTransaction();
      const amount = await failure((tx) =>
        tx
          .updateTable('transactions')
          .set({ amount: transaction.amount * 2n })
          .where('id', '=', transaction.id)
          .execute(),
      );
      expect(sqlState(amount)).toBe('42501');
      const account = await failure((tx) =>
        tx.updateTable('transactions').set({ to_account_id: bob.account.id }).where('id', '=', transaction.id).execute(),
      );
      expect(sqlState(account)).toBe('42501');
      const del = await failure((tx) => tx.deleteFrom('transactions').where('id', '=', transaction.id).execute());
      expect(sqlState(del)).toBe('42501');
      expect(await someTransaction()).toEqual(transaction);

      await withTransaction(handle(), (tx) =>
        tx.updateTable('transactions').set({ review_note: 'looked at' }).where('id', '=', transaction.id).execute(),
      );
      expect((await someTransaction()).review_note).toBe('looked at');
    });

    it('refuses, at commit, journal entries inserted directly that do not balance', async () => {
      const before = await snapshot();
      let insertedWithoutError = false;
      const error = await failure(async (tx) => {
        const transaction = await tx
          .insertInto('transactions')
          .values({
            type: 'deposit',
            status: 'completed',
            amount: 500n,
            currency: 'USD',
            from_account_id: bob.account.id,
            to_account_id: alice.account.id,
            description: 'bypassing the service',
            created_by: null,
            reviewed_by: null,
            reviewed_at: null,
            review_note: null,
            reverses_id: null,
          })
          .returning('id')
          .executeTakeFirstOrThrow();
        await tx
          .insertInto('journal_entries')
          .values({ transaction_id: transaction.id, account_id: alice.account.id, amount: 500n, balance_after: 0n })
          .execute();
        // The trigger is deferred: the statement itself succeeds, so a posting may write its entries one by one.
        insertedWithoutError = true;
      });
      expect(insertedWithoutError).toBe(true);
      expect(sqlState(error)).toBe('23514');
      expect(await snapshot()).toEqual(before);
    });

    it('accepts directly inserted entries that balance (the deferred check is not a blanket refusal)', async () => {
      const before = await snapshot();
      await withTransaction(handle(), async (tx) => {
        const transaction = await tx
          .insertInto('transactions')
          .values({
            type: 'transfer',
            status: 'completed',
            amount: 1n,
            currency: 'USD',
            from_account_id: bob.account.id,
            to_account_id: alice.account.id,
            description: 'two entries, one at a time',
            created_by: null,
            reviewed_by: null,
            reviewed_at: null,
            review_note: null,
            reverses_id: null,
          })
          .returning('id')
          .executeTakeFirstOrThrow();
        // Balances move with the entries, so this file's ledger stays reconciled.
        for (const [accountId, amount] of [
          [alice.account.id, 1n],
          [bob.account.id, -1n],
        ] as const) {
          const { balance } = await tx
            .updateTable('accounts')
            .set((eb) => ({ balance: eb('balance', '+', amount) }))
            .where('id', '=', accountId)
            .returning('balance')
            .executeTakeFirstOrThrow();
          await tx
            .insertInto('journal_entries')
            .values({ transaction_id: transaction.id, account_id: accountId, amount, balance_after: balance })
            .execute();
        }
      });
      expect((await snapshot()).entries).toBe(before.entries + 2);
    });

    it('refuses a customer balance below zero, or an available balance below zero, set by a direct UPDATE (CHECK, 23514)', async () => {
      const negative = await failure((tx) => tx.updateTable('accounts').set({ balance: -1n }).where('id', '=', alice.account.id).execute());
      expect(sqlState(negative)).toBe('23514');
      const held = await failure((tx) =>
        tx
          .updateTable('accounts')
          .set((eb) => ({ held: eb('balance', '+', 1n) }))
          .where('id', '=', alice.account.id)
          .execute(),
      );
      expect(sqlState(held)).toBe('23514');
      const direct = await db()
        .updateTable('accounts')
        .set({ balance: -1n })
        .where('id', '=', bob.account.id)
        .execute()
        .catch((e: unknown) => e);
      expect(sqlState(direct)).toBe('23514');
    });

    describe('ledger_post, the one writer of balances, held amounts and journal entries (src/ledger/sql/ledger_post.sql), on its own', () => {
      /** Postings as ledger_post takes them: per posting its transaction and held change, per entry its posting. */
      interface Raw {
        transactions: (string | null)[];
        held?: { account: string | null; delta: bigint }[];
        entries: { posting: number; account: string; amount: bigint }[];
      }
      const post = (raw: Raw) =>
        failure((tx) =>
          sql`SELECT ledger_post(
            ${raw.transactions}::uuid[],
            ${(raw.held ?? raw.transactions.map(() => ({ account: null, delta: 0n }))).map((h) => h.account)}::uuid[],
            ${(raw.held ?? raw.transactions.map(() => ({ account: null, delta: 0n }))).map((h) => String(h.delta))}::bigint[],
            ${raw.entries.map((e) => e.posting)}::integer[],
            ${raw.entries.map((e) => e.account)}::uuid[],
            ${raw.entries.map((e) => String(e.amount))}::bigint[],
            ${new Date()}::timestamptz)`.execute(tx),
        );
      const apply = (transactionId: string | null, accounts: string[], amounts: bigint[]) =>
        post({ transactions: [transactionId], entries: accounts.map((account, i) => ({ posting: 1, account, amount: amounts[i]! })) });
      const heldOf = async (accountId: string) =>
        (await db().selectFrom('accounts').select('held').where('id', '=', accountId).executeTakeFirstOrThrow()).held;

      it('refuses entries that do not balance, and entries naming an account that does not exist, changing nothing', async () => {
        const before = await snapshot();
        const transaction = await someTransaction();
        expect(sqlState(await apply(transaction.id, [alice.account.id, bob.account.id], [-5n, 4n]))).toBe('22023');
        expect(sqlState(await apply(transaction.id, [alice.account.id], [5n]))).toBe('22023');
        expect(sqlState(await apply(transaction.id, [alice.account.id, bob.account.id], [0n, 0n]))).toBe('22023');
        expect(sqlState(await apply(null, [], []))).toBe('22023');
        expect(sqlState(await post({ transactions: [], entries: [] }))).toBe('22023');
        const missing = await apply(transaction.id, [alice.account.id, randomUUID()], [-5n, 5n]);
        expect(sqlState(missing)).toBe('23503');
        expect((missing as Error).message).toMatch(/names account [0-9a-f-]{36}, which does not exist/);
        expect(await snapshot()).toEqual(before);
      });

      it('refuses entries not grouped by posting in order, and a posting of entries that balance only with another’s', async () => {
        const before = await snapshot();
        const { id } = await someTransaction();
        const entries = [
          { posting: 2, account: alice.account.id, amount: -5n },
          { posting: 2, account: bob.account.id, amount: 5n },
          { posting: 1, account: alice.account.id, amount: -5n },
          { posting: 1, account: bob.account.id, amount: 5n },
        ];
        expect(sqlState(await post({ transactions: [id, id], entries }))).toBe('22023');
        expect(sqlState(await post({ transactions: [id, id], entries: entries.map((e, i) => ({ ...e, posting: i === 0 ? 1 : 2 })) }))).toBe(
          '22023',
        );
        expect(sqlState(await post({ transactions: [id], entries: entries.map((e) => ({ ...e, posting: 3 })) }))).toBe('22023');
        expect(await snapshot()).toEqual(before);
      });

      it('holds and releases with a posting of no entries, which must change a held amount', async () => {
        const carol = await bank.customer('10.00');
        const transaction = await someTransaction();
        expect(sqlState(await post({ transactions: [transaction.id], entries: [] }))).toBe('22023');
        expect(
          sqlState(await post({ transactions: [transaction.id], held: [{ account: carol.account.id, delta: 0n }], entries: [] })),
        ).toBe('22023');
        await withTransaction(handle(), (tx) =>
          sql`SELECT ledger_post(ARRAY[${transaction.id}]::uuid[], ARRAY[${carol.account.id}]::uuid[], '{400}', '{}', '{}', '{}', ${new Date()}::timestamptz)`.execute(
            tx,
          ),
        );
        expect(await heldOf(carol.account.id)).toBe(400n);
        // More than is available, then released again: refused though the end state would be fine.
        const overHeld = await post({
          transactions: [transaction.id, transaction.id],
          held: [
            { account: carol.account.id, delta: 700n },
            { account: carol.account.id, delta: -700n },
          ],
          entries: [],
        });
        expect(sqlState(overHeld)).toBe('23514');
        expect((overHeld as { constraint?: string }).constraint).toBe('accounts_customer_not_overdrawn');
        // Released below zero, then held again: refused though the end state would be fine.
        const underHeld = await post({
          transactions: [transaction.id, transaction.id],
          held: [
            { account: carol.account.id, delta: -500n },
            { account: carol.account.id, delta: 500n },
          ],
          entries: [],
        });
        expect(sqlState(underHeld)).toBe('23514');
        expect((underHeld as { constraint?: string }).constraint).toBe('accounts_held_check');
        expect(await heldOf(carol.account.id)).toBe(400n);
      });

      it('refuses postings in which one overdraws a customer account, though a later one would cover it (CHECK, 23514), changing nothing', async () => {
        const carol = await bank.customer('10.00');
        const dave = await bank.customer('10.00');
        const { id } = await someTransaction();
        const before = await snapshot();
        const overdrawn = await post({
          transactions: [id, id],
          entries: [
            { posting: 1, account: carol.account.id, amount: -1001n },
            { posting: 1, account: dave.account.id, amount: 1001n },
            { posting: 2, account: dave.account.id, amount: -1n },
            { posting: 2, account: carol.account.id, amount: 1n },
          ],
        });
        expect(sqlState(overdrawn)).toBe('23514');
        expect((overdrawn as { constraint?: string }).constraint).toBe('accounts_customer_not_overdrawn');
        expect(await snapshot()).toEqual(before);
      });

      it('records, for two entries of one account, the balance each left behind, in their order', async () => {
        const row = await withTransaction(handle(), (tx) =>
          postTransaction(
            tx,
            posting([
              { accountId: alice.account.id, amount: -30n },
              { accountId: bob.account.id, amount: 50n },
              { accountId: alice.account.id, amount: -20n },
            ]),
            new Date(),
          ),
        );
        const balance = (await snapshot()).balances.get(alice.account.id)!;
        const entries = await db().selectFrom('journal_entries').selectAll().where('transaction_id', '=', row.id).orderBy('id').execute();
        expect(entries.map((e) => [e.account_id, e.amount, e.balance_after])).toEqual([
          [alice.account.id, -30n, balance + 20n],
          [bob.account.id, 50n, (await snapshot()).balances.get(bob.account.id)],
          [alice.account.id, -20n, balance],
        ]);
      });
    });
  });
});
