import { beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_EMAIL, ADMIN_PASSWORD, testApp, type TestApp } from './helpers/app.js';

describe('the five use cases of the original design', () => {
  let bank: TestApp;
  beforeAll(async () => {
    bank = await testApp();
  });

  it('walks login, register, open account, list accounts and transfer end to end', async () => {
    const login = await bank.anonymous.post('/auth/login', { email: ADMIN_EMAIL, password: ADMIN_PASSWORD });
    expect(login.statusCode).toBe(200);
    expect(login.data).toMatchObject({ token_type: 'bearer', expires_in: 3600, user: { email: ADMIN_EMAIL, role: 'admin' } });

    const registered = await bank.admin.post('/auth/register', { name: 'Alice', email: 'Alice@Example.com', password: 'correct horse' });
    expect(registered.statusCode).toBe(201);
    expect(registered.data.user).toMatchObject({ name: 'Alice', email: 'alice@example.com', role: 'customer', is_active: true });
    expect(registered.data.access_token).toEqual(expect.any(String));
    const alice = registered.data.user;

    const opened = await bank.admin.post(`/accounts/?user_id=${alice.id}`, { initial_deposit: '5000.00' });
    expect(opened.statusCode).toBe(201);
    expect(opened.data).toMatchObject({
      user_id: alice.id,
      type: 'checking',
      currency: 'USD',
      balance: '5000.00',
      available_balance: '5000.00',
      daily_limit: '20000.00',
      status: 'active',
    });
    expect(opened.data.account_number).toMatch(/^\d{10}$/);

    const bob = await bank.customer();
    const aliceLogin = await bank.anonymous.post('/auth/login', { email: 'alice@example.com', password: 'correct horse' });
    const asAlice = { authorization: `Bearer ${aliceLogin.data.access_token}` };

    const listed = await bank.anonymous.get('/accounts/', asAlice);
    expect(listed.statusCode).toBe(200);
    expect(listed.data.items).toHaveLength(1);
    expect(listed.data.next_cursor).toBeNull();

    const sent = await bank.anonymous.post(
      '/transactions/transfer',
      { from_account: opened.data.account_number, to_account: bob.account.account_number, amount: '1250.50', description: 'rent' },
      asAlice,
    );
    expect(sent.statusCode).toBe(201);
    expect(sent.data).toMatchObject({
      type: 'transfer',
      status: 'completed',
      amount: '1250.50',
      currency: 'USD',
      from_account: opened.data.account_number,
      to_account: bob.account.account_number,
      description: 'rent',
      review_reasons: [],
    });
    expect(sent.data.transaction_id).toBe(sent.data.id);

    const after = await bank.anonymous.get(`/accounts/${opened.data.id}`, asAlice);
    expect(after.data.balance).toBe('3749.50');
    const bobAfter = await bob.get(`/accounts/${bob.account.id}`);
    expect(bobAfter.data.balance).toBe('1250.50');
  });
});
