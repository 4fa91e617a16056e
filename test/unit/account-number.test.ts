import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateAccountNumber, isValidAccountNumber, luhnCheckDigit } from '../../src/accounts/account-number.js';

/** Nine digits, the first not zero: the payload of an account number. */
const payload = fc
  .tuple(fc.integer({ min: 1, max: 9 }), fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 8, maxLength: 8 }))
  .map(([first, rest]) => [first, ...rest].join(''));
const validNumber = payload.map((digits) => digits + luhnCheckDigit(digits));

describe('luhnCheckDigit', () => {
  it.each([
    ['7992739871', '3'], // 79927398713, the textbook example
    ['411111111111111', '1'], // 4111 1111 1111 1111
    ['453914880343646', '7'], // 4539 1488 0343 6467
    ['37828224631000', '5'], // 3782 822463 10005
    ['601111111111111', '7'], // 6011 1111 1111 1117
    ['123456781234567', '0'], // 1234 5678 1234 5670
    ['', '0'],
    ['0', '0'],
    ['1', '8'],
    ['9', '1'],
  ])('of %j is %s', (digits, expected) => {
    expect(luhnCheckDigit(digits)).toBe(expected);
  });
});

describe('isValidAccountNumber', () => {
  it('accepts numbers made of a payload and its check digit', () => {
    fc.assert(
      fc.property(validNumber, (number) => {
        expect(isValidAccountNumber(number)).toBe(true);
      }),
    );
  });

  it('accepts generated numbers', () => {
    for (let i = 0; i < 1000; i++) expect(isValidAccountNumber(generateAccountNumber())).toBe(true);
  });

  it('rejects any change of a single digit', () => {
    fc.assert(
      fc.property(validNumber, fc.integer({ min: 0, max: 9 }), fc.integer({ min: 1, max: 9 }), (number, position, delta) => {
        const changed = (Number(number[position]) + delta) % 10;
        const altered = number.slice(0, position) + changed + number.slice(position + 1);
        expect(altered).not.toBe(number);
        expect(isValidAccountNumber(altered)).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it('rejects a transposition of two adjacent distinct digits, except 09 and 90', () => {
    fc.assert(
      fc.property(validNumber, fc.integer({ min: 0, max: 8 }), (number, position) => {
        const a = number[position]!;
        const b = number[position + 1]!;
        fc.pre(a !== b);
        const swapped = number.slice(0, position) + b + a + number.slice(position + 2);
        const undetectable = (a === '0' && b === '9') || (a === '9' && b === '0');
        expect(isValidAccountNumber(swapped)).toBe(undetectable);
      }),
      { numRuns: 2000 },
    );
  });

  it('still accepts 09 <-> 90 transpositions (the known blind spot of Luhn)', () => {
    const base = '109000000';
    const number = base + luhnCheckDigit(base);
    const swapped = '190000000' + number[9];
    expect(isValidAccountNumber(number)).toBe(true);
    expect(isValidAccountNumber(swapped)).toBe(true);
  });

  it.each(['', '123456789', '12345678903', '79927398713', '12345a7890', ' 1234567890', '１２３４５６７８９０', '-123456789'])(
    'rejects %j, which is not ten digits with a valid check digit',
    (value) => {
      expect(isValidAccountNumber(value)).toBe(false);
    },
  );
});

describe('generateAccountNumber', () => {
  const draws = Array.from({ length: 1000 }, () => generateAccountNumber());

  it('gives ten digits without a leading zero', () => {
    for (const number of draws) expect(number).toMatch(/^[1-9]\d{9}$/);
  });

  it('is not sequential: 1000 draws are spread out, unordered and (practically) distinct', () => {
    const payloads = draws.map((number) => Number(number.slice(0, 9)));
    // Consecutive draws are never neighbours (chance of a false alarm: about 2e-5).
    for (let i = 1; i < payloads.length; i++) expect(Math.abs(payloads[i]! - payloads[i - 1]!)).toBeGreaterThan(10);
    // Neither increasing nor decreasing.
    const ups = payloads.slice(1).filter((value, i) => value > payloads[i]!).length;
    expect(ups).toBeGreaterThan(350);
    expect(ups).toBeLessThan(650);
    // 9e8 possible payloads: a collision among 1000 draws has a chance below 1e-3; allow a few.
    expect(new Set(draws).size).toBeGreaterThanOrEqual(995);
    // Every leading digit 1-9 appears.
    expect(new Set(draws.map((number) => number[0])).size).toBe(9);
  });
});
