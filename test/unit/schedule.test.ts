import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  addMonths,
  allocatePayment,
  amortize,
  buildSchedule,
  formatAnnualRate,
  monthlyInstallment,
  monthlyRate,
  outstandingTotal,
  parseAnnualRate,
  quoteLoan,
  type InstallmentBalance,
} from '../../src/loans/schedule.js';
import { divideRoundHalfUp, formatAmount, parseAmount } from '../../src/money.js';

/** The schedule as the contract's reader sees it: decimal strings. */
function scheduleOf(principal: string, annualRate: string, termMonths: number) {
  return amortize({ principal: parseAmount(principal), annualRateBasisPoints: parseAnnualRate(annualRate), termMonths }).map((row) => ({
    number: row.number,
    installment: formatAmount(row.installment),
    principal: formatAmount(row.principal),
    interest: formatAmount(row.interest),
    balance_after: formatAmount(row.balanceAfter),
  }));
}

describe('annual rates', () => {
  it.each([
    ['12.00', 1200],
    ['12.5', 1250],
    ['0', 0],
    ['0.01', 1],
    ['36.99', 3699],
    ['100.00', 10000],
  ])('reads %s as %i basis points, and writes them back with two decimals', (text, basisPoints) => {
    expect(parseAnnualRate(text)).toBe(basisPoints);
    expect(formatAnnualRate(basisPoints)).toBe(Number(text).toFixed(2));
  });

  it.each(['1.234', '-1', '', 'abc', '1e2', '12.'])('refuses %j', (text) => {
    expect(() => parseAnnualRate(text)).toThrow(RangeError);
  });

  it('keeps r = annual / 12 / 100 as an exact fraction in lowest terms', () => {
    expect(monthlyRate(1200)).toEqual({ numerator: 1n, denominator: 100n });
    expect(monthlyRate(1999)).toEqual({ numerator: 1999n, denominator: 120000n });
    expect(monthlyRate(0)).toEqual({ numerator: 0n, denominator: 1n });
  });
});

describe('hand-checked schedules', () => {
  it('1200.00 over 12 months at 0 %: 100.00 a month, no interest', () => {
    const schedule = scheduleOf('1200.00', '0.00', 12);
    expect(schedule).toHaveLength(12);
    for (const [index, row] of schedule.entries()) {
      expect(row).toEqual({
        number: index + 1,
        installment: '100.00',
        principal: '100.00',
        interest: '0.00',
        balance_after: `${1100 - index * 100}.00`,
      });
    }
  });

  it('1000.00 over 3 months at 0 %: 333.33 twice, and the last absorbs the cent', () => {
    expect(scheduleOf('1000.00', '0', 3).map((row) => row.installment)).toEqual(['333.33', '333.33', '333.34']);
  });

  it('10000.00 over 12 months at 12 %: 888.49 a month', () => {
    // By hand: r = 12 / 12 / 100 = 0.01 and 1.01^12 = 1.126825030131970, so 1 − 1.01^−12 = 0.112550775...,
    // and P·r / (1 − (1 + r)^−n) = 100.00 / 0.112550775 = 888.4878868 → 888.49 (half up).
    // Month 1: interest 10000.00 × 0.01 = 100.00; principal 888.49 − 100.00 = 788.49; balance 9211.51.
    // Month 2: interest 9211.51 × 0.01 = 92.1151 → 92.12; principal 796.37; balance 8415.14.
    // Month 12: the balance left is 879.67, its interest 8.7967 → 8.80, so the last installment is
    // 879.67 + 8.80 = 888.47 (two cents less: the rounded-up installment repaid slightly faster).
    // The whole table was checked against an independent computation in Python's fractions.Fraction.
    const schedule = scheduleOf('10000.00', '12.00', 12);
    expect(schedule.map((row) => [row.installment, row.principal, row.interest, row.balance_after])).toEqual([
      ['888.49', '788.49', '100.00', '9211.51'],
      ['888.49', '796.37', '92.12', '8415.14'],
      ['888.49', '804.34', '84.15', '7610.80'],
      ['888.49', '812.38', '76.11', '6798.42'],
      ['888.49', '820.51', '67.98', '5977.91'],
      ['888.49', '828.71', '59.78', '5149.20'],
      ['888.49', '837.00', '51.49', '4312.20'],
      ['888.49', '845.37', '43.12', '3466.83'],
      ['888.49', '853.82', '34.67', '2613.01'],
      ['888.49', '862.36', '26.13', '1750.65'],
      ['888.49', '870.98', '17.51', '879.67'],
      ['888.47', '879.67', '8.80', '0.00'],
    ]);
    expect(quoteLoan({ principal: 1_000_000n, annualRateBasisPoints: 1200, termMonths: 12 })).toEqual({
      monthlyInstallment: 88_849n,
      totalPayable: 1_066_186n,
    });
  });

  it('100000.00 over 360 months at 6 %: 599.55 a month, the last 600.00', () => {
    // r = 0.005: interest of month 1 is 500.00; the total was checked with Python's fractions.Fraction.
    const schedule = scheduleOf('100000.00', '6.00', 360);
    expect(schedule).toHaveLength(360);
    expect(schedule[0]).toEqual({ number: 1, installment: '599.55', principal: '99.55', interest: '500.00', balance_after: '99900.45' });
    expect(schedule[359]).toEqual({ number: 360, installment: '600.00', principal: '597.01', interest: '2.99', balance_after: '0.00' });
    expect(quoteLoan({ principal: 10_000_000n, annualRateBasisPoints: 600, termMonths: 360 }).totalPayable).toBe(21_583_845n);
  });

  it('a 1-month loan is repaid in one installment: the principal plus one month of interest', () => {
    expect(scheduleOf('1000.00', '12.00', 1)).toEqual([
      { number: 1, installment: '1010.00', principal: '1000.00', interest: '10.00', balance_after: '0.00' },
    ]);
    expect(scheduleOf('0.01', '36.00', 1)).toEqual([
      { number: 1, installment: '0.01', principal: '0.01', interest: '0.00', balance_after: '0.00' },
    ]);
    expect(scheduleOf('500.00', '0', 1)).toEqual([
      { number: 1, installment: '500.00', principal: '500.00', interest: '0.00', balance_after: '0.00' },
    ]);
  });

  it('123.45 over 7 months at 19.99 %: interest rounds half up each month', () => {
    // r = 1999/120000; month 1 interest 123.45 × r = 2.0565... → 2.06.
    expect(scheduleOf('123.45', '19.99', 7).map((row) => row.interest)).toEqual(['2.06', '1.78', '1.49', '1.20', '0.91', '0.61', '0.31']);
    expect(scheduleOf('123.45', '19.99', 7).map((row) => row.installment)).toEqual(Array(7).fill('18.83'));
  });

  it('ends early when the rounded-up installment clears the balance before the last month', () => {
    // 2.61 over 104 months at 3.14 %: the exact annuity is 2.8698 cents, rounded to 3; that extra 0.13
    // of a cent a month repays the principal in 99 months, the last paying the 0.02 left.
    const schedule = scheduleOf('2.61', '3.14', 104);
    expect(schedule).toHaveLength(99);
    expect(schedule.slice(-2)).toEqual([
      { number: 98, installment: '0.03', principal: '0.03', interest: '0.00', balance_after: '0.02' },
      { number: 99, installment: '0.02', principal: '0.02', interest: '0.00', balance_after: '0.00' },
    ]);
  });

  it('rounds P / n half up at 0 %: 1.50 over 100 months is 0.02 a month for 75 months', () => {
    expect(monthlyInstallment(150n, monthlyRate(0), 100)).toBe(2n);
    expect(scheduleOf('1.50', '0', 100)).toHaveLength(75);
  });
});

describe('due dates', () => {
  it.each([
    ['2024-01-31', 1, '2024-02-29'],
    ['2023-01-31', 1, '2023-02-28'],
    ['2024-01-31', 2, '2024-03-31'],
    ['2024-01-31', 3, '2024-04-30'],
    ['2024-01-30', 1, '2024-02-29'],
    ['2024-12-15', 1, '2025-01-15'],
    ['2023-03-31', 11, '2024-02-29'],
    ['2024-02-29', 12, '2025-02-28'],
    ['2024-02-29', 48, '2028-02-29'],
    ['2025-06-01', 360, '2055-06-01'],
  ])('%s + %i months is %s', (from, months, expected) => {
    expect(addMonths(from, months)).toBe(expected);
  });

  it('counts every due date from the disbursement date, so a short month does not shift the later ones', () => {
    const schedule = buildSchedule({ principal: 120_000n, annualRateBasisPoints: 0, termMonths: 4 }, '2025-01-31');
    expect(schedule.map((row) => row.dueDate)).toEqual(['2025-02-28', '2025-03-31', '2025-04-30', '2025-05-31']);
  });

  it('keeps the day of the month, or the month’s last day when it is shorter', () => {
    const date = fc
      .tuple(fc.integer({ min: 2000, max: 2100 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 31 }))
      .filter(([y, m, d]) => d <= new Date(Date.UTC(y, m, 0)).getUTCDate())
      .map(([y, m, d]) => `${y}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`);
    fc.assert(
      fc.property(date, fc.integer({ min: 1, max: 360 }), (from, months) => {
        const due = addMonths(from, months);
        const [fy, fm, fd] = from.split('-').map(Number) as [number, number, number];
        const [dy, dm, dd] = due.split('-').map(Number) as [number, number, number];
        expect(dy * 12 + dm - (fy * 12 + fm)).toBe(months);
        expect(dd).toBe(Math.min(fd, new Date(Date.UTC(dy, dm, 0)).getUTCDate()));
      }),
    );
  });
});

describe('schedule properties', () => {
  // Principal 1.00 to 10,000,000.00; 1 to 360 months; 0 to 36 % a year with two decimals.
  const principal = fc.bigInt({ min: 100n, max: 1_000_000_000n });
  const termMonths = fc.integer({ min: 1, max: 360 });
  const annualRate = fc.integer({ min: 0, max: 3600 }).map(formatAnnualRate);

  it('repays exactly the principal, never lets the balance grow or go negative, and charges round-half-up(balance × r)', () => {
    fc.assert(
      fc.property(principal, termMonths, annualRate, (p, n, rate) => {
        const basisPoints = parseAnnualRate(rate);
        const schedule = amortize({ principal: p, annualRateBasisPoints: basisPoints, termMonths: n });
        expect(schedule.length).toBeGreaterThanOrEqual(1);
        expect(schedule.length).toBeLessThanOrEqual(n);
        expect(schedule.map((row) => row.number)).toEqual(schedule.map((_, index) => index + 1));
        expect(schedule.reduce((sum, row) => sum + row.principal, 0n)).toBe(p);

        let balance = p;
        for (const row of schedule) {
          // r = rate / 12 / 100 = basis points / 120000, written out again here rather than taken from the module.
          expect(row.interest).toBe(divideRoundHalfUp(balance * BigInt(basisPoints), 120_000n));
          expect(row.principal).toBeGreaterThanOrEqual(0n);
          expect(row.installment).toBe(row.principal + row.interest);
          expect(row.balanceAfter).toBe(balance - row.principal);
          expect(row.balanceAfter).toBeGreaterThanOrEqual(0n);
          expect(row.balanceAfter).toBeLessThanOrEqual(balance);
          balance = row.balanceAfter;
        }
        expect(schedule.at(-1)!.balanceAfter).toBe(0n);
      }),
    );
  });

  it('asks the same installment every month but the last, and that installment is the annuity rounded half up', () => {
    fc.assert(
      fc.property(principal, termMonths, annualRate, (p, n, rate) => {
        const basisPoints = BigInt(parseAnnualRate(rate));
        const quote = quoteLoan({ principal: p, annualRateBasisPoints: Number(basisPoints), termMonths: n });
        const schedule = amortize({ principal: p, annualRateBasisPoints: Number(basisPoints), termMonths: n });
        for (const row of schedule.slice(0, -1)) expect(row.installment).toBe(quote.monthlyInstallment);
        expect(quote.totalPayable).toBe(schedule.reduce((sum, row) => sum + row.installment, 0n));

        // The annuity P·r / (1 − (1 + r)^−n) with r = bp / 120000 (not reduced), as exact ≡ N / D:
        // the installment A is its half-up rounding exactly when (2A − 1)·D ≤ 2N < (2A + 1)·D.
        const [numerator, denominator] =
          basisPoints === 0n
            ? [p, BigInt(n)]
            : [
                p * basisPoints * (120_000n + basisPoints) ** BigInt(n),
                120_000n * ((120_000n + basisPoints) ** BigInt(n) - 120_000n ** BigInt(n)),
              ];
        const a = quote.monthlyInstallment;
        expect((2n * a - 1n) * denominator <= 2n * numerator && 2n * numerator < (2n * a + 1n) * denominator).toBe(true);
      }),
    );
  });
});

describe('allocating a repayment', () => {
  const schedule: InstallmentBalance[] = [
    { number: 1, principal: 78_849n, interest: 10_000n, paidPrincipal: 0n, paidInterest: 0n },
    { number: 2, principal: 79_637n, interest: 9_212n, paidPrincipal: 0n, paidInterest: 0n },
    { number: 3, principal: 80_434n, interest: 8_415n, paidPrincipal: 0n, paidInterest: 0n },
  ];

  it('pays interest before principal', () => {
    expect(allocatePayment(schedule, 5_000n)).toEqual([{ number: 1, principal: 0n, interest: 5_000n }]);
    expect(allocatePayment(schedule, 15_000n)).toEqual([{ number: 1, principal: 5_000n, interest: 10_000n }]);
  });

  it('pays the oldest unpaid installment first, and carries the rest to the next', () => {
    const partlyPaid = schedule.map((row) => (row.number === 1 ? { ...row, paidInterest: 10_000n, paidPrincipal: 78_000n } : row));
    expect(allocatePayment(partlyPaid, 10_000n)).toEqual([
      { number: 1, principal: 849n, interest: 0n },
      { number: 2, principal: 0n, interest: 9_151n },
    ]);
  });

  it('pays everything with exactly the outstanding total', () => {
    expect(outstandingTotal(schedule)).toBe(266_547n);
    const allocations = allocatePayment(schedule, 266_547n);
    expect(allocations.map((a) => [a.number, a.principal, a.interest])).toEqual(
      schedule.map((row) => [row.number, row.principal, row.interest]),
    );
  });

  it('never pays a part beyond what is owed, and spends the whole amount when it does not exceed the outstanding total', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 100n, max: 100_000_000n }),
        fc.integer({ min: 1, max: 60 }),
        fc.integer({ min: 0, max: 3600 }),
        fc.array(fc.bigInt({ min: 1n, max: 2_000_000n }), { maxLength: 8 }),
        (p, n, bp, payments) => {
          let balances: InstallmentBalance[] = amortize({ principal: p, annualRateBasisPoints: bp, termMonths: n }).map((row) => ({
            number: row.number,
            principal: row.principal,
            interest: row.interest,
            paidPrincipal: 0n,
            paidInterest: 0n,
          }));
          for (const amount of payments) {
            const outstanding = outstandingTotal(balances);
            if (amount > outstanding) continue;
            const allocations = allocatePayment(balances, amount);
            expect(allocations.reduce((sum, a) => sum + a.principal + a.interest, 0n)).toBe(amount);
            balances = balances.map((row) => {
              const paid = allocations.find((a) => a.number === row.number);
              return paid
                ? { ...row, paidPrincipal: row.paidPrincipal + paid.principal, paidInterest: row.paidInterest + paid.interest }
                : row;
            });
            for (const row of balances) {
              expect(row.paidPrincipal).toBeLessThanOrEqual(row.principal);
              expect(row.paidInterest).toBeLessThanOrEqual(row.interest);
            }
            expect(outstandingTotal(balances)).toBe(outstanding - amount);
          }
        },
      ),
    );
  });
});
