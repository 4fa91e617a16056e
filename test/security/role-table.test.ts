/**
 * OWASP API1/API5 (broken object- and function-level authorization): every route the app registers is
 * called by every role and without a token, and must answer exactly as docs/api.md's Roles table says.
 *
 * The routes are collected three ways and cross-checked: an onRoute hook planted in Fastify's factory
 * (so it sees every route, plugins' included, with its `config.access`), Fastify's own printRoutes()
 * tree, and the operations of /openapi.json. A registered route missing from EXPECTED fails the suite:
 * a new endpoint cannot ship without a rule here.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import type { Role } from '../../src/db/schema.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD, testApp, type Response } from '../helpers/app.js';
import { bearer, expectNoLeak, expectProblem, expectUnauthorized, recordResponses } from './support.js';

interface SeenRoute {
  method: string;
  url: string;
  access: unknown;
}

// Every route, as Fastify announces it to onRoute hooks: the hook is added the moment the instance exists,
// before buildApp registers anything, so no route escapes it.
const seen = vi.hoisted(() => [] as SeenRoute[]);
vi.mock('fastify', async (importOriginal) => {
  const original = await importOriginal<typeof import('fastify')>();
  const factory = ((...args: unknown[]) => {
    const app = (original.default as (...a: unknown[]) => any)(...args);
    app.addHook('onRoute', (route: { method: string | string[]; url: string; config?: { access?: unknown } }) => {
      for (const method of [route.method].flat()) seen.push({ method, url: route.url, access: route.config?.access });
    });
    return app;
  }) as unknown as typeof original.default;
  Object.assign(factory, original.default);
  return { ...original, default: factory };
});

type Rule = 'public' | readonly Role[];
const ANY: readonly Role[] = ['customer', 'admin', 'auditor'];
const STAFF: readonly Role[] = ['admin', 'auditor'];
const ADMIN: readonly Role[] = ['admin'];
const CUSTOMER: readonly Role[] = ['customer'];

/** docs/api.md's Roles table, route by route. Paths without a trailing slash; every parameter is `:id`. */
const EXPECTED: Record<string, Rule> = {
  'GET /health': 'public',
  'GET /ready': 'public',
  'GET /metrics': 'public',
  'POST /auth/login': 'public',
  'POST /auth/refresh': 'public',
  'POST /auth/logout': ANY,
  'GET /auth/me': ANY,
  'POST /auth/change-password': ANY,
  'POST /auth/register': ADMIN,
  'GET /users': STAFF,
  'GET /users/:id': ANY, // a customer: its own record only (404 otherwise, see users.test.ts)
  'PATCH /users/:id': ADMIN,
  'POST /accounts': ADMIN,
  'GET /accounts': ANY,
  'GET /accounts/:id': ANY,
  'PATCH /accounts/:id': ADMIN,
  'POST /accounts/:id/deposit': ADMIN,
  'POST /accounts/:id/withdraw': ADMIN,
  'GET /accounts/:id/balance': ANY,
  'GET /accounts/:id/statement': ANY,
  'POST /transactions/transfer': CUSTOMER,
  'GET /transactions': ANY,
  'GET /transactions/flagged': STAFF,
  'GET /transactions/:id': ANY,
  'POST /transactions/:id/approve': ADMIN,
  'POST /transactions/:id/reject': ADMIN,
  'POST /transactions/:id/reverse': ADMIN,
  'POST /loans': CUSTOMER,
  'GET /loans': ANY,
  'GET /loans/:id': ANY,
  'POST /loans/:id/approve': ADMIN,
  'POST /loans/:id/reject': ADMIN,
  'POST /loans/:id/repay': CUSTOMER,
  'GET /audit-logs': STAFF,
  'GET /audit-logs/verify': STAFF,
  'GET /reports/reconciliation': STAFF,
};

/** Public documentation that third-party plugins serve (Swagger UI, ReDoc, the document itself). */
const DOCS = /^\/(docs|redoc)(\/|$)|^\/openapi\.json$/;

function normalize(path: string): string {
  const plain = path.replace(/\{[^}]+\}/g, ':id').replace(/:[A-Za-z_][A-Za-z0-9_]*/g, ':id');
  return plain.length > 1 ? plain.replace(/\/+$/, '') : plain;
}

/** Parses printRoutes({ commonPrefix: false }): a tree whose nodes each add a path segment to their parent's. */
function parsePrintedRoutes(tree: string): string[] {
  const routes: string[] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const branch = line.search(/[├└]── /);
    if (branch < 0) continue;
    const depth = branch / 4;
    const match = /^(.*?)(?: \(([A-Z, ]+)\))?$/.exec(line.slice(branch + 4))!;
    const segment = match[1]!;
    const parent = stack[depth - 1] ?? '';
    const path = segment.startsWith('/') ? parent + segment : `${parent}/${segment}`;
    stack[depth] = path;
    stack.length = depth + 1;
    for (const method of (match[2] ?? '')
      .split(',')
      .map((m) => m.trim())
      .filter(Boolean))
      routes.push(`${method} ${normalize(path)}`);
  }
  return routes;
}

// The app is built while the file is collected, so that one test per registered route can be declared.
const bank = await testApp();
const responses = recordResponses(bank.app);

const routes = [...new Map(seen.filter((r) => r.method !== 'HEAD').map((r) => [`${r.method} ${normalize(r.url)}`, r])).entries()]
  .map(([key, route]) => ({ key, ...route }))
  .sort((a, b) => a.key.localeCompare(b.key));
const headRoutes = new Set(seen.filter((r) => r.method === 'HEAD').map((r) => normalize(r.url)));
const isDocs = (route: { url: string }) => DOCS.test(route.url);

// One user of each role, with a password so that a fresh session can be opened (POST /auth/logout ends one).
const PASSWORD = 'role-table-password';
const accounts: Record<Role, { email: string; password: string }> = {
  admin: { email: ADMIN_EMAIL, password: ADMIN_PASSWORD },
  customer: { email: `rt-customer-${randomUUID()}@bank.test`, password: PASSWORD },
  auditor: { email: `rt-auditor-${randomUUID()}@bank.test`, password: PASSWORD },
};
for (const role of ['customer', 'auditor'] as const) {
  const created = await bank.admin.post('/auth/register', { name: `role table ${role}`, ...accounts[role], role });
  if (created.statusCode !== 201) throw new Error(created.body);
}
async function freshToken(role: Role): Promise<string> {
  const { email, password } = accounts[role];
  const response = await bank.anonymous.post('/auth/login', { email, password });
  if (response.statusCode !== 200) throw new Error(response.body);
  return response.data.access_token as string;
}
const tokens: Record<Role, string> = {
  admin: await freshToken('admin'),
  customer: await freshToken('customer'),
  auditor: await freshToken('auditor'),
};

/** A syntactically valid, harmless call: random UUIDs for ids and an empty JSON body, which no mutating route accepts. */
async function call(method: string, path: string, token: string | undefined): Promise<Response> {
  const url = path.replace(/:id/g, randomUUID()).replace(/\*/g, 'x');
  const body = method === 'POST' || method === 'PATCH' || method === 'PUT' ? {} : undefined;
  return bank.anonymous.request(method as 'GET', url, body, token ? bearer(token) : {});
}

const counts = { attempts: 0, refused: 0 };

describe('the route list', () => {
  it('collected the routes by onRoute hook', () => {
    expect(routes.length).toBeGreaterThan(25);
  });

  it('is the same by the onRoute hook and by Fastify’s printRoutes()', () => {
    // The tree prints a wildcard under the nearest node that has routes, losing the static prefix between
    // them (/docs/static/* shows as * under /docs): wildcards are compared by number only.
    const printed = [...new Set(parsePrintedRoutes(bank.app.printRoutes({ commonPrefix: false })).filter((r) => !r.startsWith('HEAD ')))];
    const keys = routes.map((r) => r.key);
    const wild = (list: string[]) => list.filter((r) => r.includes('*'));
    expect(printed.filter((r) => !r.includes('*')).sort()).toEqual(keys.filter((r) => !r.includes('*')).sort());
    expect(wild(printed)).toHaveLength(wild(keys).length);
  });

  it('documents in /openapi.json every route but the documentation itself, and nothing else', async () => {
    const doc = (await bank.anonymous.get('/openapi.json')).data;
    const documented = Object.entries<Record<string, unknown>>(doc.paths).flatMap(([path, item]) =>
      Object.keys(item)
        .filter((method) => ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace'].includes(method))
        .map((method) => `${method.toUpperCase()} ${normalize(path)}`),
    );
    expect(documented.sort()).toEqual(
      routes
        .filter((r) => !isDocs(r))
        .map((r) => r.key)
        .sort(),
    );
  });

  it('has a rule in this file’s table for every route (a new route without one fails here)', () => {
    const unruled = routes.filter((r) => !isDocs(r) && !(r.key in EXPECTED)).map((r) => r.key);
    expect(unruled, `routes with no expected rule in test/security/role-table.test.ts: ${unruled.join(', ')}`).toEqual([]);
  });

  it('declares in each route’s config.access exactly the rule of docs/api.md', () => {
    for (const route of routes.filter((r) => !isDocs(r) && r.key in EXPECTED)) {
      const rule = EXPECTED[route.key]!;
      const access = route.access;
      if (rule === 'public') expect(access, route.key).toBe('public');
      else expect([...(access as Role[])].sort(), route.key).toEqual([...rule].sort());
    }
  });

  const missing = Object.keys(EXPECTED).filter((key) => !routes.some((r) => r.key === key));
  for (const key of missing) it.todo(`${key}: in docs/api.md’s table but not registered yet`);
});

describe.each(routes.map((r) => [r.key, r] as const))('%s', (key, route) => {
  const rule: Rule = isDocs(route) ? 'public' : (EXPECTED[key] ?? []);
  const [method, path] = [route.method, key.slice(route.method.length + 1)];
  const methods = method === 'GET' && headRoutes.has(path) ? ['GET', 'HEAD'] : [method];

  for (const verb of methods) {
    it(`${verb}: no token`, async () => {
      counts.attempts++;
      const response = await call(verb, path, undefined);
      if (rule === 'public') {
        expect([401, 403], response.body).not.toContain(response.statusCode);
        expect(response.statusCode, response.body).toBeLessThan(500);
      } else {
        counts.refused++;
        if (verb === 'HEAD') {
          expect(response.statusCode).toBe(401);
          expect(response.headers['www-authenticate']).toBe('Bearer');
        } else {
          expectUnauthorized(response);
        }
      }
    });

    for (const role of ['customer', 'admin', 'auditor'] as const) {
      const allowed = rule === 'public' || rule.includes(role);
      it(`${verb}: ${role} ${allowed ? 'may' : 'may not'} call it`, async () => {
        counts.attempts++;
        // Logging out ends the session it is called with: that call gets a session of its own.
        const token = key === 'POST /auth/logout' ? await freshToken(role) : tokens[role];
        const response = await call(verb, path, token);
        if (allowed) {
          expect([401, 403], `${response.statusCode} ${response.body}`).not.toContain(response.statusCode);
          expect(response.statusCode, response.body).toBeLessThan(500);
        } else {
          counts.refused++;
          if (verb === 'HEAD') expect(response.statusCode).toBe(403);
          else expectProblem(response, 403, 'forbidden');
        }
      });
    }
  }
});

describe('methods a path does not have', () => {
  it('answer 404 (or 405), never 2xx or 5xx, with or without a token', async () => {
    const byPath = new Map<string, Set<string>>();
    for (const route of routes) {
      const path = route.key.slice(route.method.length + 1);
      byPath.set(path, (byPath.get(path) ?? new Set()).add(route.method));
    }
    // /transactions/transfer is also /transactions/:id to a GET: such a path is another route's, not a missing method.
    const matches = (method: string, path: string) =>
      routes.some(
        (r) =>
          r.method === method &&
          new RegExp(
            `^${r.key
              .slice(method.length + 1)
              .replace(/:id/g, '[^/]+')
              .replace(/\*/g, '.*')}$`,
          ).test(path),
      );
    for (const [path, methods] of byPath) {
      for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].filter((m) => !methods.has(m) && !matches(m, path))) {
        for (const token of [undefined, tokens.admin]) {
          counts.attempts++;
          const response = await call(method, path, token);
          expect([404, 405], `${method} ${path}: ${response.statusCode}`).toContain(response.statusCode);
          counts.refused++;
        }
      }
    }
  });
});

describe('the session tokens used above', () => {
  it('still work: no call of this file revoked them', async () => {
    for (const role of ['customer', 'admin', 'auditor'] as const) {
      expect((await bank.anonymous.get('/auth/me', bearer(tokens[role]))).statusCode).toBe(200);
    }
  });

  it('leaked no password hash and no stack trace in any answer', () => {
    expect(responses.length).toBeGreaterThan(100);
    for (const response of responses) expectNoLeak(response);
    console.info(`role table: ${counts.attempts} calls, ${counts.refused} refused as the table requires`);
  });
});
