import { record, type Actor } from '../audit/record.js';
import type { Role, Tx, UserRow } from '../db/schema.js';
import { sqlState } from '../db/transaction.js';
import { DomainError } from '../http/errors.js';
import { findUserById, insertUser } from './repository.js';

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
  await record(tx, actor, { action: 'user.created', targetType: 'user', targetId: user.id, details: { email: user.email, role: user.role } });
  return user;
}

export async function getUser(tx: Tx, id: string): Promise<UserRow> {
  const user = await findUserById(tx, id);
  if (!user) throw new DomainError('user_not_found', 'No such user');
  return user;
}
