import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Actor } from '../audit/record.js';
import type { AuthenticatedUser, AuthService, TokenHolder } from './service.js';
import type { Role } from '../db/schema.js';
import { DomainError } from '../errors.js';

/** Who may call a route: declared once, next to the route, in its `config.access`. */
export type Access = 'public' | readonly Role[];

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
    /**
     * The route's own database statement checks what the access hook otherwise looks up before the
     * request is read (the token issued and not revoked, its session alive, its user active with the
     * role the token claims), in the same transaction as its work: the hook verifies the token's
     * signature, expiry and claims and the claimed role against `access`, and sets `tokenHolder`, not
     * `user`. Only the transfer does this (transfer_batch: src/transfers/sql/transfer_batch.sql; docs/security.md).
     */
    tokenCheckedByStatement?: boolean;
  }
  interface FastifyRequest {
    user: AuthenticatedUser | null;
    tokenHolder: TokenHolder | null;
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
  if (!request.user)
    throw new Error(`route ${request.routeOptions.url} reads the caller but is public or checks the token in its statement`);
  return request.user;
}

/** The holder of a verified token, on a route whose statement checks the rest (tokenCheckedByStatement). */
export function tokenHolderOf(request: FastifyRequest): TokenHolder {
  if (!request.tokenHolder)
    throw new Error(`route ${request.routeOptions.url} reads the token holder but does not check the token in its statement`);
  return request.tokenHolder;
}

export function actorOf(request: FastifyRequest): Actor {
  const caller = request.user ?? request.tokenHolder;
  return { id: caller?.id ?? null, role: caller?.role ?? null, ip: request.ip, requestId: request.id };
}

/**
 * The token of an `Authorization: Bearer <token>` header. The scheme's name is case-insensitive (RFC
 * 9110 §11.1); the token must have a JWT's three base64url parts.
 */
function bearerTokenOf(header: string | undefined): string {
  if (!header) throw new DomainError('unauthorized', 'A bearer access token is required (Authorization: Bearer <token>)');
  const [, scheme, token] = /^(\S+)(?: +(\S*))?$/.exec(header.trim()) ?? [];
  if (scheme?.toLowerCase() !== 'bearer') throw new DomainError('unauthorized', 'The Authorization header must use the Bearer scheme');
  if (!token || !/^[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]*$/.test(token))
    throw new DomainError('unauthorized', 'The access token is malformed');
  return token;
}

export function registerAccessControl(app: FastifyInstance, auth: AuthService): void {
  app.decorateRequest('user', null);
  app.decorateRequest('tokenHolder', null);

  app.addHook('onRoute', (route) => {
    const access = route.config?.access;
    if (access === undefined && !isPluginRoute(route.url, route.method) && route.method !== 'HEAD') {
      throw new Error(`route ${String(route.method)} ${route.url} declares no config.access`);
    }
  });

  // onRequest runs before the body is parsed: an anonymous caller learns nothing from validation errors.
  app.addHook('onRequest', async (request) => {
    const access = request.routeOptions.config?.access;
    if (access === undefined || access === 'public') return;
    const token = bearerTokenOf(request.headers.authorization);
    const checkedByStatement = request.routeOptions.config.tokenCheckedByStatement === true;
    if (checkedByStatement) {
      const holder = await auth.verifyToken(token);
      if (access.includes(holder.role)) {
        request.tokenHolder = holder;
        return;
      }
      // A claimed role that may not call the route is judged as on every route, by the lookup: 401
      // for a token that is not active, 403 for a role that may not call, the database's role winning.
    }
    request.user = await auth.authenticate(token);
    if (!access.includes(request.user.role)) throw new DomainError('forbidden', 'Your role may not call this endpoint');
    if (checkedByStatement) request.tokenHolder = request.user;
  });
}
