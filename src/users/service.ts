import { sql } from 'kysely';
import { record, type Actor } from '../audit/record.js';
import type { Db, Role, Tx, UserRow } from '../db/schema.js';
import { afterCursor, decodeCursor, toPage, type Page } from '../pagination.js';
import { sqlState } from '../db/transaction.js';
import { DomainError } from '../errors.js';
import { findUserById, insertUser } from './repository.js';

// The lookups other domains make (auth: login, refresh, the first admin): through this service, never the repository.
export { adminExists, findUserByEmail, findUserById } from './repository.js';

/** The wire shape of a user: never the password hash. */
export interface UserView {
  id: string;
  name: string;
  email: string;
  role: Role;
  is_active: boolean;
  created_at: string;
}

export function toUserView(user: UserRow): UserView {
  return {
    id: user.id,
    name: user.name,
    email: user.email,
    role: user.role,
    is_active: user.is_active,
    created_at: user.created_at.toISOString(),
  };
}

export interface NewUser {
  name: string;
  email: string;
  passwordHash: string;
  role: Role;
}

export async function createUser(tx: Tx, actor: Actor, input: NewUser): Promise<UserRow> {
  let user: UserRow;
  try {
    user = await insertUser(tx, input);
  } catch (error) {
    if (sqlState(error) === '23505') throw new DomainError('email_taken', 'A user with this email already exists');
    throw error;
  }
  await record(tx, actor, {
    action: 'user.created',
    targetType: 'user',
    targetId: user.id,
    details: { email: user.email, role: user.role },
  });
  return user;
}

export async function getUser(tx: Tx, id: string): Promise<UserRow> {
  const user = await findUserById(tx, id);
  if (!user) throw new DomainError('user_not_found', 'No such user');
  return user;
}

/** Customers see only themselves; staff see everyone. Anyone else is not found. */
export async function getVisibleUser(db: Db, caller: Pick<UserRow, 'id' | 'role'>, id: string): Promise<UserRow> {
  const user = caller.role === 'customer' && caller.id !== id ? undefined : await findUserById(db, id);
  if (!user) throw new DomainError('not_found', 'No such user');
  return user;
}

export async function listUsers(db: Db, query: { role?: Role; limit: number; cursor?: string }): Promise<Page<UserView>> {
  let select = db.selectFrom('users').selectAll();
  if (query.role) select = select.where('role', '=', query.role);
  const after = decodeCursor(query.cursor);
  if (after) select = select.where(afterCursor('created_at', 'id', after, 'asc'));
  const rows = await select
    .orderBy('created_at')
    .orderBy('id')
    .limit(query.limit + 1)
    .execute();
  return toPage(rows, query.limit, (row) => ({ at: row.created_at, id: row.id }), toUserView);
}

/**
 * An admin renames, disables or re-enables a user. Disabling ends its sessions, logins in flight included
 * (database triggers: it revokes the sessions and bumps the credential version, migrations 0003 and 0016).
 */
export async function updateUser(tx: Tx, actor: Actor, id: string, patch: { name?: string; isActive?: boolean }): Promise<UserRow> {
  const before = await tx.selectFrom('users').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
  if (!before) throw new DomainError('not_found', 'No such user');
  if (patch.isActive === false && before.id === actor.id)
    throw new DomainError('validation_error', 'An admin cannot disable itself', {
      errors: [{ field: 'is_active', message: 'cannot disable yourself' }],
    });
  const user = await tx
    .updateTable('users')
    .set({
      ...(patch.name !== undefined ? { name: patch.name } : {}),
      ...(patch.isActive !== undefined ? { is_active: patch.isActive } : {}),
      updated_at: sql`now()`,
    })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
  const changes: Record<string, unknown> = {};
  if (patch.name !== undefined && patch.name !== before.name) changes.name = { from: before.name, to: patch.name };
  if (patch.isActive !== undefined && patch.isActive !== before.is_active)
    changes.is_active = { from: before.is_active, to: patch.isActive };
  const action = changes.is_active ? (patch.isActive ? 'user.enabled' : 'user.disabled') : 'user.updated';
  await record(tx, actor, { action, targetType: 'user', targetId: id, details: changes });
  return user;
}
