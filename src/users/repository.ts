import type { Db, Role, Tx, UserRow } from '../db/schema.js';

export function findUserByEmail(db: Db | Tx, email: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('email', '=', email.toLowerCase()).executeTakeFirst();
}

export function findUserById(db: Db | Tx, id: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
}

export function insertUser(tx: Tx, user: { name: string; email: string; passwordHash: string; role: Role }): Promise<UserRow> {
  return tx
    .insertInto('users')
    .values({ name: user.name, email: user.email.toLowerCase(), password_hash: user.passwordHash, role: user.role })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function adminExists(db: Db | Tx): Promise<boolean> {
  const row = await db.selectFrom('users').select('id').where('role', '=', 'admin').limit(1).executeTakeFirst();
  return row !== undefined;
}
