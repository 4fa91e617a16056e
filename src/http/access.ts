import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Actor } from '../audit/record.js';
import type { AuthenticatedUser, AuthService } from '../auth/service.js';
import type { Role } from '../db/schema.js';
import { DomainError } from './errors.js';

/** Who may call a route: declared once, next to the route, in its `config.access`. */
export type Access = 'public' | readonly Role[];

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
  interface FastifyRequest {
    user: AuthenticatedUser | null;
  }
}

export const ANY_ROLE: readonly Role[] = ['customer', 'admin', 'auditor'];
export const STAFF: readonly Role[] = ['admin', 'auditor'];

/**
 * Routes that third-party plugins register (documentation, CORS preflight) are public; every other route
 * must say who may call it.
 */
const PLUGIN_ROUTE = /^\/(docs|redoc)(\/|$)|^\/openapi\.json$/;
const isPluginRoute = (url: string, method: string | string[]) => PLUGIN_ROUTE.test(url) || method === 'OPTIONS';

/** The authenticated caller; routes reach it only behind an access rule that requires a token. */
export function callerOf(request: FastifyRequest): AuthenticatedUser {
  if (!request.user) throw new Error(`route ${request.routeOptions.url} reads the caller but is public`);
  return request.user;
}

export function actorOf(request: FastifyRequest): Actor {
  return { id: request.user?.id ?? null, role: request.user?.role ?? null, ip: request.ip, requestId: request.id };
}

export function registerAccessControl(app: FastifyInstance, auth: AuthService): void {
  app.decorateRequest('user', null);

  app.addHook('onRoute', (route) => {
    const access = (route.config as { access?: Access } | undefined)?.access;
    if (access === undefined && !isPluginRoute(route.url, route.method) && route.method !== 'HEAD') {
      throw new Error(`route ${String(route.method)} ${route.url} declares no config.access`);
    }
  });

  // onRequest runs before the body is parsed: an anonymous caller learns nothing from validation errors.
  app.addHook('onRequest', async (request) => {
    const access = request.routeOptions.config?.access;
    if (access === undefined || access === 'public') return;
    const header = request.headers.authorization;
    const match = header ? /^Bearer ([A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]*)$/.exec(header) : null;
    if (!match) throw new DomainError('unauthorized', 'A bearer access token is required');
    request.user = await auth.authenticate(match[1]!);
    if (!access.includes(request.user.role)) throw new DomainError('forbidden', 'Your role may not call this endpoint');
  });
}
