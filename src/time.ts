import { validationError } from './errors.js';

// Instants a client may name, and a cursor may carry: four-digit years of the common era, which every
// layer (JavaScript's Date, node-postgres, PostgreSQL's timestamptz) holds and prints the same way.
const EARLIEST_INSTANT = Date.parse('0001-01-01T00:00:00.000Z');
const LATEST_INSTANT = Date.parse('9999-12-31T23:59:59.999Z');

export function isHoldableInstant(instant: Date): boolean {
  const time = instant.getTime();
  return time >= EARLIEST_INSTANT && time <= LATEST_INSTANT;
}

/**
 * An ISO 8601 instant from a query, already checked as `date-time`, as a Date; a 422 naming the field
 * when JavaScript cannot represent it (a leap second, `:60`, which the format admits) or it is outside
 * the years 0001 to 9999.
 */
export function instantField(field: string, text: string): Date {
  const instant = new Date(text);
  if (Number.isNaN(instant.getTime()))
    throw validationError(field, 'is not an instant this service can hold (a leap second, :60, is not accepted)');
  if (!isHoldableInstant(instant)) throw validationError(field, 'must be between 0001-01-01 and 9999-12-31');
  return instant;
}
