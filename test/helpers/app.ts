import { randomBytes } from 'node:crypto';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createTestDatabase, type TestDatabase } from './database.js';

export const ADMIN_EMAIL = 'admin@bank.test';
export const ADMIN_PASSWORD = 'admin-password-1';

/** The environment every test app starts from; a test overrides what it examines. */
export const TEST_ENV: Record<string, string> = {
  NODE_ENV: 'test',
  BCRYPT_COST: '4',
  JWT_SECRET: 'test-secret-that-is-at-least-32-bytes-long!',
  DATA_DIR: '/nonexistent-test-data-dir',
  LOG_LEVEL: 'silent',
};

/**
 * Only the amount threshold flags a transfer for review, at 500.00, so that a test makes transfers that
 * wait for review when it wants them (600.00) and no others (rate limit out of the way too).
 */
export const REVIEW_AT_500_ONLY: Record<string, string> = {
  RATE_LIMIT_TRANSFERS_PER_MINUTE: '100000',
  REVIEW_THRESHOLD: '500.00',
  RISK_NEW_PAYEE_AMOUNT: '0',
  RISK_NEW_ACCOUNT_AMOUNT: '0',
  RISK_VELOCITY_COUNT: '0',
};

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({ ...TEST_ENV, ...env });
}

export interface Response extends LightMyRequestResponse {
  /** The parsed JSON body (problem+json included). */
  data: any;
}

/** Calls the app over HTTP (inject), as one user. */
export class Client {
  constructor(
    readonly app: FastifyInstance,
    readonly token: string | undefined,
  ) {}

  async request(method: InjectOptions['method'], url: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
    const response = await this.app.inject({
      method,
      url,
      headers: { ...(this.token ? { authorization: `Bearer ${this.token}` } : {}), ...headers },
      ...(body === undefined ? {} : { payload: body as InjectOptions['payload'] }),
    });
    const type = String(response.headers['content-type'] ?? '');
    const data = /json/.test(type) && response.body ? JSON.parse(response.body) : undefined;
    return Object.assign(response, { data });
  }

  get(url: string, headers?: Record<string, string>) {
    return this.request('GET', url, undefined, headers);
  }
  post(url: string, body?: unknown, headers?: Record<string, string>) {
    return this.request('POST', url, body, headers);
  }
  patch(url: string, body?: unknown, headers?: Record<string, string>) {
    return this.request('PATCH', url, body, headers);
  }
}

export interface Customer extends Client {
  user: { id: string; email: string; name: string };
  password: string;
  /** The customer's first account, when one was opened. */
  account: { id: string; account_number: string; currency: string };
}

/** The app's clock, under the test's control: the real time until a test sets it. */
export interface TestClock {
  /** The time as the app reads it: for another app on the same database, to share this one's clock. */
  now: () => Date;
  set: (instant: Date | string) => void;
  reset: () => void;
}

export interface TestApp {
  app: FastifyInstance;
  clock: TestClock;
  config: Config;
  database: TestDatabase;
  admin: Client;
  anonymous: Client;
  /** A new customer (registered by the admin) with one account holding `initialDeposit`, if given. */
  customer(initialDeposit?: string, accountBody?: Record<string, unknown>): Promise<Customer>;
  /** A new user of any role, logged in. */
  user(role: 'customer' | 'admin' | 'auditor'): Promise<Client & { user: { id: string } }>;
  close(): Promise<void>;
}

let sequence = 0;

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface TestAppOptions {
  /** Keep rate-limit and lockout counters in Redis (under a key prefix of this app's own). */
  redis?: boolean;
}

// Closed (their databases dropped) once the test file is done. Registered here, when the file imports
// this module: an afterAll registered from inside a beforeAll, where files call testApp, never runs.
const openApps: TestApp[] = [];
afterAll(async () => {
  for (const app of openApps.splice(0)) await app.close();
});

/**
 * The whole service on a database of its own, built by the same buildApp as production. Closed after
 * the file's tests unless the test closes it first.
 */
export async function testApp(env: Record<string, string> = {}, options: TestAppOptions = {}): Promise<TestApp> {
  const database = await createTestDatabase();
  const config = testConfig(env);
  const redis = options.redis
    ? new Redis(TEST_REDIS_URL, { keyPrefix: `test:${randomBytes(6).toString('hex')}:`, maxRetriesPerRequest: 1 })
    : undefined;
  let fixedNow: Date | undefined;
  const clock: TestClock = {
    now: () => fixedNow ?? new Date(),
    set: (instant) => void (fixedNow = new Date(instant)),
    reset: () => void (fixedNow = undefined),
  };
  const app = await buildApp({ config, database: database.handle, logger: false, clock: clock.now, ...(redis ? { redis } : {}) });
  await app.auth.bootstrapAdmin(ADMIN_EMAIL, ADMIN_PASSWORD);
  const anonymous = new Client(app, undefined);
  const login = async (email: string, password: string) => {
    const response = await anonymous.post('/auth/login', { email, password });
    if (response.statusCode !== 200) throw new Error(`login failed: ${response.body}`);
    return response.data.access_token as string;
  };
  const admin = new Client(app, await login(ADMIN_EMAIL, ADMIN_PASSWORD));

  const register = async (role: 'customer' | 'admin' | 'auditor') => {
    const n = ++sequence;
    const email = `${role}${n}-${Math.random().toString(36).slice(2, 8)}@bank.test`;
    const password = `password-${n}`;
    const response = await admin.post('/auth/register', { name: `${role} ${n}`, email, password, role });
    if (response.statusCode !== 201) throw new Error(`register failed: ${response.body}`);
    return { user: response.data.user, token: response.data.access_token as string, password };
  };

  let closed = false;
  const testApp: TestApp = {
    app,
    clock,
    config,
    database,
    admin,
    anonymous,
    async customer(initialDeposit, accountBody = {}) {
      const { user, token, password } = await register('customer');
      const client = new Client(app, token) as Customer;
      client.user = user;
      client.password = password;
      const body = { ...(initialDeposit ? { initial_deposit: initialDeposit } : {}), ...accountBody };
      const opened = await admin.post(`/accounts/?user_id=${user.id}`, body);
      if (opened.statusCode !== 201) throw new Error(`open account failed: ${opened.body}`);
      client.account = opened.data;
      return client;
    },
    async user(role) {
      const { user, token } = await register(role);
      return Object.assign(new Client(app, token), { user });
    },
    async close() {
      if (closed) return;
      closed = true;
      await app.close();
      redis?.disconnect();
      await database.drop();
    },
  };
  openApps.push(testApp);
  return testApp;
}
