import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, readEnvironment } from '../../src/config.js';

const SECRET = 'a-test-secret-that-is-at-least-32-bytes-long';

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'bank-config-'));
  tempDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** An explicit environment: never process.env. A secret is given so that nothing is written to ./data. */
function load(env: Record<string, string | undefined> = {}) {
  return loadConfig({ JWT_SECRET: SECRET, ...env });
}

function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    load(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig defaults (README.md, Configuration)', () => {
  it('matches the documented table', () => {
    const config = load();
    expect(config).toMatchObject({
      nodeEnv: 'development',
      isProduction: false,
      port: 8000,
      host: '127.0.0.1',
      databaseUrl: undefined,
      redisUrl: undefined,
      jwtSecret: SECRET,
      jwtAlgorithm: 'HS256',
      jwtExpirationSeconds: 3600,
      adminEmail: undefined,
      adminPassword: undefined,
      bcryptCost: 12,
      currency: 'USD',
      dailyTransferLimit: 2_000_000n,
      reviewThreshold: 1_000_000n,
      riskNewPayeeAmount: 500_000n,
      riskNewAccountAmount: 200_000n,
      riskNewAccountHours: 24,
      riskVelocityCount: 20,
      riskVelocityMinutes: 60,
      rateLimitTransfersPerMinute: 30,
      loginMaxFailures: 5,
      loginLockoutMinutes: 15,
      loanAnnualRate: '12.00',
    });
    expect(config.dataDir).toBe(join(process.cwd(), 'data'));
  });

  it('reads the documented variables', () => {
    const dir = tempDir();
    const config = load({
      PORT: '9001',
      HOST: '0.0.0.0',
      DATABASE_URL: 'postgresql://user@db:5432/bank',
      DATA_DIR: dir,
      REDIS_URL: 'redis://cache:6379',
      JWT_ALGORITHM: 'HS512',
      JWT_EXPIRATION: '900',
      ADMIN_EMAIL: 'boss@bank.test',
      ADMIN_PASSWORD: 'boss-password-1',
      BCRYPT_COST: '4',
      CURRENCY: 'EUR',
      DAILY_TRANSFER_LIMIT: '500',
      REVIEW_THRESHOLD: '250.5',
      RISK_NEW_PAYEE_AMOUNT: '100.00',
      RISK_NEW_ACCOUNT_AMOUNT: '50',
      RISK_NEW_ACCOUNT_HOURS: '48',
      RISK_VELOCITY_COUNT: '3',
      RISK_VELOCITY_MINUTES: '10',
      RATE_LIMIT_TRANSFERS_PER_MINUTE: '7',
      LOGIN_MAX_FAILURES: '3',
      LOGIN_LOCKOUT_MINUTES: '1',
      LOAN_ANNUAL_RATE: '7.5',
      NODE_ENV: 'test',
    });
    expect(config).toMatchObject({
      nodeEnv: 'test',
      port: 9001,
      host: '0.0.0.0',
      databaseUrl: 'postgresql://user@db:5432/bank',
      dataDir: dir,
      redisUrl: 'redis://cache:6379',
      jwtAlgorithm: 'HS512',
      jwtExpirationSeconds: 900,
      adminEmail: 'boss@bank.test',
      adminPassword: 'boss-password-1',
      bcryptCost: 4,
      currency: 'EUR',
      dailyTransferLimit: 50_000n,
      reviewThreshold: 25_050n,
      riskNewPayeeAmount: 10_000n,
      riskNewAccountAmount: 5_000n,
      riskNewAccountHours: 48,
      riskVelocityCount: 3,
      riskVelocityMinutes: 10,
      rateLimitTransfersPerMinute: 7,
      loginMaxFailures: 3,
      loginLockoutMinutes: 1,
      loanAnnualRate: '7.5',
    });
  });
});

describe('loadConfig refuses bad values with a message naming the variable and what it accepts', () => {
  it.each([
    ['PORT', 'abc', /^PORT must be an integer from 0 to 65535 \(got "abc"\)$/],
    ['PORT', '70000', /^PORT must be an integer from 0 to 65535/],
    ['BCRYPT_COST', '99', /^BCRYPT_COST must be an integer from 4 to 15 \(got "99"\)$/],
    ['CURRENCY', 'usd1', /^CURRENCY must be an ISO 4217 code.*\(got "usd1"\)$/],
    ['CURRENCY', 'usd', /^CURRENCY must be/],
    ['JWT_ALGORITHM', 'none', /^JWT_ALGORITHM must be one of HS256, HS384, HS512 \(got "none"\)$/],
    ['DATABASE_URL', 'mysql://x', /^DATABASE_URL must be a URL \(postgres: or postgresql:\)/],
    ['DATABASE_URL', 'not a url', /^DATABASE_URL must be a URL/],
    ['REDIS_URL', 'http://cache', /^REDIS_URL must be a URL \(redis: or rediss:\)/],
    ['RISK_VELOCITY_COUNT', '-1', /^RISK_VELOCITY_COUNT must be an integer from 0 to \d+ \(got "-1"\)$/],
    ['DAILY_TRANSFER_LIMIT', '1.234', /^DAILY_TRANSFER_LIMIT must be an amount like "20000.00" \(got "1.234"\)$/],
    ['DAILY_TRANSFER_LIMIT', '0', /^DAILY_TRANSFER_LIMIT must be an amount/],
    ['REVIEW_THRESHOLD', 'ten', /^REVIEW_THRESHOLD must be an amount/],
    ['RISK_NEW_PAYEE_AMOUNT', '-5', /^RISK_NEW_PAYEE_AMOUNT must be an amount like "5000.00" or 0 to turn it off/],
    ['JWT_EXPIRATION', '1.5', /^JWT_EXPIRATION must be an integer/],
    ['LOAN_ANNUAL_RATE', '101', /^LOAN_ANNUAL_RATE must be a percentage/],
    ['ADMIN_EMAIL', 'not-an-email', /^ADMIN_EMAIL must be an email address/],
    ['ADMIN_PASSWORD', 'short', /^ADMIN_PASSWORD must be 8 to 72 bytes long/],
    ['LOG_LEVEL', 'loud', /^LOG_LEVEL must be one of/],
    ['WORKERS', '0', /^WORKERS must be an integer from 1 to 64 \(got "0"\)$/],
    ['WORKERS', '2', /^WORKERS must be 1 without DATABASE_URL \(the embedded database lives in one process\) \(got "2"\)$/],
  ])('%s=%j', (name, value, message) => {
    const error = configError({ [name]: value });
    expect(error.message).toMatch(message);
  });

  it('takes WORKERS above 1 on PostgreSQL', () => {
    expect(load({ WORKERS: '2', DATABASE_URL: 'postgres://root@127.0.0.1:5432/bank' }).workers).toBe(2);
    expect(load({}).workers).toBe(1);
  });

  it('does not echo a malformed DATABASE_URL, which may hold a password', () => {
    const error = configError({ DATABASE_URL: 'postgres//root:hunter2@db' });
    expect(error.message).not.toContain('hunter2');
  });

  it('requires JWT_SECRET when NODE_ENV=production', () => {
    const error = configError({ NODE_ENV: 'production', JWT_SECRET: undefined, DATA_DIR: tempDir() });
    expect(error.message).toContain('JWT_SECRET');
  });

  it('refuses a JWT_SECRET shorter than 32 bytes, without echoing it', () => {
    const error = configError({ JWT_SECRET: 'too-short-secret-31-bytes-long!' });
    expect(error.message).toMatch(/^JWT_SECRET must be at least 32 bytes long/);
    expect(error.message).not.toContain('too-short');
    // 32 bytes exactly is enough, in production too.
    expect(load({ JWT_SECRET: 'x'.repeat(32), NODE_ENV: 'production' }).jwtSecret).toBe('x'.repeat(32));
  });
});

describe('loadConfig: "0" turns a risk rule off', () => {
  it.each(['0', '0.00', '00'])('RISK_*_AMOUNT=%j', (zero) => {
    const config = load({ RISK_NEW_PAYEE_AMOUNT: zero, RISK_NEW_ACCOUNT_AMOUNT: zero });
    expect(config.riskNewPayeeAmount).toBe(0n);
    expect(config.riskNewAccountAmount).toBe(0n);
  });

  it('RISK_VELOCITY_COUNT=0 and RISK_NEW_ACCOUNT_HOURS=0', () => {
    const config = load({ RISK_VELOCITY_COUNT: '0', RISK_NEW_ACCOUNT_HOURS: '0' });
    expect(config.riskVelocityCount).toBe(0);
    expect(config.riskNewAccountHours).toBe(0);
  });
});

describe('the generated development JWT secret', () => {
  it('is written once to DATA_DIR/jwt-secret with mode 0600 and reused on the next load', () => {
    const dir = join(tempDir(), 'nested', 'data');
    const first = loadConfig({ DATA_DIR: dir });
    expect(Buffer.byteLength(first.jwtSecret)).toBeGreaterThanOrEqual(32);
    const file = join(dir, 'jwt-secret');
    expect(readFileSync(file, 'utf8').trim()).toBe(first.jwtSecret);
    if (process.platform !== 'win32') expect(statSync(file).mode & 0o777).toBe(0o600);

    const second = loadConfig({ DATA_DIR: dir, NODE_ENV: 'test' });
    expect(second.jwtSecret).toBe(first.jwtSecret);
  });

  it('differs between data directories', () => {
    const a = loadConfig({ DATA_DIR: tempDir() });
    const b = loadConfig({ DATA_DIR: tempDir() });
    expect(a.jwtSecret).not.toBe(b.jwtSecret);
  });

  it('is not used when JWT_SECRET is given, and nothing is written', () => {
    const dir = tempDir();
    expect(loadConfig({ DATA_DIR: dir, JWT_SECRET: SECRET }).jwtSecret).toBe(SECRET);
    expect(() => statSync(join(dir, 'jwt-secret'))).toThrow();
  });
});

describe('readEnvironment', () => {
  it('reads .env in the given directory, and the real environment wins over it', () => {
    const dir = tempDir();
    const suffix = `${process.pid}_${Date.now()}`;
    const fromFileOnly = `BANK_TEST_FILE_ONLY_${suffix}`;
    const overridden = `BANK_TEST_OVERRIDDEN_${suffix}`;
    writeFileSync(join(dir, '.env'), `${fromFileOnly}=from-file\n${overridden}=from-file\n# a comment\nQUOTED_${suffix}="a b"\n`);
    const saved = process.env[overridden];
    process.env[overridden] = 'from-process';
    try {
      const env = readEnvironment(dir);
      expect(env[fromFileOnly]).toBe('from-file');
      expect(env[`QUOTED_${suffix}`]).toBe('a b');
      expect(env[overridden]).toBe('from-process');
    } finally {
      if (saved === undefined) delete process.env[overridden];
      else process.env[overridden] = saved;
    }
  });

  it('works without a .env file', () => {
    const dir = tempDir();
    const env = readEnvironment(dir);
    expect(env.PATH).toBe(process.env.PATH);
  });
});
