import { record, type Actor } from '../audit/record.js';
import type { AuthenticatedUser } from '../auth/service.js';
import type { AccountRow, Db, LoanRow, LoanStatus, Tx } from '../db/schema.js';
import { DomainError, validationError } from '../errors.js';
import { decodeCursor, toPage, type Page } from '../pagination.js';
import { describeShortfall, internalAccount, lockAccounts, movement, postTransaction } from '../ledger/post.js';
import { readTransaction, type TransactionView } from '../ledger/read.js';
import { formatAmount } from '../money.js';
import {
  addPaidParts,
  findCustomerAccountOf,
  findLoan,
  insertInstallments,
  insertLoan,
  insertPayment,
  listLoanRows,
  lockLoan,
  markPaidOff,
  readInstallments,
  recordDecision,
  type InstallmentRecord,
} from './repository.js';
import {
  allocatePayment,
  buildSchedule,
  formatAnnualRate,
  outstandingTotal,
  parseAnnualRate,
  quoteLoan,
  type InstallmentBalance,
} from './schedule.js';

export type InstallmentStatus = 'due' | 'paid' | 'overdue';

export interface InstallmentView {
  number: number;
  due_date: string;
  installment: string;
  principal: string;
  interest: string;
  balance_after: string;
  /** What has been paid of this installment. */
  paid: string;
  status: InstallmentStatus;
}

/** The wire shape of a loan (docs/api.md, "Loans"). */
export interface LoanView {
  id: string;
  user_id: string;
  account_id: string;
  principal: string;
  annual_rate: string;
  term_months: number;
  monthly_installment: string;
  total_payable: string;
  outstanding_principal: string;
  status: LoanStatus;
  purpose: string | null;
  created_at: string;
  decided_by: string | null;
  decided_at: string | null;
  decision_note: string | null;
  /** Fixed at disbursement; empty before. */
  schedule: InstallmentView[];
}

/** The calendar date (UTC) of an instant: what "past its due date" is measured against. */
export function utcDateOf(instant: Date): string {
  return instant.toISOString().slice(0, 10);
}

function isSettled(row: InstallmentRecord): boolean {
  return row.paid_principal === row.principal && row.paid_interest === row.interest;
}

/** An installment not wholly paid is overdue from the day after its due date (UTC). */
function installmentStatus(row: InstallmentRecord, today: string): InstallmentStatus {
  if (isSettled(row)) return 'paid';
  return row.due_date < today ? 'overdue' : 'due';
}

function toLoanView(loan: LoanRow, installments: InstallmentRecord[], today: string): LoanView {
  const principalPaid = installments.reduce((sum, row) => sum + row.paid_principal, 0n);
  return {
    id: loan.id,
    user_id: loan.user_id,
    account_id: loan.account_id,
    principal: formatAmount(loan.principal),
    annual_rate: formatAnnualRate(loan.annual_rate_bp),
    term_months: loan.term_months,
    monthly_installment: formatAmount(loan.monthly_installment),
    total_payable: formatAmount(loan.total_payable),
    outstanding_principal: formatAmount(loan.principal - principalPaid),
    status: loan.status,
    purpose: loan.purpose,
    created_at: loan.created_at.toISOString(),
    decided_by: loan.decided_by,
    decided_at: loan.decided_at?.toISOString() ?? null,
    decision_note: loan.decision_note,
    schedule: installments.map((row) => ({
      number: row.number,
      due_date: row.due_date,
      installment: formatAmount(row.installment),
      principal: formatAmount(row.principal),
      interest: formatAmount(row.interest),
      balance_after: formatAmount(row.balance_after),
      paid: formatAmount(row.paid_principal + row.paid_interest),
      status: installmentStatus(row, today),
    })),
  };
}

async function readLoanView(db: Db | Tx, loan: LoanRow, today: string): Promise<LoanView> {
  return toLoanView(loan, await readInstallments(db, [loan.id]), today);
}

function assertActive(account: AccountRow): void {
  if (account.status !== 'active') throw new DomainError('account_not_active', `Account ${account.account_number} is ${account.status}`);
}

export interface LoanApplication {
  accountId: string;
  principal: bigint;
  termMonths: number;
  purpose: string | null;
}

/**
 * A customer applies for a loan into one of its own active accounts, at the configured rate, which the
 * loan keeps whatever the configuration later says. The answer quotes the installment and the total.
 */
export async function applyForLoan(
  tx: Tx,
  actor: Actor & { id: string },
  input: LoanApplication,
  annualRate: string,
  today: string,
): Promise<LoanView> {
  const account = await findCustomerAccountOf(tx, actor.id, input.accountId);
  if (!account) throw new DomainError('account_not_found', `No account ${input.accountId} of yours`);
  assertActive(account);
  const terms = { principal: input.principal, annualRateBasisPoints: parseAnnualRate(annualRate), termMonths: input.termMonths };
  const quote = quoteLoan(terms);
  // A principal so small for its term that the installment rounds to 0.00 would leave months with
  // nothing to pay and the whole loan due at the end: not an instalment loan.
  if (quote.monthlyInstallment === 0n)
    throw validationError('principal', `is too small to be repaid in ${input.termMonths} monthly installments`);
  const loan = await insertLoan(tx, { userId: actor.id, accountId: account.id, ...terms, ...quote, purpose: input.purpose });
  await record(tx, actor, {
    action: 'loan.applied',
    targetType: 'loan',
    targetId: loan.id,
    details: {
      account_id: account.id,
      principal: formatAmount(loan.principal),
      annual_rate: formatAnnualRate(loan.annual_rate_bp),
      term_months: loan.term_months,
      monthly_installment: formatAmount(loan.monthly_installment),
      total_payable: formatAmount(loan.total_payable),
    },
  });
  return toLoanView(loan, [], today);
}

/** A customer sees its own loans; staff see all. Anything else answers like a loan that does not exist. */
function canSee(caller: AuthenticatedUser, loan: LoanRow): boolean {
  return caller.role !== 'customer' || loan.user_id === caller.id;
}

export async function getVisibleLoan(db: Db, caller: AuthenticatedUser, id: string, today: string): Promise<LoanView> {
  const loan = await findLoan(db, id);
  if (!loan || !canSee(caller, loan)) throw new DomainError('not_found', 'No such loan');
  return readLoanView(db, loan, today);
}

export async function listLoans(
  db: Db,
  caller: AuthenticatedUser,
  query: { status?: LoanStatus; limit: number; cursor?: string },
  today: string,
): Promise<Page<LoanView>> {
  const rows = await listLoanRows(db, {
    limit: query.limit,
    after: decodeCursor(query.cursor),
    ...(caller.role === 'customer' ? { userId: caller.id } : {}),
    ...(query.status ? { status: query.status } : {}),
  });
  const byLoan = new Map<string, InstallmentRecord[]>();
  for (const row of await readInstallments(
    db,
    rows.slice(0, query.limit).map((loan) => loan.id),
  )) {
    const schedule = byLoan.get(row.loan_id);
    if (schedule) schedule.push(row);
    else byLoan.set(row.loan_id, [row]);
  }
  return toPage(
    rows,
    query.limit,
    (row) => ({ at: row.created_at, id: row.id }),
    (row) => toLoanView(row, byLoan.get(row.id) ?? [], today),
  );
}

async function lockPendingLoan(tx: Tx, id: string): Promise<LoanRow> {
  const loan = await lockLoan(tx, id);
  if (!loan) throw new DomainError('not_found', 'No such loan');
  if (loan.status !== 'pending') throw new DomainError('not_pending', `The loan is ${loan.status}, not pending`);
  return loan;
}

/**
 * Approves a pending loan at `now`, the app's clock: the principal moves from the bank's loan fund into
 * the loan's account as a loan_disbursement (posted at postingInstant(now, accounts)), and the schedule
 * is fixed from now's UTC date. The loan's row lock makes concurrent approvals queue, and each later one
 * finds the loan no longer pending (409 not_pending): the principal is disbursed once. An account
 * frozen or closed since the application stops the approval (409 account_not_active) and the loan
 * stays pending.
 */
export async function approveLoan(tx: Tx, actor: Actor & { id: string }, id: string, note: string | null, now: Date): Promise<LoanView> {
  const loan = await lockPendingLoan(tx, id);
  const { currency } = (await findCustomerAccountOf(tx, loan.user_id, loan.account_id))!;
  const fundId = await internalAccount(tx, 'loan_fund', currency);
  const locked = await lockAccounts(tx, [loan.account_id, fundId]);
  const account = locked.get(loan.account_id)!;
  assertActive(account);

  const disbursement = await postTransaction(
    tx,
    {
      type: 'loan_disbursement',
      amount: loan.principal,
      currency,
      fromAccountId: fundId,
      toAccountId: account.id,
      description: `Loan ${loan.id} disbursement`,
      createdBy: actor.id,
      entries: movement(fundId, account.id, loan.principal),
    },
    now,
    locked,
  );
  // From the decision's day by the app's clock, the day decided_at records.
  const schedule = buildSchedule(
    { principal: loan.principal, annualRateBasisPoints: loan.annual_rate_bp, termMonths: loan.term_months },
    utcDateOf(now),
  );
  await insertInstallments(tx, loan.id, schedule);
  const approved = await recordDecision(tx, loan.id, {
    status: 'active',
    decidedBy: actor.id,
    decidedAt: now,
    note,
    disbursementTransactionId: disbursement.id,
  });
  await record(tx, actor, {
    action: 'loan.approved',
    targetType: 'loan',
    targetId: loan.id,
    details: {
      principal: formatAmount(loan.principal),
      account_id: account.id,
      transaction_id: disbursement.id,
      first_due_date: schedule[0]!.dueDate,
      monthly_installment: formatAmount(loan.monthly_installment),
      note,
    },
  });
  return readLoanView(tx, approved, utcDateOf(now));
}

/** Rejects a pending loan at `now`, the app's clock: nothing is disbursed. */
export async function rejectLoan(tx: Tx, actor: Actor & { id: string }, id: string, reason: string, now: Date): Promise<LoanView> {
  const loan = await lockPendingLoan(tx, id);
  const rejected = await recordDecision(tx, loan.id, {
    status: 'rejected',
    decidedBy: actor.id,
    decidedAt: now,
    note: reason,
    disbursementTransactionId: null,
  });
  await record(tx, actor, {
    action: 'loan.rejected',
    targetType: 'loan',
    targetId: loan.id,
    details: { principal: formatAmount(loan.principal), reason },
  });
  return toLoanView(rejected, [], utcDateOf(now));
}

export interface Repayment {
  amount: bigint;
  /** Default: the loan's own account. */
  fromAccountId: string | null;
}

function balanceOf(row: InstallmentRecord): InstallmentBalance {
  return {
    number: row.number,
    principal: row.principal,
    interest: row.interest,
    paidPrincipal: row.paid_principal,
    paidInterest: row.paid_interest,
  };
}

/**
 * The borrower repays at `now`, the app's clock: the oldest unpaid installments first, interest before
 * principal, in one loan_repayment transaction that takes the amount from the paying account and splits it between the
 * loan fund (principal) and the bank's interest income (interest). Interest is charged as scheduled:
 * the most a repayment may be is the unpaid parts of the schedule (422 overpayment above it). The
 * loan's row lock queues concurrent repayments, so two cannot both pay the same installment; the
 * paying account is locked with the bank's two accounts, in id order, before its balance is checked.
 */
export async function repayLoan(
  tx: Tx,
  actor: Actor & { id: string },
  id: string,
  input: Repayment,
  now: Date,
): Promise<{ loan: LoanView; transaction: TransactionView }> {
  const loan = await lockLoan(tx, id);
  if (!loan || loan.user_id !== actor.id) throw new DomainError('not_found', 'No such loan');
  const installments = (await readInstallments(tx, [loan.id])).map(balanceOf);
  const outstanding = outstandingTotal(installments);
  if (input.amount > outstanding) {
    throw new DomainError(
      'overpayment',
      loan.status === 'active'
        ? `The loan's outstanding total is ${formatAmount(outstanding)}; ${formatAmount(input.amount)} is more`
        : `The loan is ${loan.status}: nothing is owed on it`,
    );
  }

  const payerId = input.fromAccountId ?? loan.account_id;
  const payer = await findCustomerAccountOf(tx, actor.id, payerId);
  if (!payer) throw new DomainError('account_not_found', `No account ${payerId} of yours`);
  const loanCurrency = (await findCustomerAccountOf(tx, loan.user_id, loan.account_id))!.currency;
  if (payer.currency !== loanCurrency)
    throw new DomainError('currency_mismatch', `The loan is in ${loanCurrency}; the account holds ${payer.currency}`);
  const fundId = await internalAccount(tx, 'loan_fund', loanCurrency);
  const incomeId = await internalAccount(tx, 'interest_income', loanCurrency);
  const locked = await lockAccounts(tx, [payer.id, fundId, incomeId]);
  const paying = locked.get(payer.id)!;
  assertActive(paying);
  const available = paying.balance - paying.held;
  if (available < input.amount) throw new DomainError('insufficient_funds', describeShortfall(available, input.amount));

  const allocations = allocatePayment(installments, input.amount);
  const principal = allocations.reduce((sum, a) => sum + a.principal, 0n);
  const interest = allocations.reduce((sum, a) => sum + a.interest, 0n);
  await addPaidParts(tx, loan.id, allocations);
  const transaction = await postTransaction(
    tx,
    {
      type: 'loan_repayment',
      amount: input.amount,
      currency: loanCurrency,
      fromAccountId: payer.id,
      toAccountId: fundId,
      description: `Loan ${loan.id} repayment`,
      createdBy: actor.id,
      // A part that is zero (a payment of interest only, or of a zero-interest loan) has no entry.
      entries: [
        { accountId: payer.id, amount: -input.amount },
        ...(principal > 0n ? [{ accountId: fundId, amount: principal }] : []),
        ...(interest > 0n ? [{ accountId: incomeId, amount: interest }] : []),
      ],
    },
    now,
    locked,
  );
  await insertPayment(tx, { loanId: loan.id, transactionId: transaction.id, amount: input.amount, principal, interest });
  const isPaidOff = input.amount === outstanding;
  const current = isPaidOff ? await markPaidOff(tx, loan.id) : loan;
  await record(tx, actor, {
    action: 'loan.repaid',
    targetType: 'loan',
    targetId: loan.id,
    details: {
      amount: formatAmount(input.amount),
      principal: formatAmount(principal),
      interest: formatAmount(interest),
      from_account_id: payer.id,
      transaction_id: transaction.id,
      outstanding_after: formatAmount(outstanding - input.amount),
      paid_off: isPaidOff,
    },
  });
  return { loan: await readLoanView(tx, current, utcDateOf(now)), transaction: await readTransaction(tx, transaction.id) };
}
