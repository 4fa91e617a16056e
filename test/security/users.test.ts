/**
 * The users endpoints: OWASP API1 (a customer reads only itself), API3 (mass assignment: no role,
 * email or password hash through PATCH) and API5 (only staff list, only admins change).
 */
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { testApp, type Client, type Customer, type Response, type TestApp } from '../helpers/app.js';
import { expectNoLeak, expectProblem, recordResponses } from './support.js';

type Staff = Client & { user: { id: string } };

describe('users', () => {
  let bank: TestApp;
  let responses: ReturnType<typeof recordResponses>;
  let auditor: Staff;
  let alice: Customer;
  let bob: Customer;
  let adminId: string;
  const tally = { attempts: 0, refused: 0 };

  const refusedWith = (response: Response, status: number, code: string) => {
    tally.attempts++;
    expectProblem(response, status, code);
    tally.refused++;
  };
  const auditOf = (targetId: string) =>
    bank.database.handle.db
      .selectFrom('audit_log')
      .selectAll()
      .where('target_id', '=', targetId)
      .where('action', 'like', 'user.%')
      .orderBy('entry_no')
      .execute();

  beforeAll(async () => {
    bank = await testApp();
    responses = recordResponses(bank.app);
    auditor = await bank.user('auditor');
    alice = await bank.customer();
    bob = await bank.customer();
    for (let i = 0; i < 3; i++) await bank.customer();
    await bank.user('admin');
    adminId = (await bank.admin.get('/auth/me')).data.id;
  });

  describe('GET /users', () => {
    it('lists every user to admin and auditor, never with a password hash', async () => {
      const total = await bank.database.handle.db.selectFrom('users').select('id').execute();
      for (const staff of [bank.admin, auditor]) {
        const page = await staff.get('/users?limit=100');
        expect(page.statusCode, page.body).toBe(200);
        expect(page.data.items).toHaveLength(total.length);
        expect(page.data.next_cursor).toBeNull();
        for (const user of page.data.items)
          expect(Object.keys(user).sort()).toEqual(['created_at', 'email', 'id', 'is_active', 'name', 'role']);
      }
    });

    it('filters by role', async () => {
      for (const role of ['customer', 'admin', 'auditor'] as const) {
        const page = await bank.admin.get(`/users?role=${role}&limit=100`);
        expect(page.statusCode).toBe(200);
        expect(page.data.items.length).toBeGreaterThan(0);
        expect(page.data.items.every((user: { role: string }) => user.role === role)).toBe(true);
        const count = await bank.database.handle.db.selectFrom('users').select('id').where('role', '=', role).execute();
        expect(page.data.items).toHaveLength(count.length);
      }
      refusedWith(await bank.admin.get('/users?role=superuser'), 422, 'validation_error');
      refusedWith(await bank.admin.get("/users?role=admin' OR '1'='1"), 422, 'validation_error');
    });

    it('walks every user exactly once with limit=2', async () => {
      const all = (await bank.admin.get('/users?limit=100')).data.items.map((u: { id: string }) => u.id);
      const walked: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page: Response = await auditor.get(`/users?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        expect(page.statusCode, page.body).toBe(200);
        expect(page.data.items.length).toBeLessThanOrEqual(2);
        walked.push(...page.data.items.map((u: { id: string }) => u.id));
        cursor = page.data.next_cursor;
        pages++;
      } while (cursor && pages < 100);
      expect(walked).toEqual(all);
      expect(new Set(walked).size).toBe(walked.length);
      expect(pages).toBe(Math.ceil(all.length / 2));
    });

    it('refuses a forged cursor or a limit outside 1..100 with 422', async () => {
      for (const query of [
        'limit=0',
        'limit=101',
        'limit=-1',
        'limit=abc',
        'cursor=not-a-cursor',
        `cursor=${Buffer.from('["x","y"]').toString('base64url')}`,
        'password_hash=x',
      ]) {
        refusedWith(await bank.admin.get(`/users?${query}`), 422, 'validation_error');
      }
    });

    it('is forbidden to customers (403), whatever the query', async () => {
      refusedWith(await alice.get('/users'), 403, 'forbidden');
      refusedWith(await alice.get('/users?role=customer'), 403, 'forbidden');
      refusedWith(await alice.get(`/users?limit=1`), 403, 'forbidden');
    });
  });

  describe('GET /users/{id}', () => {
    it('shows a customer its own record', async () => {
      const self = await alice.get(`/users/${alice.user.id}`);
      expect(self.statusCode).toBe(200);
      expect(self.data).toEqual(alice.user);
    });

    it('answers a customer 404 not_found for another user, exactly as for a user that does not exist', async () => {
      const other = await alice.get(`/users/${bob.user.id}`);
      const admin = await alice.get(`/users/${adminId}`);
      const nobody = await alice.get(`/users/${randomUUID()}`);
      for (const response of [other, admin, nobody]) refusedWith(response, 404, 'not_found');
      expect(other.data).toEqual(nobody.data);
      expect(admin.data).toEqual(nobody.data);
    });

    it('shows any user to staff; 404 for an unknown id, 422 for a malformed one', async () => {
      for (const staff of [bank.admin, auditor]) {
        const response = await staff.get(`/users/${bob.user.id}`);
        expect(response.statusCode).toBe(200);
        expect(response.data).toEqual(bob.user);
        refusedWith(await staff.get(`/users/${randomUUID()}`), 404, 'not_found');
      }
      for (const id of ['not-a-uuid', "1' OR '1'='1", '..%2F..%2Fetc%2Fpasswd', '%00'])
        refusedWith(await bank.admin.get(`/users/${id}`), 422, 'validation_error');
    });
  });

  describe('PATCH /users/{id}', () => {
    it('renames a user (admin) and records user.updated', async () => {
      const target = await bank.customer();
      const response = await bank.admin.patch(`/users/${target.user.id}`, { name: 'Renamed Person' });
      expect(response.statusCode, response.body).toBe(200);
      expect(response.data).toEqual({ ...target.user, name: 'Renamed Person' });
      expect((await target.get('/auth/me')).data.name).toBe('Renamed Person');
      const entries = await auditOf(target.user.id);
      expect(entries.map((e) => e.action)).toEqual(['user.created', 'user.updated']);
      expect(entries[1]).toMatchObject({ actor_id: adminId, actor_role: 'admin', target_type: 'user' });
      expect(entries[1]!.details).toMatchObject({ name: { from: target.user.name, to: 'Renamed Person' } });
    });

    it('disables and enables a user and records user.disabled and user.enabled', async () => {
      const target = await bank.customer();
      const off = await bank.admin.patch(`/users/${target.user.id}`, { is_active: false });
      expect(off.statusCode).toBe(200);
      expect(off.data.is_active).toBe(false);
      const on = await bank.admin.patch(`/users/${target.user.id}`, { is_active: true });
      expect(on.data.is_active).toBe(true);
      const entries = await auditOf(target.user.id);
      expect(entries.map((e) => e.action)).toEqual(['user.created', 'user.disabled', 'user.enabled']);
      expect(entries.slice(1).every((e) => e.actor_id === adminId)).toBe(true);
      expect(entries[1]!.details).toMatchObject({ is_active: { from: true, to: false } });
    });

    it('refuses mass assignment: role, email, password_hash, id or any unknown field is 422 and changes nothing', async () => {
      const target = await bank.customer();
      const before = await bank.database.handle.db
        .selectFrom('users')
        .selectAll()
        .where('id', '=', target.user.id)
        .executeTakeFirstOrThrow();
      const attempts: Array<Record<string, unknown>> = [
        { role: 'admin' },
        { name: 'Ok Name', role: 'admin' },
        { role: 'auditor' },
        { email: 'takeover@bank.test' },
        { password_hash: '$2b$04$abcdefghijklmnopqrstuuO2m1Yw6dI3q2Aq3qJ0i6u8y8T7z6V5e' },
        { password: 'new-password-1' },
        { id: randomUUID() },
        { created_at: '2000-01-01T00:00:00Z' },
        { is_admin: true },
        { name: 'Ok Name', is_active: true, role: 'admin' },
      ];
      for (const body of attempts) {
        const response = await bank.admin.patch(`/users/${target.user.id}`, body);
        refusedWith(response, 422, 'validation_error');
        expect(response.data.errors.length).toBeGreaterThan(0);
      }
      // Prototype pollution by raw JSON keys (an object literal's __proto__ would not even be serialised).
      for (const raw of [
        '{"__proto__":{"role":"admin"}}',
        '{"name":"Proto","__proto__":{"is_active":false}}',
        '{"constructor":{"prototype":{"role":"admin"}}}',
      ]) {
        const response = await bank.admin.patch(`/users/${target.user.id}`, raw, { 'content-type': 'application/json' });
        tally.attempts++;
        expect([400, 422], response.body).toContain(response.statusCode);
        expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
        tally.refused++;
      }
      expect(({} as Record<string, unknown>).role).toBeUndefined();
      const after = await bank.database.handle.db
        .selectFrom('users')
        .selectAll()
        .where('id', '=', target.user.id)
        .executeTakeFirstOrThrow();
      expect(after).toEqual(before);
      expect((await target.get('/auth/me')).data.role).toBe('customer');
    });

    it('answers 422 for an empty body, no body, a wrong type or an empty name', async () => {
      const target = await bank.customer();
      for (const body of [
        {},
        { is_active: 'false' },
        { is_active: 0 },
        { name: '' },
        { name: 'x'.repeat(201) },
        { name: null },
        [],
        'null',
      ]) {
        const response = await bank.admin.patch(`/users/${target.user.id}`, body, { 'content-type': 'application/json' });
        refusedWith(response, 422, 'validation_error');
      }
      refusedWith(await bank.admin.request('PATCH', `/users/${target.user.id}`), 422, 'validation_error');
      expect((await bank.admin.get(`/users/${target.user.id}`)).data).toEqual(target.user);
    });

    it('answers 404 not_found for an unknown user', async () => {
      refusedWith(await bank.admin.patch(`/users/${randomUUID()}`, { name: 'Ghost' }), 404, 'not_found');
    });

    it('does not let an admin disable itself', async () => {
      const response = await bank.admin.patch(`/users/${adminId}`, { is_active: false });
      refusedWith(response, 422, 'validation_error');
      expect((await bank.admin.get('/auth/me')).statusCode).toBe(200);
    });

    it('is forbidden to auditors and customers (403), on others and on themselves, and changes nothing', async () => {
      const target = await bank.customer();
      const calls: Array<[Client, string, Record<string, unknown>]> = [
        [auditor, target.user.id, { name: 'Auditor Was Here' }],
        [auditor, target.user.id, { is_active: false }],
        [auditor, auditor.user.id, { name: 'Self Promoted' }],
        [alice, target.user.id, { is_active: false }],
        [alice, alice.user.id, { name: 'Alice The Great' }],
        [alice, alice.user.id, { is_active: true }],
        [alice, adminId, { is_active: false }],
        [alice, alice.user.id, { role: 'admin' }],
      ];
      for (const [caller, id, body] of calls) refusedWith(await caller.patch(`/users/${id}`, body), 403, 'forbidden');
      expect((await bank.admin.get(`/users/${target.user.id}`)).data).toEqual(target.user);
      expect((await bank.admin.get(`/users/${alice.user.id}`)).data).toEqual(alice.user);
      expect(await auditOf(target.user.id)).toHaveLength(1);
    });
  });

  it('leaked no password hash and no stack trace in any answer of this file', () => {
    expect(responses.length).toBeGreaterThan(50);
    for (const response of responses) expectNoLeak(response);
    console.info(`users: ${tally.attempts} attacks tried, ${tally.refused} refused`);
  });
});
