import cluster, { type Worker } from 'node:cluster';
import closeWithGrace from 'close-with-grace';
import { Redis } from 'ioredis';
import { buildApp } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { openDatabase } from './db/connection.js';
import { scheduleMaintenance } from './db/maintenance.js';
import { migrate } from './db/migrate.js';
import { scheduleSealing } from './audit/chain.js';
import { schedulePurge } from './db/idempotency.js';

function loadConfigOrExit(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`Invalid configuration: ${error.message}`);
      process.exit(1);
    }
    throw error;
  }
}

/** The one line that says why ADMIN_EMAIL/ADMIN_PASSWORD did nothing on this start, and how to start over. */
function adminSettingsIgnored(config: Config): string {
  const names = [config.adminEmail !== undefined ? 'ADMIN_EMAIL' : '', config.adminPassword !== undefined ? 'ADMIN_PASSWORD' : ''].filter(
    Boolean,
  );
  const startOver = config.databaseUrl
    ? 'point DATABASE_URL at an empty database'
    : `stop the server and remove DATA_DIR (${config.dataDir})`;
  return (
    `${names.join(' and ')} ${names.length > 1 ? 'are' : 'is'} ignored: an admin already exists, and they only create ` +
    `the first admin of a database that has none (the existing admin's password is unchanged). ` +
    `To start over with them, ${startOver}, then start again`
  );
}

/**
 * One serving process: migrations (under their advisory lock, so workers starting together are safe),
 * the first admin, then listen until SIGTERM/SIGINT.
 */
async function serve(config: Config): Promise<void> {
  // A worker is told to stop by its primary, possibly while it is still starting. When the signal
  // reached it too (Ctrl-C reaches the whole process group), the message must not count as a second
  // signal, which close-with-grace answers with exit(1).
  let stopRequested = false;
  let stopSelf = () => {
    stopRequested = true;
  };
  process.on('message', (message) => {
    if (message === SHUTDOWN) stopSelf();
  });

  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: config.databasePoolSize });
  try {
    await migrate(database);
  } catch (error) {
    // An edited migration, a database from before the fold, a repeatable file that fails: the
    // migrator's one line says which and what to do.
    console.error(`Cannot start: ${(error as Error).message}`);
    await database.close();
    process.exit(1);
  }
  const redis = config.redisUrl ? new Redis(config.redisUrl, { maxRetriesPerRequest: 2, connectTimeout: 2_000 }) : undefined;
  const app = await buildApp({ config, database, ...(redis ? { redis } : {}) });

  const admin = await app.auth.bootstrapAdmin(config.adminEmail, config.adminPassword);
  if (admin?.generatedPassword) {
    // Printed once, on its own plain line, so a newcomer can copy it; only its bcrypt hash is kept.
    console.log(`admin: ${admin.email} password: ${admin.generatedPassword}`);
  } else if (admin) {
    app.log.info({ email: admin.email }, 'created the first admin from ADMIN_EMAIL');
  } else if (config.adminEmail !== undefined || config.adminPassword !== undefined) {
    // Not silent: a newcomer restarting with them would otherwise log in with credentials that never existed.
    app.log.warn(adminSettingsIgnored(config));
  }

  const stopPurge = schedulePurge(database.db, (err) => app.log.warn({ err }, 'idempotency key purge failed'));
  // PGlite has no autovacuum; on PostgreSQL this does nothing.
  const stopMaintenance = scheduleMaintenance(database, 60_000, (err) => app.log.warn({ err }, 'table maintenance failed'));
  // AUDIT_SEALER_INTERVAL_MS=0: no sealer in this instance (entries wait unsealed until one runs somewhere).
  const stopSealing =
    config.auditSealerIntervalMs > 0
      ? scheduleSealing(database, config.auditSealerIntervalMs, (err) => app.log.warn({ err }, 'audit chain sealing failed'))
      : () => {};

  // SIGTERM: stop accepting connections, let requests in flight finish, close the pool, exit.
  let closing = false;
  stopSelf = () => {
    if (!closing) process.emit('SIGTERM', 'SIGTERM');
  };
  closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
    closing = true;
    if (err) app.log.error({ err }, 'shutting down after an error');
    else app.log.info({ signal }, 'shutting down');
    stopPurge();
    stopMaintenance();
    stopSealing();
    await app.close();
    await database.close();
    redis?.disconnect();
  });

  // A worker told to stop while it was starting stops now, without listening.
  if (stopRequested) {
    stopSelf();
    return;
  }
  await app.listen({ port: config.port, host: config.host });
}

const SHUTDOWN = 'shutdown';

/**
 * WORKERS > 1: this process only supervises; the workers (Node's cluster module) share the port. While
 * the service starts, a worker that fails before it listens stops them all (exit 1: the configuration
 * or the database is wrong, and every new worker would fail the same way). Once every worker has
 * listened, one that dies is replaced at once, and a replacement that cannot start (the database away
 * for a moment) is tried again after 1, 2, 4 ... up to 30 seconds while the others keep serving.
 * SIGTERM or SIGINT stops the workers gracefully, then this process, with status 1 if any worker
 * failed to stop.
 */
function supervise(workers: number): void {
  const alive = new Map<number, Worker>();
  const listening = new Set<number>();
  let booted = false;
  let failedStarts = 0;
  let pendingStart: NodeJS.Timeout | undefined;
  let stopping = false;
  let failed = false;
  const start = () => {
    pendingStart = undefined;
    const worker = cluster.fork();
    alive.set(worker.id, worker);
  };
  // A worker whose channel has just closed cannot be told; its exit is handled below.
  const tellToStop = (worker: Worker) => {
    if (worker.isConnected()) worker.send(SHUTDOWN, () => {});
  };
  const exitWhenAllStopped = () => {
    if (stopping && alive.size === 0) process.exit(failed ? 1 : 0);
  };
  const stopAll = () => {
    stopping = true;
    clearTimeout(pendingStart);
    for (const worker of alive.values()) tellToStop(worker);
    exitWhenAllStopped();
  };
  cluster.on('listening', (worker) => {
    listening.add(worker.id);
    failedStarts = 0;
    if (listening.size === workers) booted = true;
    // A worker forked just before the stop may have missed the message: it had no listener yet.
    if (stopping) tellToStop(worker);
  });
  cluster.on('exit', (worker, code, signal) => {
    alive.delete(worker.id);
    const started = listening.delete(worker.id);
    const how = signal ?? `exit ${code}`;
    if (stopping) {
      if (code !== 0 || signal) failed = true;
    } else if (started) {
      console.error(`worker ${worker.process.pid} died (${how}); starting another`);
      start();
    } else if (booted) {
      const delayMs = Math.min(30_000, 1_000 * 2 ** failedStarts++);
      console.error(`worker ${worker.process.pid} failed to start (${how}); starting another in ${delayMs / 1000} s`);
      pendingStart = setTimeout(start, delayMs);
    } else {
      console.error(`worker ${worker.process.pid} failed to start (${how}); stopping`);
      failed = true;
      stopAll();
    }
    exitWhenAllStopped();
  });
  process.on('SIGTERM', stopAll);
  process.on('SIGINT', stopAll);
  for (let i = 0; i < workers; i++) start();
}

const config = loadConfigOrExit();
if (cluster.isPrimary && config.workers > 1) supervise(config.workers);
else await serve(config);
