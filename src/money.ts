/**
 * Money is an integer number of minor units (cents) held in a `bigint`, from the request's edge to the
 * database's BIGINT column and back. Floating point never holds an amount.
 *
 * The one rounding rule of the service is ROUND HALF UP on a non-negative quotient (half a cent goes
 * up): `divideRoundHalfUp`. Parsing never rounds: an amount with more than two fraction digits is refused.
 */

export const MAX_AMOUNT = 99_999_999_999_999n; // 999999999999.99, the ceiling of docs/api.md, "Money"

// Digits, optionally a point and more digits: any decimal as written, so that each way of being wrong
// (too many fraction digits, too large, zero) gets its own message below.
const DECIMAL = /^(\d+)(?:\.(\d+))?$/;

export class InvalidAmountError extends Error {}

/**
 * Parses a request amount: a decimal string (`"12.5"`, `"12.50"`) or a JSON number. A JSON number
 * arrives here as a number only when its double holds the digits written (src/http/json-body.ts
 * hands over any other as its source text), so `String(n)` gives the digits the client sent.
 * Zero, negative, exponent notation, more than two fraction digits, blanks and values above
 * MAX_AMOUNT are refused, each with its own message.
 */
export function parseAmount(input: unknown): bigint {
  let text: string;
  if (typeof input === 'string') {
    text = input;
  } else if (typeof input === 'number' && Number.isFinite(input)) {
    text = String(input);
  } else {
    throw new InvalidAmountError('must be a decimal string or number');
  }
  if (/^-\d/.test(text)) throw new InvalidAmountError('must be greater than zero');
  const match = DECIMAL.exec(text);
  if (!match) throw new InvalidAmountError('must be a decimal amount with at most two decimal places, like "12.50"');
  const [, whole, fraction = ''] = match;
  if (fraction.length > 2) throw new InvalidAmountError('must have at most two decimal places');
  if (whole!.replace(/^0+/, '').length > 12) throw new InvalidAmountError('must not exceed 999999999999.99');
  const units = BigInt(whole!) * 100n + BigInt(fraction.padEnd(2, '0'));
  if (units === 0n) throw new InvalidAmountError('must be greater than zero');
  if (units > MAX_AMOUNT) throw new InvalidAmountError('must not exceed 999999999999.99');
  return units;
}

/** The inverse of parseAmount, for any sign: 1250n -> "12.50", -5n -> "-0.05". */
export function formatAmount(units: bigint): string {
  const sign = units < 0n ? '-' : '';
  const magnitude = units < 0n ? -units : units;
  const whole = magnitude / 100n;
  const cents = (magnitude % 100n).toString().padStart(2, '0');
  return `${sign}${whole}.${cents}`;
}

/** numerator / denominator rounded half up; both must be non-negative (money is never split below zero). */
export function divideRoundHalfUp(numerator: bigint, denominator: bigint): bigint {
  if (numerator < 0n || denominator <= 0n)
    throw new RangeError('divideRoundHalfUp takes a non-negative numerator and a positive denominator');
  return (numerator * 2n + denominator) / (denominator * 2n);
}
