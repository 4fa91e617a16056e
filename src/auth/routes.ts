import formbody from '@fastify/formbody';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import { actorOf, ANY_ROLE, callerOf } from './access.js';
import { validationError } from '../errors.js';
import { errorResponses } from '../http/schemas.js';
import { User } from '../users/schemas.js';
import { ChangePasswordBody, FormLogin, JsonLogin, RefreshBody, RegisterBody, TokenResponse } from './schemas.js';
import type { AuthService } from './service.js';

const NoContent = Type.Null({ description: 'Done' });

/**
 * The login route in a scope of its own, the only one that reads form-encoded bodies: the OAuth2
 * password flow (RFC 6749 §4.3) that Swagger UI's Authorize sends. Every other route takes JSON only.
 */
const loginRoute: FastifyPluginAsyncTypebox<{ auth: AuthService }> = async (app, { auth }) => {
  await app.register(formbody);
  app.post(
    '/auth/login',
    {
      config: { access: 'public' },
      schema: {
        operationId: 'login',
        summary: 'Log in with email and password (JSON, or the OAuth2 password form)',
        tags: ['auth'],
        body: { content: { 'application/json': { schema: JsonLogin }, 'application/x-www-form-urlencoded': { schema: FormLogin } } },
        response: { 200: TokenResponse, ...errorResponses('validation_error', 'invalid_credentials', 'too_many_attempts') },
      },
    },
    async (request) => {
      // Fastify validates a body by its content type; a request with none (or no body) reaches here unchecked.
      const body = request.body as Partial<Static<typeof JsonLogin> & Static<typeof FormLogin>> | undefined;
      const email = body?.email ?? body?.username;
      if (typeof email !== 'string' || typeof body?.password !== 'string') {
        throw validationError('email', 'and password are required, as JSON or as an OAuth2 password form');
      }
      return auth.login(actorOf(request), email, body.password);
    },
  );
};

export const authRoutes: FastifyPluginAsyncTypebox<{ auth: AuthService }> = async (app, { auth }) => {
  await app.register(loginRoute, { auth });

  app.post(
    '/auth/refresh',
    {
      config: { access: 'public' },
      schema: {
        operationId: 'refresh',
        summary: 'Exchange a refresh token (single use) for a new token pair',
        tags: ['auth'],
        body: RefreshBody,
        response: { 200: TokenResponse, ...errorResponses('validation_error', 'unauthorized') },
      },
    },
    async (request) => auth.refresh(actorOf(request), request.body.refresh_token),
  );

  app.post(
    '/auth/logout',
    {
      config: { access: ANY_ROLE },
      schema: {
        operationId: 'logout',
        summary: 'End this session: its refresh token and this access token stop working',
        tags: ['auth'],
        response: { 204: NoContent, ...errorResponses('unauthorized') },
      },
    },
    async (request, reply) => {
      await auth.logout(actorOf(request), callerOf(request));
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/auth/change-password',
    {
      config: { access: ANY_ROLE },
      schema: {
        operationId: 'changePassword',
        summary: 'Change your password; your other sessions are ended',
        tags: ['auth'],
        body: ChangePasswordBody,
        response: { 204: NoContent, ...errorResponses('validation_error', 'unauthorized', 'invalid_credentials') },
      },
    },
    async (request, reply) => {
      await auth.changePassword(actorOf(request), callerOf(request), request.body.current_password, request.body.new_password);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/auth/register',
    {
      config: { access: ['admin'] },
      schema: {
        operationId: 'registerUser',
        summary: 'Register a user (admin); answers the new user and a token for it',
        tags: ['auth'],
        body: RegisterBody,
        response: { 201: TokenResponse, ...errorResponses('validation_error', 'unauthorized', 'forbidden', 'email_taken') },
      },
    },
    async (request, reply) => {
      const { name, email, password, role } = request.body;
      return reply.code(201).send(await auth.register(actorOf(request), { name, email, password, role: role ?? 'customer' }));
    },
  );

  app.get(
    '/auth/me',
    {
      config: { access: ANY_ROLE },
      schema: {
        operationId: 'me',
        summary: 'The authenticated user',
        tags: ['auth'],
        response: { 200: Type.Ref(User), ...errorResponses('unauthorized') },
      },
    },
    async (request) => auth.me(callerOf(request).id),
  );
};
