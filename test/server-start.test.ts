import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';

/**
 * The real entry point (`node --import tsx src/server.ts`) in a child process with a clean environment.
 * It only ever uses PGlite under a temporary DATA_DIR, so it runs once, in the pglite project.
 */

const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));
const START_TIMEOUT_MS = 60_000;

interface Started {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children = new Set<ChildProcess>();
const tempDirs: string[] = [];

function tempDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'bank-server-'));
  tempDirs.push(dir);
  return join(dir, 'data');
}

afterEach(() => {
  // A failed test must not leave its server behind: end only the processes this file started.
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
});
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') return reject(new Error('no port'));
      server.close(() => resolve(address.port));
    });
  });
}

function start(env: Record<string, string>): Started {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: PROJECT_ROOT,
    // A clean environment. The empty values also override a developer's .env in the project root
    // (the real environment wins over .env, and these variables treat "" as unset).
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      NODE_ENV: 'development',
      DATABASE_URL: '',
      REDIS_URL: '',
      JWT_SECRET: '',
      ADMIN_EMAIL: '',
      ADMIN_PASSWORD: '',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms))),
  ]);
}

/** Polls GET /health until it answers; returns its body. Fails early if the process exits. */
async function waitForHealth(server: Started, port: number): Promise<unknown> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let exited = false;
  void server.exited.then(() => (exited = true));
  while (Date.now() < deadline) {
    if (exited) throw new Error(`the server exited before answering /health\nstdout:\n${server.stdout()}\nstderr:\n${server.stderr()}`);
    try {
      const response = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2_000) });
      if (response.status === 200) return await response.json();
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no answer from /health within ${START_TIMEOUT_MS} ms\nstdout:\n${server.stdout()}\nstderr:\n${server.stderr()}`);
}

async function stop(server: Started): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  server.child.kill('SIGTERM');
  return withTimeout(server.exited, 15_000, 'exiting after SIGTERM');
}

async function login(port: number, email: string, password: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`http://127.0.0.1:${port}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  return { status: response.status, body: await response.json() };
}

async function me(port: number, token: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`http://127.0.0.1:${port}/auth/me`, { headers: { authorization: `Bearer ${token}` } });
  return { status: response.status, body: await response.json() };
}

function lastNonEmptyLine(text: string): string {
  const lines = text.split(/\r?\n/).filter((line) => line.trim() !== '');
  return lines[lines.length - 1] ?? '';
}

describe.skipIf(process.env.TEST_DB === 'postgres')('starting the real server (src/server.ts)', () => {
  describe('refuses a bad configuration with one line naming the variable, and a non-zero exit', () => {
    it.each([
      ['PORT', 'abc', /^Invalid configuration: PORT must be an integer from 0 to 65535 \(got "abc"\)$/],
      ['BCRYPT_COST', '99', /^Invalid configuration: BCRYPT_COST must be an integer from 4 to 15 \(got "99"\)$/],
      ['CURRENCY', 'usd1', /^Invalid configuration: CURRENCY must be .*\(got "usd1"\)$/],
    ])(
      '%s=%j',
      async (name, value, line) => {
        const server = start({ DATA_DIR: tempDataDir(), [name]: value });
        const { code } = await withTimeout(server.exited, 30_000, 'exiting');
        expect(code, server.stderr()).not.toBe(0);
        expect(code).not.toBeNull();
        expect(lastNonEmptyLine(server.stderr()), server.stderr()).toMatch(line);
        expect(server.stdout()).not.toMatch(/password/);
      },
      60_000,
    );

    it('NODE_ENV=production without JWT_SECRET', async () => {
      const server = start({ DATA_DIR: tempDataDir(), NODE_ENV: 'production' });
      const { code } = await withTimeout(server.exited, 30_000, 'exiting');
      expect(code, server.stderr()).not.toBe(0);
      expect(code).not.toBeNull();
      const last = lastNonEmptyLine(server.stderr());
      expect(last).toMatch(/^Invalid configuration: /);
      expect(last).toContain('JWT_SECRET');
    }, 60_000);
  });

  it('starts, prints a generated admin password once, serves, stops on SIGTERM, and keeps its secret across a restart', async () => {
    const dataDir = tempDataDir();
    const env = { DATA_DIR: dataDir, BCRYPT_COST: '4' };

    const port = await freePort();
    const startedAt = performance.now();
    const first = start({ ...env, PORT: String(port) });
    expect(await waitForHealth(first, port)).toEqual({ status: 'ok' });
    console.log(`server-start: the first start answered /health after ${Math.round(performance.now() - startedAt)} ms`);

    const printed = first.stdout().match(/^admin: admin@bank\.local password: \S+$/gm) ?? [];
    expect(printed, first.stdout()).toHaveLength(1);
    const password = /^admin: admin@bank\.local password: (\S+)$/m.exec(first.stdout())![1]!;

    const loggedIn = await login(port, 'admin@bank.local', password);
    expect(loggedIn.status, `${JSON.stringify(loggedIn.body)}\n${first.stdout()}\n${first.stderr()}`).toBe(200);
    expect(loggedIn.body.user).toMatchObject({ email: 'admin@bank.local', role: 'admin' });
    const token = loggedIn.body.access_token as string;
    expect((await me(port, token)).status).toBe(200);

    const stopped = await stop(first);
    expect(stopped, first.stderr()).toEqual({ code: 0, signal: null });

    // A second start on the same DATA_DIR: the admin exists, the generated JWT secret was kept.
    const port2 = await freePort();
    const second = start({ ...env, PORT: String(port2) });
    expect(await waitForHealth(second, port2)).toEqual({ status: 'ok' });
    expect(second.stdout()).not.toMatch(/password/);
    expect(second.stdout()).not.toMatch(/ignored/);
    const after = await me(port2, token);
    expect(after.status, `${JSON.stringify(after.body)}\n${second.stdout()}\n${second.stderr()}`).toBe(200);
    expect(after.body).toMatchObject({ email: 'admin@bank.local', role: 'admin' });
    expect((await login(port2, 'admin@bank.local', password)).status).toBe(200);

    expect(await stop(second), second.stderr()).toEqual({ code: 0, signal: null });
  }, 180_000);

  it('creates the first admin from ADMIN_EMAIL and ADMIN_PASSWORD without printing a password', async () => {
    const port = await freePort();
    const server = start({
      DATA_DIR: tempDataDir(),
      BCRYPT_COST: '4',
      PORT: String(port),
      ADMIN_EMAIL: 'boss@bank.test',
      ADMIN_PASSWORD: 'boss-password-1',
    });
    expect(await waitForHealth(server, port)).toEqual({ status: 'ok' });
    expect(server.stdout()).not.toMatch(/password:/);
    expect(server.stdout()).not.toContain('boss-password-1');
    expect(server.stderr()).not.toContain('boss-password-1');

    const loggedIn = await login(port, 'boss@bank.test', 'boss-password-1');
    expect(loggedIn.status, `${JSON.stringify(loggedIn.body)}\n${server.stdout()}\n${server.stderr()}`).toBe(200);
    expect(loggedIn.body.user).toMatchObject({ email: 'boss@bank.test', role: 'admin' });
    expect((await login(port, 'admin@bank.local', 'boss-password-1')).status).toBe(401);

    expect(await stop(server), server.stderr()).toEqual({ code: 0, signal: null });
  }, 120_000);

  it('says on one line that ADMIN_EMAIL and ADMIN_PASSWORD are ignored when an admin already exists, and how to start over', async () => {
    const dataDir = tempDataDir();
    const env = { DATA_DIR: dataDir, BCRYPT_COST: '4' };
    const ignored = /ignored/;

    // The first start creates the admin from the variables and warns about nothing.
    const port = await freePort();
    const first = start({ ...env, PORT: String(port), ADMIN_EMAIL: 'boss@bank.test', ADMIN_PASSWORD: 'boss-password-1' });
    expect(await waitForHealth(first, port)).toEqual({ status: 'ok' });
    expect(first.stdout() + first.stderr()).not.toMatch(ignored);
    expect(await stop(first), first.stderr()).toEqual({ code: 0, signal: null });

    // The README's old mistake: a restart with other credentials, which change nothing.
    const port2 = await freePort();
    const second = start({ ...env, PORT: String(port2), ADMIN_EMAIL: 'admin@bank.local', ADMIN_PASSWORD: 'change-me-now' });
    expect(await waitForHealth(second, port2)).toEqual({ status: 'ok' });
    const lines = second
      .stdout()
      .split('\n')
      .filter((line) => ignored.test(line));
    expect(lines, second.stdout()).toHaveLength(1);
    const entry = JSON.parse(lines[0]!) as { level: number; msg: string };
    expect(entry.level).toBe(40); // pino's warn
    expect(entry.msg).toMatch(/^ADMIN_EMAIL and ADMIN_PASSWORD are ignored: an admin already exists/);
    expect(entry.msg).toContain(`remove DATA_DIR (${dataDir})`);
    expect(second.stdout() + second.stderr()).not.toContain('change-me-now');
    expect((await login(port2, 'admin@bank.local', 'change-me-now')).status).toBe(401);
    expect((await login(port2, 'boss@bank.test', 'boss-password-1')).status).toBe(200);
    expect(await stop(second), second.stderr()).toEqual({ code: 0, signal: null });

    // One of the two alone is named alone.
    const port3 = await freePort();
    const third = start({ ...env, PORT: String(port3), ADMIN_PASSWORD: 'change-me-now' });
    expect(await waitForHealth(third, port3)).toEqual({ status: 'ok' });
    expect(third.stdout(), third.stdout()).toMatch(/"msg":"ADMIN_PASSWORD is ignored: an admin already exists/);
    expect(await stop(third), third.stderr()).toEqual({ code: 0, signal: null });
  }, 180_000);
});
