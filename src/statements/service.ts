import { setImmediate as nextTurn } from 'node:timers/promises';
import { getVisibleAccount, toAccountView, type AccountView } from '../accounts/service.js';
import type { AuthenticatedUser } from '../auth/service.js';
import type { AccountRow, Db, Tx } from '../db/schema.js';
import { validationError } from '../errors.js';
import { instantField, isHoldableInstant } from '../time.js';
import { formatAmount } from '../money.js';
import { getUser } from '../users/service.js';
import {
  balanceAfterLastEntry,
  entriesOver,
  fetchInBatches,
  pendingOutgoingTransfers,
  totalsOver,
  type EntryRow,
  type PendingTransferRow,
  type Span,
} from './repository.js';

const DAY_MS = 86_400_000;

/** A statement's period: whole UTC days, `from` and `to` inclusive, read as the span [start, end). */
export interface Period extends Span {
  from: string;
  to: string;
}

const utcDay = (date: string): Date => new Date(`${date}T00:00:00.000Z`);
const dayOf = (instant: Date): string => instant.toISOString().slice(0, 10);

/**
 * The period of a statement request. `to` defaults to today (UTC) and `from` to the first day of the
 * month of `to`, so no dates at all mean "this month so far". The query schema has already refused
 * anything that is not a real calendar day.
 */
export function resolvePeriod(query: { from?: string | undefined; to?: string | undefined }, now: Date, maxDays: number): Period {
  const to = query.to ?? dayOf(now);
  const from = query.from ?? `${to.slice(0, 7)}-01`;
  // PostgreSQL has no year 0; a statement of the first century is a typo anyway.
  if (from < '1900-01-01') throw validationError('from', 'must be 1900-01-01 or later');
  if (from > to) throw validationError('from', `must not be after to (${to})`);
  const start = utcDay(from);
  const end = new Date(utcDay(to).getTime() + DAY_MS);
  // The period ends where the next day starts: 9999-12-31 would end in year 10000.
  if (!isHoldableInstant(end)) throw validationError('to', 'must be 9999-12-30 or earlier');
  const days = (end.getTime() - start.getTime()) / DAY_MS;
  if (days > maxDays) throw validationError('to', `the period spans ${days} days; at most ${maxDays} are allowed`);
  return { from, to, start, end };
}

/** Everything about a statement except its entries, read in the snapshot that the entries are then read from. */
export interface StatementHeader {
  account: AccountRow;
  holderName: string;
  period: Period;
  openingBalance: bigint;
  closingBalance: bigint;
  totalCredits: bigint;
  totalDebits: bigint;
  entryCount: number;
  held: PendingTransferRow[];
}

export type StatementEntryRow = EntryRow;

/**
 * Reads the statement's header. Run it inside a snapshot transaction (withTransaction(..., { snapshot:
 * true })) and read the entries in the same one: the totals, the entries and the balances then describe
 * one state of the journal, so opening + credits − debits = closing holds line by line.
 */
export async function readStatementHeader(tx: Tx, caller: AuthenticatedUser, accountId: string, period: Period): Promise<StatementHeader> {
  const account = await getVisibleAccount(tx, caller, accountId);
  const holder = await getUser(tx, account.user_id!);
  // From the journal, never from accounts.balance: that is today's balance, not the one at `from`.
  const openingBalance = await balanceAfterLastEntry(tx, account.id, '<', period.start);
  const totals = await totalsOver(tx, account.id, period);
  return {
    account,
    holderName: holder.name,
    period,
    openingBalance,
    closingBalance: openingBalance + totals.credits - totals.debits,
    totalCredits: totals.credits,
    totalDebits: totals.debits,
    entryCount: totals.entryCount,
    held: await pendingOutgoingTransfers(tx, account.id, period.end),
  };
}

/**
 * The statement's entries in batches of at most `batchSize`, through a cursor of the caller's
 * transaction (which must be the header's snapshot). Between batches it lets the event loop take a
 * turn: a consumer that renders synchronously (the PDF) and a FETCH that needs no I/O to resolve
 * (PGlite's) would otherwise keep every other request of the process waiting until the last batch.
 * At the end it checks that what it streamed is what the header announced: it cannot differ inside one
 * snapshot, and if it ever did, a download cut short with an error is better than a statement whose
 * lines do not add up to its totals.
 */
export async function* streamStatementEntries(tx: Tx, header: StatementHeader, batchSize: number): AsyncGenerator<StatementEntryRow[]> {
  let count = 0;
  let net = 0n;
  for await (const batch of fetchInBatches(tx, entriesOver(tx, header.account.id, header.period), batchSize)) {
    count += batch.length;
    for (const entry of batch) net += entry.amount;
    yield batch;
    await nextTurn();
  }
  if (count !== header.entryCount || header.openingBalance + net !== header.closingBalance) {
    throw new Error(
      `statement of ${header.account.id} changed while streaming: ${count} entries netting ${net}, header said ${header.entryCount}`,
    );
  }
}

export interface StatementEntryView {
  transaction_id: string;
  posted_at: string;
  type: StatementEntryRow['type'];
  description: string | null;
  amount: string;
  balance_after: string;
  counterparty: string | null;
}

export interface HeldTransferView {
  transaction_id: string;
  created_at: string;
  amount: string;
  counterparty: string | null;
  review_reasons: string[];
}

export interface StatementView {
  account: AccountView;
  from: string;
  to: string;
  opening_balance: string;
  closing_balance: string;
  total_credits: string;
  total_debits: string;
  entries: StatementEntryView[];
  held: HeldTransferView[];
}

function toStatementEntryView(entry: StatementEntryRow): StatementEntryView {
  return {
    transaction_id: entry.transaction_id,
    posted_at: entry.posted_at.toISOString(),
    type: entry.type,
    description: entry.description,
    amount: formatAmount(entry.amount),
    balance_after: formatAmount(entry.balance_after),
    counterparty: entry.counterparty,
  };
}

function toHeldTransferView(held: PendingTransferRow): HeldTransferView {
  return {
    transaction_id: held.id,
    created_at: held.created_at.toISOString(),
    // Signed like the entries: this money would leave the account.
    amount: formatAmount(-held.amount),
    counterparty: held.counterparty,
    review_reasons: held.review_reasons,
  };
}

/** The JSON statement: header and every entry, read in the caller's snapshot transaction. */
export async function readStatement(
  tx: Tx,
  caller: AuthenticatedUser,
  accountId: string,
  period: Period,
  batchSize: number,
): Promise<StatementView> {
  const header = await readStatementHeader(tx, caller, accountId, period);
  const entries: StatementEntryView[] = [];
  for await (const batch of streamStatementEntries(tx, header, batchSize)) entries.push(...batch.map(toStatementEntryView));
  return {
    account: toAccountView(header.account),
    from: period.from,
    to: period.to,
    opening_balance: formatAmount(header.openingBalance),
    closing_balance: formatAmount(header.closingBalance),
    total_credits: formatAmount(header.totalCredits),
    total_debits: formatAmount(header.totalDebits),
    entries,
    held: header.held.map(toHeldTransferView),
  };
}

/** A balance-at request's instant: now by default, never in the future (the journal has no future yet). */
export function resolveInstant(at: string | undefined, now: Date): Date {
  if (at === undefined) return now;
  const instant = instantField('at', at);
  if (instant.getTime() > now.getTime()) throw validationError('at', 'must not be in the future');
  if (instant.getTime() < utcDay('1900-01-01').getTime()) throw validationError('at', 'must be 1900-01-01 or later');
  return instant;
}

export interface BalanceAtView {
  account_id: string;
  at: string;
  balance: string;
}

/** The balance as the journal stood at an instant: the balance after the last entry posted at or before it. */
export async function readBalanceAt(db: Db, caller: AuthenticatedUser, accountId: string, at: Date): Promise<BalanceAtView> {
  const account = await getVisibleAccount(db, caller, accountId);
  const balance = await balanceAfterLastEntry(db, account.id, '<=', at);
  return { account_id: account.id, at: at.toISOString(), balance: formatAmount(balance) };
}
