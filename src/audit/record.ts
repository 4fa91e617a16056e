import type { Role, Tx } from '../db/schema.js';

/** Who did something, and from where: taken from the authenticated request, or `system` at start-up. */
export interface Actor {
  id: string | null;
  role: Role | 'system' | null;
  ip: string | null;
  requestId: string | null;
}

export const SYSTEM_ACTOR: Actor = { id: null, role: 'system', ip: null, requestId: null };

export interface AuditEntry {
  /** `domain.verb`, like `transfer.created`. */
  action: string;
  targetType?: string;
  targetId?: string | null;
  /** Facts worth keeping; never secrets or hashes; amounts as decimal strings. */
  details?: Record<string, unknown>;
}

/**
 * Appends one entry inside the caller's transaction, so the entry exists exactly when the change it
 * describes committed. The log is append-only in the database (triggers refuse UPDATE, DELETE, TRUNCATE).
 */
export async function record(tx: Tx, actor: Actor, entry: AuditEntry): Promise<void> {
  await tx
    .insertInto('audit_log')
    .values({
      actor_id: actor.id,
      actor_role: actor.role,
      action: entry.action,
      target_type: entry.targetType ?? null,
      target_id: entry.targetId ?? null,
      ip: actor.ip,
      request_id: actor.requestId,
      details: JSON.stringify(entry.details ?? {}),
    })
    .execute();
}
