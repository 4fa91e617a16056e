import { sql, type RawBuilder } from 'kysely';
import { validationError } from './errors.js';
import { isHoldableInstant } from './time.js';

/** A page of a listing, newest or oldest first by its keyset, and where the next one starts. */
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/**
 * Keyset cursors: the sort key of the last row of a page (a timestamp and a unique id), opaque to
 * clients. Unlike OFFSET, a keyset never skips or repeats a row when rows are inserted between pages.
 */
export interface Keyset {
  at: Date;
  id: string;
}

export function encodeCursor(key: Keyset): string {
  return Buffer.from(JSON.stringify([key.at.toISOString(), key.id])).toString('base64url');
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The keyset of a cursor that encodeCursor made, or a 422. Cursors are not signed, so every part is
 * checked as strictly as encodeCursor writes it: a two-element array, an instant that reads back as the
 * same text and that PostgreSQL holds, and a lowercase UUID. Anything a client forges past that is a
 * real position in the listing, which reveals nothing the listing does not.
 */
export function decodeCursor(cursor: string | undefined): Keyset | undefined {
  if (cursor === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  if (Array.isArray(parsed) && parsed.length === 2) {
    const [at, id] = parsed as unknown[];
    const date = typeof at === 'string' ? new Date(at) : undefined;
    if (date && isHoldableInstant(date) && date.toISOString() === at && typeof id === 'string' && UUID.test(id)) return { at: date, id };
  }
  throw validationError('cursor', 'is not a cursor this service issued');
}

/**
 * The rows after the cursor in the listing's order, as one row comparison, `(at, id) > (cursor)`,
 * which PostgreSQL answers from the (at, id) index.
 */
export function afterCursor(atColumn: string, idColumn: string, after: Keyset, order: 'asc' | 'desc'): RawBuilder<boolean> {
  const comparison = sql.raw(order === 'asc' ? '>' : '<');
  return sql<boolean>`(${sql.ref(atColumn)}, ${sql.ref(idColumn)}) ${comparison} (${after.at}::timestamptz, ${after.id}::uuid)`;
}

/** Turns limit+1 fetched rows into a page: the extra row only tells that another page exists. */
export function toPage<R, T>(rows: R[], limit: number, keyOf: (row: R) => Keyset, view: (row: R) => T): Page<T> {
  const hasMore = rows.length > limit;
  const pageRows = hasMore ? rows.slice(0, limit) : rows;
  const last = pageRows.at(-1);
  return { items: pageRows.map(view), next_cursor: hasMore && last ? encodeCursor(keyOf(last)) : null };
}
