import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { DatabaseHandle } from '../db/connection.js';
import { withTransaction } from '../db/transaction.js';
import { actorOf, ANY_ROLE, callerOf, STAFF } from '../auth/access.js';
import { errorResponses, IdParams } from '../http/schemas.js';
import { ListUsersQuery, UpdateUserBody, User, UserPage } from './schemas.js';
import { getVisibleUser, listUsers, toUserView, updateUser } from './service.js';

export const userRoutes: FastifyPluginAsyncTypebox<{ database: DatabaseHandle }> = async (app, { database }) => {
  app.get(
    '/users',
    {
      config: { access: STAFF },
      schema: {
        operationId: 'listUsers',
        summary: 'List users, oldest first (admin, auditor)',
        tags: ['users'],
        querystring: ListUsersQuery,
        response: { 200: UserPage, ...errorResponses('validation_error', 'unauthorized', 'forbidden') },
      },
    },
    async (request) => {
      const { role, limit, cursor } = request.query;
      return listUsers(database.db, { limit: limit ?? 20, ...(role ? { role } : {}), ...(cursor ? { cursor } : {}) });
    },
  );

  app.get(
    '/users/:id',
    {
      config: { access: ANY_ROLE },
      schema: {
        operationId: 'getUser',
        summary: 'Read a user (staff, or the user itself)',
        tags: ['users'],
        params: IdParams,
        response: { 200: Type.Ref(User), ...errorResponses('validation_error', 'unauthorized', 'not_found') },
      },
    },
    async (request) => toUserView(await getVisibleUser(database.db, callerOf(request), request.params.id)),
  );

  app.patch(
    '/users/:id',
    {
      config: { access: ['admin'] },
      schema: {
        operationId: 'updateUser',
        summary: 'Rename, disable or enable a user (admin); disabling ends its sessions at once',
        tags: ['users'],
        params: IdParams,
        body: UpdateUserBody,
        response: { 200: Type.Ref(User), ...errorResponses('validation_error', 'unauthorized', 'forbidden', 'not_found') },
      },
    },
    async (request) => {
      const { name, is_active } = request.body;
      const user = await withTransaction(database, (tx) =>
        updateUser(tx, actorOf(request), request.params.id, {
          ...(name !== undefined ? { name } : {}),
          ...(is_active !== undefined ? { isActive: is_active } : {}),
        }),
      );
      return toUserView(user);
    },
  );
};
