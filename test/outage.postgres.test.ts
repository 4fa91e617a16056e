import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPrivateCluster, type PrivateCluster } from './helpers/private-cluster.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD, http, sleep, startServer, type HttpAnswer, type ServerProcess } from './helpers/server-process.js';

/**
 * The database goes away under a running server (a private PostgreSQL cluster, crashed with
 * `pg_ctl stop -m immediate`) and comes back. Meanwhile the server answers quickly and cleanly:
 * 503 problem+json `service_unavailable`, never a 500, never a hang; afterwards it recovers by itself.
 */

const ANSWER_WITHIN_MS = 10_000;
const RECOVER_WITHIN_MS = 15_000;

let cluster: PrivateCluster;
let server: ServerProcess;
let token: string;

/** A request that must answer within ANSWER_WITHIN_MS; a timeout or a network error fails the test. */
async function timed(method: string, path: string, withToken: boolean): Promise<HttpAnswer & { ms: number }> {
  const started = Date.now();
  let answer: HttpAnswer;
  try {
    answer = await http(server.url, method, path, { ...(withToken ? { token } : {}), timeoutMs: ANSWER_WITHIN_MS });
  } catch (error) {
    throw new Error(`${method} ${path}: no answer within ${ANSWER_WITHIN_MS} ms (${(error as Error).message})\n${server.output()}`);
  }
  return { ...answer, ms: Date.now() - started };
}

function expectUnavailable(answer: HttpAnswer & { ms: number }, what: string): void {
  expect(answer.status, `${what}: ${answer.text}\n${server.output()}`).toBe(503);
  expect(answer.contentType, what).toMatch(/^application\/problem\+json/);
  expect(answer.body?.code, what).toBe('service_unavailable');
  expect(answer.body?.status, what).toBe(503);
  expect(typeof answer.body?.title, what).toBe('string');
  expect(typeof answer.body?.detail, what).toBe('string');
  expect(answer.ms, what).toBeLessThan(ANSWER_WITHIN_MS);
}

/** Polls until both /ready and an authenticated read answer 200; returns how long it took. */
async function waitForRecovery(): Promise<number> {
  const started = Date.now();
  let last = '';
  while (Date.now() - started < RECOVER_WITHIN_MS) {
    const ready = await timed('GET', '/ready', false);
    const accounts = await timed('GET', '/accounts/', true);
    for (const answer of [ready, accounts]) expect(answer.status, answer.text).not.toBe(500);
    if (ready.status === 200 && accounts.status === 200) return Date.now() - started;
    last = `${ready.status} ${ready.text} / ${accounts.status} ${accounts.text}`;
    await sleep(250);
  }
  throw new Error(`not recovered within ${RECOVER_WITHIN_MS} ms; last answers: ${last}\n${server.output()}`);
}

describe('the database crashes under a running server', () => {
  beforeAll(async () => {
    cluster = await startPrivateCluster();
    const databaseUrl = await cluster.createDatabase('bank');
    server = await startServer({ databaseUrl });
    const login = await http(server.url, 'POST', '/auth/login', { body: { email: ADMIN_EMAIL, password: ADMIN_PASSWORD } });
    expect(login.status, login.text).toBe(200);
    token = login.body.access_token;
  });

  afterAll(async () => {
    await server?.dispose();
    await cluster?.destroy();
  });

  it('answers normally while the database is up', async () => {
    expect((await timed('GET', '/ready', false)).status).toBe(200);
    const accounts = await timed('GET', '/accounts/', true);
    expect(accounts.status, accounts.text).toBe(200);
    expect(accounts.body.items).toEqual([]);
  });

  for (const round of [1, 2]) {
    it(`round ${round}: 503 problem+json while it is down, then recovers without a restart`, async () => {
      // Warm connections in the pool first, so the crash also breaks connections the pool holds.
      await Promise.all(Array.from({ length: 5 }, () => timed('GET', '/accounts/', true)));
      await cluster.crash();

      // For a few seconds, every answer is a prompt 503 problem+json (and /health still answers).
      const until = Date.now() + 3_000;
      let checks = 0;
      while (Date.now() < until || checks < 3) {
        const [ready, accounts, health] = await Promise.all([
          timed('GET', '/ready', false),
          timed('GET', '/accounts/', true),
          timed('GET', '/health', false),
        ]);
        expectUnavailable(ready, 'GET /ready');
        expectUnavailable(accounts, 'GET /accounts/');
        expect(health.status).toBe(200);
        checks++;
        await sleep(200);
      }
      expect(server.alive, server.output()).toBe(true);

      await cluster.start();
      const took = await waitForRecovery();
      expect(took).toBeLessThan(RECOVER_WITHIN_MS);
      expect(server.starts, 'the server was not restarted').toBe(1);
      expect(server.alive).toBe(true);
    });
  }

  it('works fully after recovering: a write and a reconciliation', async () => {
    const registered = await http(server.url, 'POST', '/auth/register', {
      token,
      body: { name: 'After Outage', email: 'after-outage@bank.test', password: 'password-after', role: 'customer' },
    });
    expect(registered.status, registered.text).toBe(201);
    const opened = await http(server.url, 'POST', `/accounts/?user_id=${registered.body.user.id}`, {
      token,
      body: { initial_deposit: '10.00' },
    });
    expect(opened.status, opened.text).toBe(201);
    const report = await http(server.url, 'GET', '/reports/reconciliation', { token });
    expect(report.status, report.text).toBe(200);
    expect(report.body.ok).toBe(true);
  });
});
