import { sql } from 'kysely';
import type { Db } from '../db/schema.js';
import { validationError } from '../errors.js';
import { afterCursor, decodeCursor, toPage, type Page } from '../pagination.js';

export interface AuditEntryView {
  id: string;
  sequence: number | null;
  at: string;
  actor_id: string | null;
  actor_role: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  ip: string | null;
  request_id: string | null;
  details: unknown;
  prev_hash: string | null;
  hash: string | null;
}

export interface AuditFilter {
  actorId?: string;
  action?: string;
  targetType?: string;
  targetId?: string;
  /** Inclusive UTC dates, YYYY-MM-DD. */
  from?: string;
  to?: string;
  limit: number;
  cursor?: string;
}

/** Newest first by keyset (at, id). Entries not sealed yet show null sequence and hashes. */
export async function listAuditEntries(db: Db, filter: AuditFilter): Promise<Page<AuditEntryView>> {
  if (filter.from && filter.to && filter.from > filter.to) throw validationError('from', 'must not be after to');
  let query = db
    .selectFrom('audit_log as a')
    .leftJoin('audit_chain as c', 'c.entry_id', 'a.id')
    .select([
      'a.id',
      'a.at',
      'a.actor_id',
      'a.actor_role',
      'a.action',
      'a.target_type',
      'a.target_id',
      'a.ip',
      'a.request_id',
      'a.details',
      'c.sequence',
      'c.prev_hash',
      'c.hash',
    ]);
  if (filter.actorId) query = query.where('a.actor_id', '=', filter.actorId);
  if (filter.action) query = query.where('a.action', '=', filter.action);
  if (filter.targetType) query = query.where('a.target_type', '=', filter.targetType);
  if (filter.targetId) query = query.where('a.target_id', '=', filter.targetId);
  if (filter.from) query = query.where('a.at', '>=', sql<Date>`${filter.from}::date::timestamp AT TIME ZONE 'UTC'`);
  if (filter.to) query = query.where('a.at', '<', sql<Date>`(${filter.to}::date + 1)::timestamp AT TIME ZONE 'UTC'`);
  const after = decodeCursor(filter.cursor);
  if (after) query = query.where(afterCursor('a.at', 'a.id', after, 'desc'));
  const rows = await query
    .orderBy('a.at', 'desc')
    .orderBy('a.id', 'desc')
    .limit(filter.limit + 1)
    .execute();
  return toPage(
    rows,
    filter.limit,
    (row) => ({ at: row.at, id: row.id }),
    (row) => ({
      id: row.id,
      sequence: row.sequence === null ? null : Number(row.sequence),
      at: row.at.toISOString(),
      actor_id: row.actor_id,
      actor_role: row.actor_role,
      action: row.action,
      target_type: row.target_type,
      target_id: row.target_id,
      ip: row.ip,
      request_id: row.request_id,
      details: row.details,
      prev_hash: row.prev_hash,
      hash: row.hash,
    }),
  );
}
