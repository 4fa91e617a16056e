import formbody from '@fastify/formbody';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { accountRoutes } from './accounts/routes.js';
import { PasswordHasher } from './auth/passwords.js';
import { authRoutes } from './auth/routes.js';
import { AuthService } from './auth/service.js';
import { TokenService } from './auth/tokens.js';
import type { Config } from './config.js';
import type { DatabaseHandle } from './db/connection.js';
import { registerAccessControl, type Access } from './http/access.js';
import { registerDocs, SECURITY } from './http/docs.js';
import { registerErrorHandling } from './http/errors.js';
import { fastifyOptions, validatorCompiler } from './http/fastify-options.js';
import { operationRoutes } from './http/operations.js';
import { transferRoutes } from './transfers/routes.js';
import { ledgerRoutes } from './ledger/routes.js';
import { Account } from './accounts/schemas.js';
import { User } from './auth/schemas.js';
import { Problem } from './http/schemas.js';
import { Transaction } from './ledger/schemas.js';

export interface AppDependencies {
  config: Config;
  database: DatabaseHandle;
  /** Fastify's logger option; tests pass false. */
  logger?: FastifyServerOptions['logger'];
}

declare module 'fastify' {
  interface FastifyInstance {
    auth: AuthService;
  }
}

/** Builds the whole service on a migrated database. It never listens: server.ts and the tests do that. */
export async function buildApp({ config, database, logger }: AppDependencies): Promise<FastifyInstance> {
  const app = Fastify(fastifyOptions(config, logger)).withTypeProvider<TypeBoxTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);

  const auth = new AuthService(database, new PasswordHasher(config.bcryptCost), new TokenService(config.jwtSecret, config.jwtAlgorithm, config.jwtExpirationSeconds));
  app.decorate('auth', auth);

  registerErrorHandling(app);
  registerAccessControl(app, auth);
  // Protected operations name both schemes in the document, so a token from Swagger UI's Authorize is sent.
  app.addHook('onRoute', (route) => {
    const access = (route.config as { access?: Access } | undefined)?.access;
    if (access === undefined || access === 'public' || !route.schema) return;
    route.schema.security ??= SECURITY;
  });
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  // An optional JSON body may be absent; validate it as the empty object it means.
  app.addHook('preValidation', async (request) => {
    if (request.body === undefined && request.routeOptions.schema?.body) request.body = {};
  });

  // Shared wire shapes, referenced by $id from the routes and listed once in the OpenAPI components.
  for (const schema of [Problem, User, Account, Transaction]) app.addSchema(schema);
  await app.register(formbody);
  await registerDocs(app);
  await app.register(operationRoutes, { database });
  await app.register(authRoutes, { auth });
  await app.register(accountRoutes, { config, database });
  await app.register(transferRoutes, { database });
  await app.register(ledgerRoutes, { database });
  await app.ready();
  return app;
}
