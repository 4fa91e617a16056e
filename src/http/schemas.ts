import { Type, type TSchema } from '@sinclair/typebox';
import { InvalidAmountError, parseAmount } from '../money.js';
import { ERROR_STATUS } from './errors.js';
import { validationError, type ErrorCode } from '../errors.js';

// A pattern, not just format: 'uuid', which also admits the urn:uuid: form that PostgreSQL refuses.
export const Uuid = Type.String({
  format: 'uuid',
  pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
  description: 'An opaque id (UUID)',
});
export const IdParams = Type.Object({ id: Uuid });

export const AccountNumber = Type.String({
  pattern: '^[0-9]{10}$',
  description: 'Ten digits, the last a Luhn check digit',
  examples: ['4532015112'],
});

// The string is judged by parseAmount, not by a length here: a too-long amount hears that it is too large.
export const AmountInput = Type.Union([Type.String(), Type.Number()], {
  description: 'A positive amount with at most two decimals, as a string ("12.50") or a JSON number; at most 999999999999.99',
  examples: ['100.00'],
});

export const Money = Type.String({
  pattern: '^-?[0-9]+\\.[0-9]{2}$',
  description: 'A decimal amount with two fraction digits',
  examples: ['5000.00'],
});
export const Timestamp = Type.String({ format: 'date-time' });

/**
 * A UTC calendar day in a query. The `date` format checks the month's days (leap years included); the
 * pattern refuses year 0000, which the format admits and PostgreSQL's date cannot hold.
 */
export const CalendarDay = Type.String({
  format: 'date',
  pattern: '^(?!0000)[0-9]{4}-',
  description: 'A UTC calendar day, YYYY-MM-DD',
  examples: ['2026-01-31'],
});

export const Currency = Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217 currency code', examples: ['USD'] });
export const Description = Type.String({ maxLength: 500 });

/** Turns a request amount into minor units, or a 422 naming the field. */
export function amountField(field: string, value: unknown): bigint {
  try {
    return parseAmount(value);
  } catch (error) {
    if (error instanceof InvalidAmountError) throw validationError(field, error.message);
    throw error;
  }
}

export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String({ description: 'A stable machine-readable error code' }),
    errors: Type.Optional(Type.Array(Type.Object({ field: Type.String(), message: Type.String() }))),
  },
  { $id: 'Problem', description: 'RFC 9457 problem details (application/problem+json)' },
);

const ProblemRef = Type.Unsafe<Record<string, unknown>>({ $ref: 'Problem#' });

/** Response schemas for the error statuses a route can answer, each described by its codes. */
export function errorResponses(...codes: ErrorCode[]): Record<number, TSchema> {
  const byStatus = new Map<number, string[]>();
  for (const code of codes) {
    const status = ERROR_STATUS[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return Object.fromEntries(
    [...byStatus].map(([status, list]) => [status, { ...ProblemRef, description: `Problem: ${[...new Set(list)].join(', ')}` }]),
  );
}
