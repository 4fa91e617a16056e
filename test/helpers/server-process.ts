import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './private-cluster.js';

/**
 * The real entry point (`node --import tsx src/server.ts`) as child processes against one DATABASE_URL,
 * each on a free port: started together, killed with any signal, restarted on the same port. Output of
 * every life of a server is kept (bounded) for the failure messages.
 */

export const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const ADMIN_EMAIL = 'admin@bank.test';
export const ADMIN_PASSWORD = 'admin-password-1';
export const JWT_SECRET = 'multi-instance-secret-that-is-at-least-32-bytes!';

const OUTPUT_LIMIT = 64 * 1024;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServerOptions {
  databaseUrl: string;
  /** Variables added to (or overriding) the server's clean environment. */
  env?: Record<string, string>;
  /** How long a start may take before it counts as failed. */
  startTimeoutMs?: number;
}

// Every server process alive in this process: SIGKILLed on exit if a test left one behind.
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
}

export class ServerProcess {
  readonly url: string;
  child!: ChildProcess;
  exited!: Promise<Exit>;
  /** How many times the process has been started. */
  starts = 0;
  #output = '';
  readonly #dataDir: string;

  constructor(
    readonly port: number,
    readonly options: ServerOptions,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    this.#dataDir = mkdtempSync(join(tmpdir(), 'bank-proc-'));
  }

  /** stdout and stderr of every life of this server, most recent last (bounded). */
  output(): string {
    return this.#output;
  }

  /** An alias kept for readers who look for it: the server logs (pino) go to stdout, crashes to stderr. */
  stderr(): string {
    return this.#output;
  }

  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  #append(text: string): void {
    this.#output += text;
    if (this.#output.length > OUTPUT_LIMIT) this.#output = this.#output.slice(-OUTPUT_LIMIT);
  }

  /** Spawns the process (without waiting for it to answer). */
  spawn(): void {
    if (this.alive) throw new Error(`server on ${this.port} is already running`);
    installExitHook();
    this.starts++;
    this.#append(`\n----- start #${this.starts} on port ${this.port} -----\n`);
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      cwd: PROJECT_ROOT,
      // A clean environment; the empty values also override a developer's .env ("" counts as unset).
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        NODE_ENV: 'test',
        DATABASE_URL: this.options.databaseUrl,
        PORT: String(this.port),
        HOST: '127.0.0.1',
        BCRYPT_COST: '4',
        JWT_SECRET,
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
        LOG_LEVEL: 'warn',
        DATA_DIR: this.#dataDir,
        REDIS_URL: '',
        ...this.options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(child);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => this.#append(chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => this.#append(chunk));
    this.child = child;
    this.exited = new Promise<Exit>((resolve) =>
      child.once('close', (code, signal) => {
        live.delete(child);
        this.#append(`\n----- exited: code ${code} signal ${signal} -----\n`);
        resolve({ code, signal });
      }),
    );
  }

  /** Polls GET /health until it answers 200; fails early if the process exits. */
  async waitForHealth(timeoutMs = this.options.startTimeoutMs ?? 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let exit: Exit | undefined;
    void this.exited.then((e) => (exit = e));
    while (Date.now() < deadline) {
      if (exit)
        throw new Error(
          `server on ${this.port} exited (code ${exit.code}, signal ${exit.signal}) before answering /health\n${this.output()}`,
        );
      try {
        const response = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(2_000) });
        if (response.status === 200) return;
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    throw new Error(`server on ${this.port} gave no answer from /health within ${timeoutMs} ms\n${this.output()}`);
  }

  /** Spawns and waits for /health. */
  async start(): Promise<void> {
    this.spawn();
    await this.waitForHealth();
  }

  /**
   * Starts it again, retrying while it exits early (e.g. the database is still recovering and the
   * migration at start fails), until it answers or `timeoutMs` runs out.
   */
  async restart(timeoutMs = 60_000): Promise<void> {
    if (this.alive) await this.kill('SIGKILL');
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.spawn();
      try {
        await this.waitForHealth(Math.max(1_000, deadline - Date.now()));
        return;
      } catch (error) {
        if (this.alive || Date.now() >= deadline) {
          if (this.alive) await this.kill('SIGKILL');
          throw error;
        }
        await sleep(500);
      }
    }
  }

  /** Sends the signal and waits for the process to end. */
  async kill(signal: NodeJS.Signals, timeoutMs = 20_000): Promise<Exit> {
    if (!this.alive) return this.exited;
    this.child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.exited,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`server on ${this.port} still running ${timeoutMs} ms after ${signal}\n${this.output()}`)),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills it (SIGKILL) if alive and removes its data directory. */
  async dispose(): Promise<void> {
    if (this.alive) await this.kill('SIGKILL').catch(() => {});
    rmSync(this.#dataDir, { recursive: true, force: true });
  }
}

/** One server on a free port, started and answering /health. */
export async function startServer(options: ServerOptions): Promise<ServerProcess> {
  const [server] = await startServers(1, options);
  return server!;
}

/**
 * N servers spawned at the same instant on the same database (their migrations race), each on its own
 * free port; resolves when all answer /health, else kills them all and fails with their output.
 */
export async function startServers(count: number, options: ServerOptions): Promise<ServerProcess[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  const servers = [...ports].map((port) => new ServerProcess(port, options));
  for (const server of servers) server.spawn();
  const results = await Promise.allSettled(servers.map((server) => server.waitForHealth()));
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed.length > 0) {
    await Promise.all(servers.map((server) => server.dispose()));
    throw new Error(failed.map((r) => (r.reason as Error).message).join('\n\n'));
  }
  return servers;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A JSON (or problem+json) HTTP exchange with plain fetch: never throws on a status, only on the network. */
export interface HttpAnswer {
  status: number;
  contentType: string;
  headers: Headers;
  body: any;
  text: string;
}

export async function http(
  base: string,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<HttpAnswer> {
  const response = await fetch(base + path, {
    method,
    headers: {
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...options.headers,
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
  });
  const text = await response.text();
  const contentType = response.headers.get('content-type') ?? '';
  let body: unknown;
  if (/json/.test(contentType) && text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
  }
  return { status: response.status, contentType, headers: response.headers, body, text };
}
