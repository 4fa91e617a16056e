import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { parseAmount } from './money.js';

/**
 * The only reader of process.env and `.env`. Everything else receives a validated Config, so tests
 * build apps with any configuration side by side.
 */
export interface Config {
  nodeEnv: string;
  isProduction: boolean;
  port: number;
  host: string;
  databaseUrl: string | undefined;
  dataDir: string;
  redisUrl: string | undefined;
  jwtSecret: string;
  jwtAlgorithm: JwtAlgorithm;
  jwtExpirationSeconds: number;
  refreshExpirationSeconds: number;
  corsOrigins: string[];
  databasePoolSize: number;
  /** Group commit: transfers committed together at most, and batches committed at once (PostgreSQL). */
  transferBatchSize: number;
  transferBatchConcurrency: number;
  adminEmail: string | undefined;
  adminPassword: string | undefined;
  bcryptCost: number;
  currency: string;
  dailyTransferLimit: bigint;
  reviewThreshold: bigint;
  riskNewPayeeAmount: bigint;
  riskNewAccountAmount: bigint;
  riskNewAccountHours: number;
  riskVelocityCount: number;
  riskVelocityMinutes: number;
  rateLimitTransfersPerMinute: number;
  loginMaxFailures: number;
  loginLockoutMinutes: number;
  loanAnnualRate: string;
  statementMaxDays: number;
  bankName: string;
  logLevel: string;
  /** How often the background sealer extends the audit hash chain; 0 turns it off (benchmarks measure its cost). */
  auditSealerIntervalMs: number;
  /** Processes serving HTTP on the one port (Node's cluster module); above 1 only on PostgreSQL. */
  workers: number;
}

export const JWT_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

export class ConfigError extends Error {}

type Env = Record<string, string | undefined>;

function fail(name: string, accepts: string, value: string): never {
  throw new ConfigError(`${name} must be ${accepts} (got ${JSON.stringify(value)})`);
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) fail(name, `an integer from ${min} to ${max}`, raw);
  return Number(raw);
}

/** An amount variable; "0" is allowed where it turns a rule off. */
function amount(env: Env, name: string, fallback: string, allowZero: boolean): bigint {
  const raw = env[name] ?? fallback;
  if (allowZero && /^0+(\.0{1,2})?$/.test(raw)) return 0n;
  try {
    return parseAmount(raw);
  } catch {
    fail(name, `an amount like "${fallback}"${allowZero ? ' or 0 to turn it off' : ''}`, raw);
  }
}

function oneOf<T extends string>(env: Env, name: string, fallback: T, allowed: readonly T[]): T {
  const raw = env[name] ?? fallback;
  if (!(allowed as readonly string[]).includes(raw)) fail(name, `one of ${allowed.join(', ')}`, raw);
  return raw as T;
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    fail(name, `a URL (${protocols.join(' or ')})`, '<hidden>');
  }
  if (!protocols.includes(parsed.protocol)) fail(name, `a URL (${protocols.join(' or ')})`, parsed.protocol);
  return raw;
}

/** CORS stays off unless CORS_ORIGINS lists exact origins (comma-separated). */
function corsOrigins(env: Env): string[] {
  const raw = env.CORS_ORIGINS ?? '';
  const origins = raw
    .split(',')
    .map((origin) => origin.trim())
    .filter(Boolean);
  for (const origin of origins) {
    if (!/^https?:\/\/[^/\s]+$/.test(origin))
      fail('CORS_ORIGINS', 'a comma-separated list of origins like https://app.example.com', origin);
  }
  return origins;
}

/** Reads `.env` from the working directory; real environment variables win over it. */
export function readEnvironment(cwd = process.cwd()): Env {
  const file = join(cwd, '.env');
  const fromFile = existsSync(file) ? parseDotenv(readFileSync(file)) : {};
  return { ...fromFile, ...process.env };
}

/**
 * Outside production a missing JWT_SECRET is generated once and kept in DATA_DIR, so tokens survive a
 * restart; production must be given one.
 */
function resolveJwtSecret(env: Env, isProduction: boolean, dataDir: string): string {
  const given = env.JWT_SECRET;
  if (given !== undefined && given !== '') {
    // RFC 7518 §3.2: an HMAC key must be at least as long as the hash output.
    if (Buffer.byteLength(given) < 32) fail('JWT_SECRET', 'at least 32 bytes long', '<hidden>');
    return given;
  }
  if (isProduction) throw new ConfigError('JWT_SECRET must be set when NODE_ENV=production');
  const file = join(dataDir, 'jwt-secret');
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true });
    try {
      writeFileSync(file, randomBytes(48).toString('base64url') + '\n', { mode: 0o600, flag: 'wx' });
    } catch (error) {
      // Another process made it first: use theirs.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  const secret = readFileSync(file, 'utf8').trim();
  if (Buffer.byteLength(secret) < 32)
    throw new ConfigError(`${file} holds a JWT secret shorter than 32 bytes; delete it to have a new one generated`);
  return secret;
}

export function loadConfig(rawEnv: Env = readEnvironment()): Config {
  // `PORT=` in a .env file means the same as no PORT at all, for every variable alike.
  const env = Object.fromEntries(Object.entries(rawEnv).filter(([, value]) => value !== undefined && value !== ''));
  const nodeEnv = env.NODE_ENV ?? 'development';
  const isProduction = nodeEnv === 'production';
  const dataDir = resolve(env.DATA_DIR || './data');
  const currency = env.CURRENCY ?? 'USD';
  if (!/^[A-Z]{3}$/.test(currency)) fail('CURRENCY', 'an ISO 4217 code of three capital letters, like USD', currency);
  const host = env.HOST || '127.0.0.1';
  const adminEmail = env.ADMIN_EMAIL || undefined;
  if (adminEmail !== undefined && !/^[^@\s]+@[^@\s]+$/.test(adminEmail)) fail('ADMIN_EMAIL', 'an email address', adminEmail);
  const adminPassword = env.ADMIN_PASSWORD || undefined;
  if (adminPassword !== undefined && (Buffer.byteLength(adminPassword) < 8 || Buffer.byteLength(adminPassword) > 72)) {
    fail('ADMIN_PASSWORD', '8 to 72 bytes long', '<hidden>');
  }
  const databaseUrl = url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']);
  const workers = integer(env, 'WORKERS', 1, 1, 64);
  if (workers > 1 && !databaseUrl) fail('WORKERS', '1 without DATABASE_URL (the embedded database lives in one process)', String(workers));
  const bankName = env.BANK_NAME ?? 'Modular Bank';
  if (bankName.length > 100 || /[\p{Cc}]/u.test(bankName)) fail('BANK_NAME', 'a name of at most 100 characters on one line', bankName);
  const loanRate = env.LOAN_ANNUAL_RATE ?? '12.00';
  if (!/^\d{1,2}(\.\d{1,2})?$|^100(\.0{1,2})?$/.test(loanRate))
    fail('LOAN_ANNUAL_RATE', 'a percentage from 0 to 100 with at most two decimals', loanRate);

  return {
    nodeEnv,
    isProduction,
    port: integer(env, 'PORT', 8000, 0, 65535),
    host,
    databaseUrl,
    dataDir,
    redisUrl: url(env, 'REDIS_URL', ['redis:', 'rediss:']),
    jwtSecret: resolveJwtSecret(env, isProduction, dataDir),
    jwtAlgorithm: oneOf(env, 'JWT_ALGORITHM', 'HS256', JWT_ALGORITHMS),
    jwtExpirationSeconds: integer(env, 'JWT_EXPIRATION', 3600, 60, 86_400),
    refreshExpirationSeconds: integer(env, 'REFRESH_EXPIRATION', 14 * 86_400, 300, 365 * 86_400),
    corsOrigins: corsOrigins(env),
    databasePoolSize: integer(env, 'DATABASE_POOL_SIZE', 10, 1, 1000),
    transferBatchSize: integer(env, 'TRANSFER_BATCH_SIZE', 32, 1, 1000),
    transferBatchConcurrency: integer(env, 'TRANSFER_BATCH_CONCURRENCY', 1, 1, 100),
    adminEmail,
    adminPassword,
    bcryptCost: integer(env, 'BCRYPT_COST', 12, 4, 15),
    currency,
    dailyTransferLimit: amount(env, 'DAILY_TRANSFER_LIMIT', '20000.00', false),
    reviewThreshold: amount(env, 'REVIEW_THRESHOLD', '10000.00', false),
    riskNewPayeeAmount: amount(env, 'RISK_NEW_PAYEE_AMOUNT', '5000.00', true),
    riskNewAccountAmount: amount(env, 'RISK_NEW_ACCOUNT_AMOUNT', '2000.00', true),
    riskNewAccountHours: integer(env, 'RISK_NEW_ACCOUNT_HOURS', 24, 0, 8760),
    riskVelocityCount: integer(env, 'RISK_VELOCITY_COUNT', 20, 0, 100_000),
    riskVelocityMinutes: integer(env, 'RISK_VELOCITY_MINUTES', 60, 0, 10_080),
    rateLimitTransfersPerMinute: integer(env, 'RATE_LIMIT_TRANSFERS_PER_MINUTE', 30, 1, 100_000),
    loginMaxFailures: integer(env, 'LOGIN_MAX_FAILURES', 5, 1, 1000),
    loginLockoutMinutes: integer(env, 'LOGIN_LOCKOUT_MINUTES', 15, 1, 10_080),
    loanAnnualRate: loanRate,
    statementMaxDays: integer(env, 'STATEMENT_MAX_DAYS', 366, 1, 3660),
    bankName,
    logLevel: oneOf(env, 'LOG_LEVEL', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    auditSealerIntervalMs: integer(env, 'AUDIT_SEALER_INTERVAL_MS', 1000, 0, 3_600_000),
    workers,
  };
}
