import cors from '@fastify/cors';
import helmet from 'helmet';
import rateLimit from '@fastify/rate-limit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Redis } from 'ioredis';
import { Histogram } from 'prom-client';
import { accountRoutes } from './accounts/routes.js';
import { auditRoutes } from './audit/routes.js';
import { Account } from './accounts/schemas.js';
import { DatabaseLoginThrottle, RedisLoginThrottle } from './auth/lockout.js';
import { PasswordHasher } from './auth/passwords.js';
import { authRoutes } from './auth/routes.js';
import { AuthService } from './auth/service.js';
import { TokenService } from './auth/tokens.js';
import type { Config } from './config.js';
import type { DatabaseHandle } from './db/connection.js';
import { registerAccessControl } from './auth/access.js';
import { CONTENT_SECURITY_POLICY, registerDocs, SECURITY } from './http/docs.js';
import { registerErrorHandling } from './http/errors.js';
import { refuseUnstorableText } from './http/input.js';
import { registerJsonBodyParser } from './http/json-body.js';
import { fastifyOptions, validatorCompiler } from './http/fastify-options.js';
import { registerMetrics } from './http/metrics.js';
import { operationRoutes } from './http/operations.js';
import { Problem } from './http/schemas.js';
import { ledgerRoutes } from './ledger/routes.js';
import { Transaction } from './ledger/schemas.js';
import { loanRoutes } from './loans/routes.js';
import { statementRoutes } from './statements/routes.js';
import { transferRoutes } from './transfers/routes.js';
import { createTransferQueue } from './transfers/service.js';
import { userRoutes } from './users/routes.js';
import { User } from './users/schemas.js';

export interface AppDependencies {
  config: Config;
  database: DatabaseHandle;
  /** Shared counters (rate limits, lockout) when several instances run; the database holds them otherwise. */
  redis?: Redis;
  /** Fastify's logger option; tests pass false. */
  logger?: FastifyServerOptions['logger'];
  /**
   * What "now" is: the instant of every posting (ledger/post.ts, postingInstant) and of rules that depend
   * on the date (overdue loan installments); tests inject their own.
   */
  clock?: () => Date;
}

declare module 'fastify' {
  interface FastifyInstance {
    auth: AuthService;
  }
}

/** Builds the whole service on a migrated database. It never listens: server.ts and the tests do that. */
export async function buildApp({ config, database, redis, logger, clock = () => new Date() }: AppDependencies): Promise<FastifyInstance> {
  const app = Fastify(fastifyOptions(config, logger)).withTypeProvider<TypeBoxTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);

  const lockoutPolicy = { maxFailures: config.loginMaxFailures, lockoutSeconds: config.loginLockoutMinutes * 60 };
  const auth = new AuthService(
    database,
    new PasswordHasher(config.bcryptCost),
    new TokenService(config.jwtSecret, config.jwtAlgorithm, config.jwtExpirationSeconds),
    redis ? new RedisLoginThrottle(redis, lockoutPolicy) : new DatabaseLoginThrottle(database.db, lockoutPolicy),
    config.refreshExpirationSeconds,
  );
  app.decorate('auth', auth);

  registerErrorHandling(app);
  // Before the access hook, whose 401 and 403 answers must carry the security headers too. Helmet's
  // middleware is made once here: @fastify/helmet made it anew for every request, parsing the policy
  // each time (BENCHMARKS.md).
  const setSecurityHeaders = helmet({ contentSecurityPolicy: { directives: CONTENT_SECURITY_POLICY }, hsts: config.isProduction });
  app.addHook('onRequest', (request, reply, done) =>
    setSecurityHeaders(request.raw, reply.raw, (error?: unknown) => done(error as Error | undefined)),
  );
  registerAccessControl(app, auth);
  refuseUnstorableText(app);
  // Protected operations name both schemes in the document, so a token from Swagger UI's Authorize is
  // sent; public ones say explicitly that they need none.
  app.addHook('onRoute', (route) => {
    const access = route.config?.access;
    if (access === undefined || !route.schema) return;
    route.schema.security ??= access === 'public' ? [] : SECURITY;
  });
  // While shutting down, answers to requests already in flight close their keep-alive connection, so
  // the server can finish closing instead of waiting for idle sockets to time out.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
    if (closing) reply.header('connection', 'close');
  });
  // An optional JSON body may be absent; validate it as the empty object it means.
  app.addHook('preValidation', async (request) => {
    if (request.body === undefined && request.routeOptions.schema?.body) request.body = {};
  });

  if (config.corsOrigins.length > 0) {
    await app.register(cors, { origin: config.corsOrigins, exposedHeaders: ['x-request-id', 'retry-after', 'idempotent-replayed'] });
  }
  // Per route (transfers); counted in Redis when configured, so all instances share one budget per user.
  await app.register(rateLimit, { global: false, ...(redis ? { redis, nameSpace: 'rate-limit:' } : {}) });

  // Shared wire shapes, referenced by $id from the routes and listed once in the OpenAPI components.
  for (const schema of [Problem, User, Account, Transaction]) app.addSchema(schema);
  // JSON everywhere (the login route adds the OAuth2 form in its own scope): anything else is 415, not
  // a string for a handler to trip on.
  app.removeContentTypeParser('text/plain');
  registerJsonBodyParser(app);
  await registerDocs(app);
  await app.register(operationRoutes, { database });
  const metrics = registerMetrics(app);
  await app.register(authRoutes, { auth });
  await app.register(userRoutes, { database });
  await app.register(accountRoutes, { config, database, clock });
  const batchSizes = new Histogram({
    name: 'transfer_batch_size',
    help: 'Transfers committed together in one database transaction (group commit)',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers: [metrics],
  });
  const transfers = createTransferQueue(database, config, clock, (size) => batchSizes.observe(size));
  await app.register(transferRoutes, { config, database, transfers, clock });
  await app.register(ledgerRoutes, { database });
  await app.register(auditRoutes, { database });
  await app.register(loanRoutes, { config, database, clock });
  await app.register(statementRoutes, { config, database, clock });
  await app.ready();
  return app;
}
