import closeWithGrace from 'close-with-grace';
import { Redis } from 'ioredis';
import { buildApp } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { openDatabase } from './db/connection.js';
import { migrate } from './db/migrate.js';
import { scheduleSealing } from './audit/chain.js';
import { schedulePurge } from './http/idempotency.js';

/** Entry point: configuration, migrations, the first admin, then listen until SIGTERM/SIGINT. */
async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`Invalid configuration: ${error.message}`);
      process.exit(1);
    }
    throw error;
  }

  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: config.databasePoolSize });
  await migrate(database);
  const redis = config.redisUrl ? new Redis(config.redisUrl, { maxRetriesPerRequest: 2, connectTimeout: 2_000 }) : undefined;
  const app = await buildApp({ config, database, ...(redis ? { redis } : {}) });

  const admin = await app.auth.bootstrapAdmin(config.adminEmail, config.adminPassword);
  if (admin?.generatedPassword) {
    // Printed once, on its own plain line, so a newcomer can copy it; only its bcrypt hash is kept.
    console.log(`admin: ${admin.email} password: ${admin.generatedPassword}`);
  } else if (admin) {
    app.log.info({ email: admin.email }, 'created the first admin from ADMIN_EMAIL');
  }

  const stopPurge = schedulePurge(database.db, (err) => app.log.warn({ err }, 'idempotency key purge failed'));
  // AUDIT_SEALER_INTERVAL_MS=0: no sealer in this instance (entries wait unsealed until one runs somewhere).
  const stopSealing =
    config.auditSealerIntervalMs > 0
      ? scheduleSealing(database, config.auditSealerIntervalMs, (err) => app.log.warn({ err }, 'audit chain sealing failed'))
      : () => {};

  // SIGTERM: stop accepting connections, let requests in flight finish, close the pool, exit.
  closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'shutting down after an error');
    else app.log.info({ signal }, 'shutting down');
    stopPurge();
    stopSealing();
    await app.close();
    await database.close();
    redis?.disconnect();
  });

  await app.listen({ port: config.port, host: config.host });
}

await main();
