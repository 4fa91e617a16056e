import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { SignJWT, type JWTPayload } from 'jose';
import { expect } from 'vitest';
import { luhnCheckDigit } from '../../src/accounts/account-number.js';
import { TEST_ENV, type Response, type TestApp } from '../helpers/app.js';

/** The test apps' JWT key: a forgery signed with it differs from a real token only in what a test changes. */
export const KEY = new TextEncoder().encode(TEST_ENV.JWT_SECRET);

/** A valid Luhn number that no account has: generated numbers never start with 0. */
export const NOBODY = `000000001${luhnCheckDigit('000000001')}`;

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

export function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export function sign(claims: JWTPayload, alg = 'HS256', key: Uint8Array = KEY, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT', ...header }).sign(key);
}

/** Every response the app gives from now on, so a test can check them all at the end. */
export function recordResponses(app: FastifyInstance): LightMyRequestResponse[] {
  const seen: LightMyRequestResponse[] = [];
  const inject = app.inject.bind(app);
  app.inject = (async (options: InjectOptions | string) => {
    const response = await inject(options as never);
    seen.push(response);
    return response;
  }) as FastifyInstance['inject'];
  return seen;
}

export function expectProblem(response: LightMyRequestResponse & { data?: any }, status: number, code: string): void {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  const data = response.data ?? JSON.parse(response.body);
  expect(data).toMatchObject({ status, code, type: expect.any(String), title: expect.any(String), detail: expect.any(String) });
}

export function expectUnauthorized(response: Response | LightMyRequestResponse): void {
  expectProblem(response, 401, 'unauthorized');
  expect(response.headers['www-authenticate']).toBe('Bearer');
}

/** A response must never carry a password hash or a stack trace. */
export function expectNoLeak(response: LightMyRequestResponse): void {
  const where = `${response.statusCode} ${response.body.slice(0, 300)}`;
  // A validation error may name a field the client itself sent, in its errors and its detail; nothing else may.
  const named = response.body.replaceAll('"field":"password_hash"', '').replaceAll('"detail":"password_hash is not an accepted field"', '');
  expect(named, where).not.toContain('password_hash');
  expect(response.body, where).not.toMatch(/\$2[aby]\$/);
  expect(response.body, where).not.toMatch(/\n\s{4}at /);
  expect(response.body, where).not.toMatch(/\bat .+\.(ts|js):\d+:\d+/);
}

/** The money picture: every balance and hold, and the number of transactions and journal entries. */
export async function ledgerSnapshot(
  bank: TestApp,
): Promise<{ balances: Map<string, string>; sum: bigint; transactions: number; entries: number }> {
  const db = bank.database.handle.db;
  const accounts = await db.selectFrom('accounts').select(['id', 'balance', 'held']).execute();
  const transactions = await db
    .selectFrom('transactions')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();
  const entries = await db
    .selectFrom('journal_entries')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();
  return {
    balances: new Map(accounts.map((a) => [a.id, `${a.balance}/${a.held}`])),
    sum: accounts.reduce((total, a) => total + BigInt(a.balance), 0n),
    transactions: Number(transactions.n),
    entries: Number(entries.n),
  };
}
