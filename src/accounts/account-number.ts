import { randomInt } from 'node:crypto';
import { validationError } from '../errors.js';

/** The Luhn (mod 10) check digit of a string of digits. */
export function luhnCheckDigit(digits: string): string {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    // Doubling starts from the rightmost digit of the payload, which sits next to the check digit.
    let digit = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 0) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return String((10 - (sum % 10)) % 10);
}

export function isValidAccountNumber(value: string): boolean {
  return /^\d{10}$/.test(value) && luhnCheckDigit(value.slice(0, 9)) === value[9];
}

/** An account number a request names, or a 422 naming the field when its check digit is wrong. */
export function accountNumberField(field: string, value: string): string {
  if (!isValidAccountNumber(value)) throw validationError(field, 'is not a valid account number (Luhn check digit)');
  return value;
}

/**
 * Nine random digits from the CSPRNG (the first not zero, so numbers keep their length in any
 * spreadsheet) and a Luhn check digit: not a sequence anyone can guess. Collisions are resolved by the
 * database's unique key and a new draw.
 */
export function generateAccountNumber(): string {
  const payload = String(randomInt(100_000_000, 1_000_000_000));
  return payload + luhnCheckDigit(payload);
}
