import type { Redis } from 'ioredis';
import { sql } from 'kysely';
import type { Db } from '../db/schema.js';

/**
 * Login attempts per email, shared by every instance: in Redis when REDIS_URL is set, otherwise in the
 * database. Never in process memory, where each instance would count alone.
 *
 * An attempt is counted before its password is checked, in one atomic step, so that attempts sent at
 * once are all counted: of LOGIN_MAX_FAILURES attempts in a row, the last starts the lockout, and any
 * further one is refused unchecked until it runs out. A successful login resets the count and ends the
 * lockout, should its own attempt (the last one allowed) or a concurrent one have started it.
 */
export interface LoginThrottle {
  reserveAttempt(email: string): Promise<LoginAttempt>;
  /** A successful login: the count starts afresh. */
  reset(email: string): Promise<void>;
}

export type LoginAttempt =
  /** The password may be checked. `lockoutSeconds`: the lockout this attempt started (0: none), which holds unless it succeeds. */
  | { allowed: true; lockoutSeconds: number }
  /** Too many attempts: refused without a check, for `retryAfterSeconds` more. */
  | { allowed: false; retryAfterSeconds: number };

export interface LockoutPolicy {
  maxFailures: number;
  lockoutSeconds: number;
}

export class DatabaseLoginThrottle implements LoginThrottle {
  constructor(
    private readonly db: Db,
    private readonly policy: LockoutPolicy,
  ) {}

  async reserveAttempt(email: string): Promise<LoginAttempt> {
    const { maxFailures, lockoutSeconds } = this.policy;
    // One atomic upsert. The count starts afresh after a lockout has run out, or after a quiet spell as
    // long as the lockout (the Redis counter expires likewise), so only a burst of failures locks. A
    // lockout under way is kept as it is: refused attempts do not extend it.
    const stale = sql`(f.locked_until IS NOT NULL AND f.locked_until <= now())
      OR (f.locked_until IS NULL AND f.updated_at < now() - make_interval(secs => ${lockoutSeconds}))`;
    const attempts = sql`CASE WHEN ${stale} THEN 1 ELSE f.failures + 1 END`;
    const lockoutFromNow = sql`now() + make_interval(secs => ${lockoutSeconds})`;
    const { rows } = await sql<{ attempts: number; locked_seconds: number | null }>`
      INSERT INTO login_failures AS f (email, failures, locked_until)
      VALUES (${email}, 1, CASE WHEN 1 >= ${maxFailures}::int THEN ${lockoutFromNow} END)
      ON CONFLICT (email) DO UPDATE SET
        failures = ${attempts},
        locked_until = CASE WHEN ${attempts} >= ${maxFailures}::int THEN coalesce(CASE WHEN NOT (${stale}) THEN f.locked_until END, ${lockoutFromNow}) END,
        updated_at = now()
      RETURNING failures AS attempts, ceil(extract(epoch FROM locked_until - now()))::int AS locked_seconds`.execute(this.db);
    const row = rows[0]!;
    // now() is when the statement began, which may be before the lockout it then waited for had started.
    if (row.attempts > maxFailures)
      return { allowed: false, retryAfterSeconds: Math.min(lockoutSeconds, Math.max(1, row.locked_seconds!)) };
    return { allowed: true, lockoutSeconds: row.attempts === maxFailures ? lockoutSeconds : 0 };
  }

  async reset(email: string): Promise<void> {
    await this.db.deleteFrom('login_failures').where('email', '=', email).execute();
  }
}

/**
 * KEYS: the lockout, the counter. ARGV: LOGIN_MAX_FAILURES, the lockout in milliseconds. Answers
 * {1, lockout started (ms, 0 for none)} for an attempt allowed, {0, lockout left (ms)} for one refused.
 * The counter expires as long as a lockout after its last attempt, so only a burst locks. The attempt
 * that reaches the limit swaps the counter for the lockout, which refused attempts do not extend.
 */
const RESERVE_ATTEMPT = `
local left = redis.call('PTTL', KEYS[1])
if left > 0 then return {0, left} end
local attempts = redis.call('INCR', KEYS[2])
if attempts >= tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
  redis.call('DEL', KEYS[2])
  return {1, tonumber(ARGV[2])}
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return {1, 0}`;

export class RedisLoginThrottle implements LoginThrottle {
  constructor(
    private readonly redis: Redis,
    private readonly policy: LockoutPolicy,
  ) {}

  async reserveAttempt(email: string): Promise<LoginAttempt> {
    const { maxFailures, lockoutSeconds } = this.policy;
    const [allowed, milliseconds] = (await this.redis.eval(
      RESERVE_ATTEMPT,
      2,
      lockKey(email),
      counterKey(email),
      maxFailures,
      lockoutSeconds * 1000,
    )) as [number, number];
    const seconds = Math.ceil(milliseconds / 1000);
    return allowed === 1 ? { allowed: true, lockoutSeconds: seconds } : { allowed: false, retryAfterSeconds: seconds };
  }

  async reset(email: string): Promise<void> {
    await this.redis.del(counterKey(email), lockKey(email));
  }
}

const counterKey = (email: string) => `login:failures:${email}`;
const lockKey = (email: string) => `login:locked:${email}`;
