import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

/**
 * A PostgreSQL cluster of its own for a test that crashes the database: initdb into a temporary
 * directory, listening on a free port of 127.0.0.1 (and a socket in that directory only), run as the
 * `postgres` OS user because initdb refuses root. The shared server on 5432 is never touched.
 *
 * Every cluster this process started is stopped (immediately) and deleted when the process exits, even
 * if a test forgot to call destroy() or failed half-way.
 */

const run = promisify(execFile);

export interface PrivateCluster {
  readonly port: number;
  /** The temporary directory: data/, the server log and the socket. */
  readonly dir: string;
  /** postgres://root@127.0.0.1:<port>/<database> (default: postgres). */
  url(database?: string): string;
  readonly running: boolean;
  /** Starts the server and waits until it accepts connections (crash recovery included). */
  start(): Promise<void>;
  /** A clean shutdown (`pg_ctl stop -m fast`). */
  stop(): Promise<void>;
  /** A crash: `pg_ctl stop -m immediate` (every backend dies without a checkpoint; recovery on next start). */
  crash(): Promise<void>;
  /** crash() then start(). */
  restart(): Promise<void>;
  createDatabase(name: string): Promise<string>;
  /** The server log's last characters, for diagnostics. */
  log(chars?: number): string;
  /** Stops the server (immediately) and deletes the directory; safe to call twice. */
  destroy(): Promise<void>;
}

function binDir(): string {
  const root = '/usr/lib/postgresql';
  const fromEnv = process.env.PG_BIN_DIR;
  if (fromEnv && existsSync(join(fromEnv, 'pg_ctl'))) return fromEnv;
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^\d+$/.test(v) && existsSync(join(root, v, 'bin', 'pg_ctl')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) throw new Error(`no PostgreSQL binaries under ${root}/*/bin (set PG_BIN_DIR)`);
  return join(root, versions[0]!, 'bin');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') return reject(new Error('no port'));
      server.close(() => resolve(address.port));
    });
  });
}

function osUser(name: string): { uid: number; gid: number } {
  return {
    uid: Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim()),
    gid: Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim()),
  };
}

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** argv that runs a PostgreSQL binary as the postgres OS user when we are root, as ourselves otherwise. */
function command(bin: string, args: string[]): [string, string[]] {
  return asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
}

// Clusters alive in this process, stopped and deleted on exit whatever happened.
const live = new Set<{ dataDir: string; dir: string; pgCtl: string }>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const cluster of live) {
      try {
        if (existsSync(join(cluster.dataDir, 'postmaster.pid'))) {
          const [file, args] = command(cluster.pgCtl, ['stop', '-D', cluster.dataDir, '-m', 'immediate', '-w', '-t', '20']);
          execFileSync(file, args, { stdio: 'ignore', timeout: 25_000 });
        }
      } catch {
        killPostmaster(cluster.dataDir);
      }
      rmSync(cluster.dir, { recursive: true, force: true });
    }
    live.clear();
  });
}

export interface PrivateClusterOptions {
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string>;
}

/** initdb + start; returns the running cluster. */
export async function startPrivateCluster(options: PrivateClusterOptions = {}): Promise<PrivateCluster> {
  installExitHook();
  const bin = binDir();
  const pgCtl = join(bin, 'pg_ctl');
  const dir = mkdtempSync(join(tmpdir(), 'bank-pg-'));
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  const entry = { dataDir, dir, pgCtl };
  live.add(entry);
  if (asRoot) {
    const { uid, gid } = osUser('postgres');
    chownSync(dir, uid, gid);
  }

  const exec = async (binary: string, args: string[], timeoutMs = 60_000): Promise<void> => {
    const [file, argv] = command(binary, args);
    try {
      await run(file, argv, { timeout: timeoutMs, cwd: dir });
    } catch (error) {
      const e = error as Error & { stdout?: string; stderr?: string };
      throw new Error(
        `${binary} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}\n--- server log ---\n${tail(logFile, 4000)}`,
        {
          cause: error,
        },
      );
    }
  };

  try {
    await exec(join(bin, 'initdb'), ['-D', dataDir, '-A', 'trust', '-U', 'root', '-E', 'UTF8', '--no-sync', '--locale=C.UTF-8']).catch(() =>
      // Some images lack the C.UTF-8 locale: fall back to plain C.
      exec(join(bin, 'initdb'), ['-D', dataDir, '-A', 'trust', '-U', 'root', '-E', 'UTF8', '--no-sync', '--locale=C']),
    );
  } catch (error) {
    live.delete(entry);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }

  const port = await freePort();
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: dir,
    max_connections: '200',
    // A crash here is a process crash (pg_ctl stop -m immediate), not a power loss: the kernel keeps every
    // WAL write, so fsync only costs time.
    fsync: 'off',
    full_page_writes: 'off',
    shared_buffers: '64MB',
    ...options.settings,
  };
  const postgresOptions = [`-p ${port}`, ...Object.entries(settings).map(([name, value]) => `-c ${name}=${value}`)].join(' ');

  let running = false;
  let destroyed = false;
  const cluster: PrivateCluster = {
    port,
    dir,
    url: (database = 'postgres') => `postgres://root@127.0.0.1:${port}/${database}`,
    get running() {
      return running;
    },
    async start() {
      if (destroyed) throw new Error('the cluster was destroyed');
      await exec(pgCtl, ['start', '-D', dataDir, '-l', logFile, '-w', '-t', '60', '-o', postgresOptions], 90_000);
      running = true;
    },
    async stop() {
      if (!existsSync(join(dataDir, 'postmaster.pid'))) return void (running = false);
      await exec(pgCtl, ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '60']);
      running = false;
    },
    async crash() {
      if (!existsSync(join(dataDir, 'postmaster.pid'))) return void (running = false);
      await exec(pgCtl, ['stop', '-D', dataDir, '-m', 'immediate', '-w', '-t', '60']);
      running = false;
    },
    async restart() {
      await cluster.crash();
      await cluster.start();
    },
    async createDatabase(name) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a plain database name: ${name}`);
      const client = new pg.Client({ connectionString: cluster.url() });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return cluster.url(name);
    },
    log: (chars = 4000) => tail(logFile, chars),
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      try {
        await cluster.crash();
      } catch (error) {
        // pg_ctl could not stop it: end the postmaster named in its pid file ourselves (SIGQUIT = immediate).
        killPostmaster(dataDir);
        throw error;
      } finally {
        live.delete(entry);
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };

  try {
    await cluster.start();
  } catch (error) {
    await cluster.destroy().catch(() => {});
    throw error;
  }
  return cluster;
}

function killPostmaster(dataDir: string): void {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (Number.isInteger(pid) && pid > 1) process.kill(pid, 'SIGQUIT');
  } catch {
    // no pid file, or the process is gone
  }
}

function tail(file: string, chars: number): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.length > chars ? text.slice(-chars) : text;
  } catch {
    return '';
  }
}
