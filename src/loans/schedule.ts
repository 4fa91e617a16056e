import { divideRoundHalfUp } from '../money.js';

/**
 * Loan arithmetic (docs/api.md, "Loans"), exact from end to end: amounts are bigint minor units and the
 * monthly rate is a rational number, so the only roundings are the two the contract names, each by
 * the service's one rule (divideRoundHalfUp): the installment to cents, and each month's interest to
 * cents. Nothing here depends on the database, the clock or the request.
 */

/**
 * An annual rate in basis points (hundredths of a percent): "12.00" is 1200. Rates arrive as decimal
 * strings with at most two fraction digits (LOAN_ANNUAL_RATE), so this integer holds them exactly.
 */
export function parseAnnualRate(text: string): number {
  const match = /^(\d{1,3})(?:\.(\d{1,2}))?$/.exec(text);
  if (!match) throw new RangeError(`an annual rate is a percentage with at most two decimals, not ${JSON.stringify(text)}`);
  return Number(match[1]) * 100 + Number((match[2] ?? '').padEnd(2, '0'));
}

/** 1200 -> "12.00". */
export function formatAnnualRate(basisPoints: number): string {
  return `${Math.trunc(basisPoints / 100)}.${String(basisPoints % 100).padStart(2, '0')}`;
}

/** r = annual_rate / 12 / 100 as the exact fraction numerator / denominator (basis points / 120000). */
export interface MonthlyRate {
  numerator: bigint;
  denominator: bigint;
}

const BASIS_POINTS_PER_MONTHLY_UNIT = 12n * 100n * 100n;

export function monthlyRate(annualRateBasisPoints: number): MonthlyRate {
  const numerator = BigInt(annualRateBasisPoints);
  const divisor = greatestCommonDivisor(numerator, BASIS_POINTS_PER_MONTHLY_UNIT);
  return { numerator: numerator / divisor, denominator: BASIS_POINTS_PER_MONTHLY_UNIT / divisor };
}

function greatestCommonDivisor(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/**
 * The annuity P·r / (1 − (1 + r)^−n), rounded half up to cents; P / n when r = 0.
 *
 * With r = a/b the formula is, exactly, P·a·(a+b)^n / (b·((a+b)^n − b^n)): one integer division of
 * two bigints, rounded once. The powers are large (up to about 6,100 bits, for a rate like 35.99 %
 * over 360 months) but bigint arithmetic of that size takes microseconds, and with no approximation
 * there is no precision argument to make: the cent is the exact quotient's, rounded half up.
 */
export function monthlyInstallment(principal: bigint, rate: MonthlyRate, termMonths: number): bigint {
  const n = BigInt(termMonths);
  if (rate.numerator === 0n) return divideRoundHalfUp(principal, n);
  const { numerator: a, denominator: b } = rate;
  const growth = (a + b) ** n;
  return divideRoundHalfUp(principal * a * growth, b * (growth - b ** n));
}

/** One month of interest on an outstanding balance: balance × r, rounded half up to cents. */
export function monthlyInterest(balance: bigint, rate: MonthlyRate): bigint {
  return divideRoundHalfUp(balance * rate.numerator, rate.denominator);
}

export interface ScheduledAmounts {
  number: number;
  installment: bigint;
  principal: bigint;
  interest: bigint;
  /** Principal still owed once this installment is paid. */
  balanceAfter: bigint;
}

export interface LoanTerms {
  principal: bigint;
  annualRateBasisPoints: number;
  termMonths: number;
}

/**
 * The amounts of the schedule. Each month's interest is the outstanding principal times r (rounded),
 * and the rest of the fixed installment repays principal. The last installment is whatever clears the
 * balance with its interest, so it absorbs the rounding of the others and the principal parts sum
 * exactly to P.
 *
 * No principal part is negative: the installment rounds the exact annuity, which exceeds P·r, and
 * rounding is monotone, so the installment is at least the first month's interest, and the balance
 * (hence the interest) never grows. The rounded installment may exceed the exact annuity by up to half
 * a cent, though, and where principal is repaid slowly (a small principal over a long term) those half
 * cents can clear the balance before the last month. The installment that clears it is then the last:
 * the schedule is shorter than the term rather than ending in months with nothing to pay.
 */
export function amortize(terms: LoanTerms): ScheduledAmounts[] {
  const rate = monthlyRate(terms.annualRateBasisPoints);
  const installment = monthlyInstallment(terms.principal, rate, terms.termMonths);
  const rows: ScheduledAmounts[] = [];
  let balance = terms.principal;
  for (let number = 1; balance > 0n; number++) {
    const interest = monthlyInterest(balance, rate);
    const isLast = number === terms.termMonths || installment - interest >= balance;
    const principal = isLast ? balance : installment - interest;
    balance -= principal;
    rows.push({ number, installment: principal + interest, principal, interest, balanceAfter: balance });
  }
  return rows;
}

export interface Quote {
  monthlyInstallment: bigint;
  totalPayable: bigint;
}

/** What a borrower is quoted: the regular installment and the sum of all installments. */
export function quoteLoan(terms: LoanTerms): Quote {
  const schedule = amortize(terms);
  return {
    monthlyInstallment: monthlyInstallment(terms.principal, monthlyRate(terms.annualRateBasisPoints), terms.termMonths),
    totalPayable: schedule.reduce((sum, row) => sum + row.installment, 0n),
  };
}

/**
 * The calendar date `months` months after `from` (both YYYY-MM-DD), on the same day of the month or
 * the month's last day when it is shorter: 2024-01-31 + 1 is 2024-02-29, + 2 is 2024-03-31. Each due
 * date counts from the disbursement date, never from the previous due date, so a clamped February
 * does not pull every later date back to the 28th.
 */
export function addMonths(from: string, months: number): string {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(from);
  if (!match) throw new RangeError(`not a YYYY-MM-DD date: ${JSON.stringify(from)}`);
  const monthIndex = Number(match[1]) * 12 + (Number(match[2]) - 1) + months;
  const year = Math.floor(monthIndex / 12);
  const month = (monthIndex % 12) + 1;
  // Day 0 of the next month is the last day of this one.
  const lastDay = new Date(Date.UTC(year, month, 0)).getUTCDate();
  const day = Math.min(Number(match[3]), lastDay);
  return `${String(year).padStart(4, '0')}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

export interface ScheduledInstallment extends ScheduledAmounts {
  /** YYYY-MM-DD; the first falls due one month after disbursement. */
  dueDate: string;
}

/** The schedule fixed at disbursement: the amounts, each due `number` months after `disbursedOn`. */
export function buildSchedule(terms: LoanTerms, disbursedOn: string): ScheduledInstallment[] {
  return amortize(terms).map((row) => ({ ...row, dueDate: addMonths(disbursedOn, row.number) }));
}

/** How much of an installment is still owed. */
export interface InstallmentBalance {
  number: number;
  principal: bigint;
  interest: bigint;
  paidPrincipal: bigint;
  paidInterest: bigint;
}

/** The unpaid parts of the whole schedule: the most a repayment may be. */
export function outstandingTotal(installments: InstallmentBalance[]): bigint {
  return installments.reduce((sum, row) => sum + (row.principal - row.paidPrincipal) + (row.interest - row.paidInterest), 0n);
}

/** What one repayment adds to the paid parts of one installment. */
export interface Allocation {
  number: number;
  principal: bigint;
  interest: bigint;
}

/**
 * Spreads a repayment over the schedule: the oldest unpaid installment first, and within each, its
 * interest before its principal (docs/api.md, "Loans"). Returns only the installments it touches. The caller has
 * checked that the amount does not exceed outstandingTotal; anything beyond it would be left over.
 */
export function allocatePayment(installments: InstallmentBalance[], amount: bigint): Allocation[] {
  const allocations: Allocation[] = [];
  let left = amount;
  for (const row of [...installments].sort((a, b) => a.number - b.number)) {
    if (left === 0n) break;
    const interest = min(left, row.interest - row.paidInterest);
    left -= interest;
    const principal = min(left, row.principal - row.paidPrincipal);
    left -= principal;
    if (interest > 0n || principal > 0n) allocations.push({ number: row.number, principal, interest });
  }
  return allocations;
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
