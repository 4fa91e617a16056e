import type { Redis } from 'ioredis';
import { sql } from 'kysely';
import type { Db } from '../db/schema.js';

/**
 * Consecutive failed logins per email, shared by every instance: in Redis when REDIS_URL is set,
 * otherwise in the database. Never in process memory, where each instance would count alone.
 */
export interface LoginThrottle {
  /** Seconds until the email may try again, or 0 when it is not locked. */
  lockedFor(email: string): Promise<number>;
  /** Counts a failure; returns the seconds of lockout it started, or 0. */
  recordFailure(email: string): Promise<number>;
  reset(email: string): Promise<void>;
}

export interface LockoutPolicy {
  maxFailures: number;
  lockoutSeconds: number;
}

export class DatabaseLoginThrottle implements LoginThrottle {
  constructor(
    private readonly db: Db,
    private readonly policy: LockoutPolicy,
  ) {}

  async lockedFor(email: string): Promise<number> {
    const row = await this.db
      .selectFrom('login_failures')
      .select(sql<number>`ceil(extract(epoch FROM locked_until - now()))::int`.as('seconds'))
      .where('email', '=', email)
      .where('locked_until', '>', sql<Date>`now()`)
      .executeTakeFirst();
    return row ? Math.max(1, row.seconds) : 0;
  }

  async recordFailure(email: string): Promise<number> {
    const { maxFailures, lockoutSeconds } = this.policy;
    // One atomic upsert. The count starts afresh after a lockout has run out, or after a quiet spell as
    // long as the lockout (the Redis counter expires likewise), so only a burst of failures locks.
    const stale = sql`(f.locked_until IS NOT NULL AND f.locked_until <= now())
      OR (f.locked_until IS NULL AND f.updated_at < now() - make_interval(secs => ${lockoutSeconds}))`;
    const failures = sql`CASE WHEN ${stale} THEN 1 ELSE f.failures + 1 END`;
    const row = await sql<{ locked: boolean }>`
      INSERT INTO login_failures AS f (email, failures, locked_until)
      VALUES (${email}, 1, CASE WHEN 1 >= ${maxFailures}::int THEN now() + make_interval(secs => ${lockoutSeconds}) END)
      ON CONFLICT (email) DO UPDATE SET
        failures = ${failures},
        locked_until = CASE WHEN ${failures} >= ${maxFailures}::int THEN now() + make_interval(secs => ${lockoutSeconds}) END,
        updated_at = now()
      RETURNING locked_until IS NOT NULL AS locked`.execute(this.db);
    return row.rows[0]!.locked ? lockoutSeconds : 0;
  }

  async reset(email: string): Promise<void> {
    await this.db.deleteFrom('login_failures').where('email', '=', email).execute();
  }
}

export class RedisLoginThrottle implements LoginThrottle {
  constructor(
    private readonly redis: Redis,
    private readonly policy: LockoutPolicy,
  ) {}

  async lockedFor(email: string): Promise<number> {
    const ttl = await this.redis.pttl(`login:locked:${email}`);
    return ttl > 0 ? Math.ceil(ttl / 1000) : 0;
  }

  async recordFailure(email: string): Promise<number> {
    const { maxFailures, lockoutSeconds } = this.policy;
    const counter = `login:failures:${email}`;
    const [[, failures]] = (await this.redis.multi().incr(counter).expire(counter, lockoutSeconds).exec()) as [[null, number]];
    if (failures < maxFailures) return 0;
    await this.redis.multi().set(`login:locked:${email}`, '1', 'EX', lockoutSeconds).del(counter).exec();
    return lockoutSeconds;
  }

  async reset(email: string): Promise<void> {
    await this.redis.del(`login:failures:${email}`);
  }
}
