import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

const require = createRequire(import.meta.url);
const REDOC_BUNDLE = require.resolve('redoc/bundles/redoc.standalone.js');

export const SECURITY: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { oauth2: [] }];

/**
 * Every answer's Content-Security-Policy (set by helmet): nothing loads from another host. Swagger UI
 * and ReDoc need inline styles, data: images and (ReDoc) a blob: worker; ReDoc's bundle always draws a
 * footer logo from a CDN, which registerDocs rewrites and this policy would block anyway.
 */
export const CONTENT_SECURITY_POLICY = {
  defaultSrc: ["'self'"],
  imgSrc: ["'self'", 'data:'],
  styleSrc: ["'self'", "'unsafe-inline'"],
  scriptSrc: ["'self'"],
  workerSrc: ["'self'", 'blob:'],
  fontSrc: ["'self'", 'data:'],
  connectSrc: ["'self'"],
  objectSrc: ["'none'"],
  frameAncestors: ["'none'"],
  baseUri: ["'self'"],
  formAction: ["'self'"],
};

const REDOC_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Banking API — ReDoc</title>
</head>
<body>
<div id="redoc"></div>
<script src="/redoc/redoc.standalone.js"></script>
<script src="/redoc/init.js"></script>
</body>
</html>`;

const REDOC_INIT = `Redoc.init('/openapi.json', { hideDownloadButton: false, expandResponses: '200,201' }, document.getElementById('redoc'));`;

/** The OpenAPI document (from the route schemas), Swagger UI at /docs and ReDoc at /redoc, all served from this host. */
export async function registerDocs(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Modular Banking Backend',
        version: '1.0.0',
        description:
          'Core-banking API: customers, accounts, a double-entry ledger, transfers, loans, statements and a tamper-evident audit log. ' +
          'Amounts are decimal strings with two fraction digits. Errors are application/problem+json with a stable `code`.',
        license: { name: 'MIT', url: 'https://opensource.org/licenses/MIT' },
      },
      servers: [{ url: '/' }],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          oauth2: { type: 'oauth2', flows: { password: { tokenUrl: '/auth/login', scopes: {} } } },
        },
      },
      tags: [
        { name: 'auth', description: 'Login, tokens and registration' },
        { name: 'users', description: 'Users (staff)' },
        { name: 'accounts', description: 'Accounts and teller operations' },
        { name: 'transactions', description: 'Transfers and the transaction record' },
        {
          name: 'review',
          description:
            'Risky transfers wait for review with their amount held (available balance falls, balance does not). ' +
            'An admin approves (the money moves) or rejects (the hold is released); completed transactions can be reversed once.',
        },
        { name: 'loans', description: 'Loan applications, decisions, schedules and repayments' },
        { name: 'statements', description: 'Statements (JSON, CSV, PDF) and balances as the journal stood at an instant' },
        { name: 'reports', description: 'Reconciliation and audit reports' },
        { name: 'operations', description: 'Health, readiness and metrics' },
      ],
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { persistAuthorization: true, displayOperationId: false },
    // The bundled UI would otherwise ask validator.swagger.io to check the document.
    validatorUrl: false,
  });

  // The bundle's footer logo is the one thing it would fetch from another host; point it at an empty image.
  const bundle = readFileSync(REDOC_BUNDLE, 'utf8').replace(
    'https://cdn.redoc.ly/redoc/logo-mini.svg',
    'data:image/svg+xml,%3Csvg xmlns=%27http://www.w3.org/2000/svg%27/%3E',
  );
  app.get('/openapi.json', { config: { access: 'public' }, schema: { hide: true } }, async () => app.swagger());
  app.get('/redoc', { config: { access: 'public' }, schema: { hide: true } }, async (_request, reply) =>
    reply.type('text/html; charset=utf-8').send(REDOC_PAGE),
  );
  app.get('/redoc/redoc.standalone.js', { config: { access: 'public' }, schema: { hide: true } }, async (_request, reply) =>
    reply.header('cache-control', 'public, max-age=86400').type('application/javascript; charset=utf-8').send(bundle),
  );
  app.get('/redoc/init.js', { config: { access: 'public' }, schema: { hide: true } }, async (_request, reply) =>
    reply.type('application/javascript; charset=utf-8').send(REDOC_INIT),
  );
}
