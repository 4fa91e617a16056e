import { afterAll } from 'vitest';
import { buildApp } from '../../src/app.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD, Client, testConfig, type Customer, type TestApp } from './app.js';
import { createTestDatabase } from './database.js';

/** The app's clock, under the test's control: the real time until a test sets it. */
export interface TestClock {
  set(instant: Date | string): void;
  reset(): void;
}

export interface ClockedTestApp extends TestApp {
  clock: TestClock;
}

let sequence = 0;

/**
 * testApp (helpers/app.ts) with a clock the test moves: the same buildApp as production on a database
 * of its own, given a `clock` dependency. Closed after the file's tests unless the test closes it first.
 */
export async function testAppWithClock(env: Record<string, string> = {}): Promise<ClockedTestApp> {
  let fixed: Date | undefined;
  const clock: TestClock = {
    set: (instant) => void (fixed = new Date(instant)),
    reset: () => void (fixed = undefined),
  };
  const database = await createTestDatabase();
  const config = testConfig(env);
  const app = await buildApp({ config, database: database.handle, logger: false, clock: () => fixed ?? new Date() });
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
    const email = `loans-${role}${n}-${Math.random().toString(36).slice(2, 8)}@bank.test`;
    const password = `password-${n}`;
    const response = await admin.post('/auth/register', { name: `${role} ${n}`, email, password, role });
    if (response.statusCode !== 201) throw new Error(`register failed: ${response.body}`);
    return { user: response.data.user, token: response.data.access_token as string, password };
  };

  let closed = false;
  const bank: ClockedTestApp = {
    app,
    config,
    database,
    admin,
    anonymous,
    clock,
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
      await database.drop();
    },
  };
  afterAll(() => bank.close());
  return bank;
}
