import { sql } from 'kysely';
import type { AccountRow, Db, LoanRow, LoanStatus, Tx } from '../db/schema.js';
import { afterCursor, type Keyset } from '../pagination.js';
import type { Allocation, ScheduledInstallment } from './schedule.js';

export interface NewLoan {
  userId: string;
  accountId: string;
  principal: bigint;
  annualRateBasisPoints: number;
  termMonths: number;
  monthlyInstallment: bigint;
  totalPayable: bigint;
  purpose: string | null;
}

export function insertLoan(tx: Tx, loan: NewLoan): Promise<LoanRow> {
  return tx
    .insertInto('loans')
    .values({
      user_id: loan.userId,
      account_id: loan.accountId,
      principal: loan.principal,
      annual_rate_bp: loan.annualRateBasisPoints,
      term_months: loan.termMonths,
      monthly_installment: loan.monthlyInstallment,
      total_payable: loan.totalPayable,
      purpose: loan.purpose,
      decided_by: null,
      decided_at: null,
      decision_note: null,
      disbursement_transaction_id: null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export function findLoan(db: Db | Tx, id: string): Promise<LoanRow | undefined> {
  return db.selectFrom('loans').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Locks the loan's row, so that decisions on it and repayments of it queue: each sees the last one's outcome. */
export function lockLoan(tx: Tx, id: string): Promise<LoanRow | undefined> {
  return tx.selectFrom('loans').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
}

/** A customer's own account (checking or savings), or undefined. */
export function findCustomerAccountOf(tx: Tx, userId: string, accountId: string): Promise<AccountRow | undefined> {
  return tx.selectFrom('accounts').selectAll().where('id', '=', accountId).where('user_id', '=', userId).executeTakeFirst();
}

/** Newest first, by keyset (created_at, id), like every listing. */
export function listLoanRows(db: Db, filter: { userId?: string; status?: LoanStatus; after?: Keyset; limit: number }): Promise<LoanRow[]> {
  let query = db.selectFrom('loans').selectAll();
  if (filter.userId !== undefined) query = query.where('user_id', '=', filter.userId);
  if (filter.status !== undefined) query = query.where('status', '=', filter.status);
  if (filter.after) query = query.where(afterCursor('created_at', 'id', filter.after, 'desc'));
  return query
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(filter.limit + 1)
    .execute();
}

export interface Decision {
  status: 'active' | 'rejected';
  decidedBy: string;
  /** The app's clock, as for the postings (ledger/post.ts). */
  decidedAt: Date;
  note: string | null;
  disbursementTransactionId: string | null;
}

/** Records the decision on a pending loan (the caller holds its lock and saw it pending). */
export function recordDecision(tx: Tx, id: string, decision: Decision): Promise<LoanRow> {
  return tx
    .updateTable('loans')
    .set({
      status: decision.status,
      decided_by: decision.decidedBy,
      decided_at: decision.decidedAt,
      decision_note: decision.note,
      disbursement_transaction_id: decision.disbursementTransactionId,
    })
    .where('id', '=', id)
    .where('status', '=', 'pending')
    .returningAll()
    .executeTakeFirstOrThrow();
}

export function markPaidOff(tx: Tx, id: string): Promise<LoanRow> {
  return tx
    .updateTable('loans')
    .set({ status: 'paid_off' })
    .where('id', '=', id)
    .where('status', '=', 'active')
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function insertInstallments(tx: Tx, loanId: string, schedule: ScheduledInstallment[]): Promise<void> {
  await tx
    .insertInto('loan_installments')
    .values(
      schedule.map((row) => ({
        loan_id: loanId,
        number: row.number,
        due_date: row.dueDate,
        installment: row.installment,
        principal: row.principal,
        interest: row.interest,
        balance_after: row.balanceAfter,
      })),
    )
    .execute();
}

export interface InstallmentRecord {
  loan_id: string;
  number: number;
  /** YYYY-MM-DD. */
  due_date: string;
  installment: bigint;
  principal: bigint;
  interest: bigint;
  balance_after: bigint;
  paid_principal: bigint;
  paid_interest: bigint;
}

/** The schedules of some loans, in installment order. */
export async function readInstallments(db: Db | Tx, loanIds: string[]): Promise<InstallmentRecord[]> {
  if (loanIds.length === 0) return [];
  return db
    .selectFrom('loan_installments')
    .select([
      'loan_id',
      'number',
      // As text: a `date` read into a JS Date lands at midnight of the process's time zone.
      sql<string>`to_char(due_date, 'YYYY-MM-DD')`.as('due_date'),
      'installment',
      'principal',
      'interest',
      'balance_after',
      'paid_principal',
      'paid_interest',
    ])
    .where('loan_id', 'in', loanIds)
    .orderBy('loan_id')
    .orderBy('number')
    .execute();
}

/**
 * Adds a repayment's parts to the installments it pays, in one statement. Raw SQL because Kysely
 * cannot join an UPDATE to a VALUES list. The CHECKs refuse a paid part above its scheduled part.
 */
export async function addPaidParts(tx: Tx, loanId: string, allocations: Allocation[]): Promise<void> {
  const values = sql.join(
    allocations.map((a) => sql`(${a.number}::integer, ${a.principal.toString()}::bigint, ${a.interest.toString()}::bigint)`),
  );
  await sql`UPDATE loan_installments
            SET paid_principal = loan_installments.paid_principal + v.principal, paid_interest = loan_installments.paid_interest + v.interest
            FROM (VALUES ${values}) AS v(number, principal, interest)
            WHERE loan_installments.loan_id = ${loanId}::uuid AND loan_installments.number = v.number`.execute(tx);
}

export async function insertPayment(
  tx: Tx,
  payment: { loanId: string; transactionId: string; amount: bigint; principal: bigint; interest: bigint },
): Promise<void> {
  await tx
    .insertInto('loan_payments')
    .values({
      loan_id: payment.loanId,
      transaction_id: payment.transactionId,
      amount: payment.amount,
      principal: payment.principal,
      interest: payment.interest,
    })
    .execute();
}
