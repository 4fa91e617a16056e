import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { divideRoundHalfUp, formatAmount, InvalidAmountError, MAX_AMOUNT, parseAmount } from '../../src/money.js';

describe('parseAmount', () => {
  it.each([
    ['0.01', 1n],
    ['999999999999.99', 99_999_999_999_999n],
    ['12.5', 1250n],
    ['12.50', 1250n],
    ['1', 100n],
    ['0.10', 10n],
  ])('parses the string %j to %s minor units', (input, expected) => {
    expect(parseAmount(input)).toBe(expected);
  });

  it.each([
    [12.5, 1250n],
    [1000, 100_000n],
    [0.01, 1n],
    [999_999_999_999.99, 99_999_999_999_999n],
  ])('parses the number %s to %s minor units', (input, expected) => {
    expect(parseAmount(input)).toBe(expected);
  });

  it.each([
    ['1000000000000.00', 'above the ceiling'],
    ['0.001', 'three fraction digits'],
    ['1e3', 'exponent notation'],
    [' 5', 'a leading blank'],
    ['5 ', 'a trailing blank'],
    ['5,00', 'a decimal comma'],
    ['0', 'zero'],
    ['0.00', 'zero with fraction digits'],
    ['-1', 'a negative amount'],
    ['', 'an empty string'],
    ['.5', 'no integer digit'],
    ['5.', 'no fraction digit after the point'],
    ['+5', 'a plus sign'],
    ['１２', 'full-width digits'],
    ['0x10', 'hexadecimal'],
    ['abc', 'no digits at all'],
  ])('refuses the string %j (%s)', (input) => {
    expect(() => parseAmount(input)).toThrow(InvalidAmountError);
  });

  it.each([
    [-0, '-0'],
    [0.1 + 0.2, '0.1 + 0.2'],
    [Number.NaN, 'NaN'],
    [Number.POSITIVE_INFINITY, 'Infinity'],
    [Number.NEGATIVE_INFINITY, '-Infinity'],
    [0, 'zero'],
    [-1, 'a negative number'],
    [0.001, 'three fraction digits'],
    [1e21, 'a number printed in exponent notation'],
    [1_000_000_000_000, 'above the ceiling'],
  ])('refuses the number %s (%s)', (input) => {
    expect(() => parseAmount(input)).toThrow(InvalidAmountError);
  });

  it.each<[unknown, string]>([
    [null, 'null'],
    [undefined, 'undefined'],
    [{}, 'an object'],
    [true, 'a boolean'],
    [[5], 'an array'],
    [5n, 'a bigint'],
  ])('refuses %s (%s)', (input) => {
    expect(() => parseAmount(input)).toThrow(InvalidAmountError);
  });
  it.each<[unknown, string]>([
    ['1000000000000.00', 'must not exceed 999999999999.99'],
    ['1234567890123456789012345678901', 'must not exceed 999999999999.99'],
    ['10.000000000000000001', 'must have at most two decimal places'],
    ['0.001', 'must have at most two decimal places'],
    ['-5.00', 'must be greater than zero'],
    ['0.00', 'must be greater than zero'],
    [-0, 'must be greater than zero'],
    ['1e3', 'must be a decimal amount with at most two decimal places, like "12.50"'],
    ['abc', 'must be a decimal amount with at most two decimal places, like "12.50"'],
    [true, 'must be a decimal string or number'],
  ])('tells what is wrong with %j: %s', (input, message) => {
    expect(() => parseAmount(input)).toThrow(message);
  });
});

describe('formatAmount', () => {
  it.each([
    [0n, '0.00'],
    [5n, '0.05'],
    [-5n, '-0.05'],
    [123_456n, '1234.56'],
    [1250n, '12.50'],
    [100n, '1.00'],
    [-123_456n, '-1234.56'],
    [MAX_AMOUNT, '999999999999.99'],
  ])('formats %s as %j', (units, expected) => {
    expect(formatAmount(units)).toBe(expected);
  });

  it('round-trips: parseAmount(formatAmount(x)) === x for every positive amount', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: MAX_AMOUNT }), (units) => {
        expect(parseAmount(formatAmount(units))).toBe(units);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('divideRoundHalfUp', () => {
  it.each([
    [5n, 10n, 1n],
    [4n, 10n, 0n],
    [15n, 10n, 2n],
    [25n, 10n, 3n],
    [149n, 100n, 1n],
    [150n, 100n, 2n],
    [0n, 7n, 0n],
    [10n, 5n, 2n],
    [1n, 3n, 0n],
    [2n, 3n, 1n],
  ])('%s / %s rounds half up to %s', (numerator, denominator, expected) => {
    expect(divideRoundHalfUp(numerator, denominator)).toBe(expected);
  });

  it('agrees with floor(n / d + 1/2) for any non-negative numerator and positive denominator', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 18n }), fc.bigInt({ min: 1n, max: 10n ** 9n }), (n, d) => {
        const q = divideRoundHalfUp(n, d);
        // q is the nearest integer with ties going up: q - 1/2 <= n/d < q + 1/2.
        expect(2n * n >= (2n * q - 1n) * d).toBe(true);
        expect(2n * n < (2n * q + 1n) * d).toBe(true);
      }),
    );
  });

  it('refuses a negative numerator', () => {
    expect(() => divideRoundHalfUp(-1n, 10n)).toThrow(RangeError);
  });

  it('refuses a zero or negative denominator', () => {
    expect(() => divideRoundHalfUp(5n, 0n)).toThrow(RangeError);
    expect(() => divideRoundHalfUp(5n, -10n)).toThrow(RangeError);
  });
});
