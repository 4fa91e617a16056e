import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { DatabaseHandle } from '../db/connection.js';
import { STAFF } from '../auth/access.js';
import { PageQuery, pageOf } from '../http/pagination.js';
import { CalendarDay, errorResponses, Timestamp, Uuid } from '../http/schemas.js';
import { sealPending, verifyChain } from './chain.js';
import { listAuditEntries } from './service.js';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()]);
const Day = { ...CalendarDay, description: 'YYYY-MM-DD, UTC, inclusive' };

const AuditEntry = Type.Object({
  id: Uuid,
  sequence: Nullable(Type.Integer({ description: 'Position in the hash chain; null until the sealer has chained the entry' })),
  at: Timestamp,
  actor_id: Nullable(Uuid),
  actor_role: Nullable(Type.String()),
  action: Type.String({ description: 'domain.verb, like transfer.created' }),
  target_type: Nullable(Type.String()),
  target_id: Nullable(Type.String()),
  ip: Nullable(Type.String()),
  request_id: Nullable(Type.String()),
  details: Type.Unknown(),
  prev_hash: Nullable(Type.String()),
  hash: Nullable(Type.String({ description: 'SHA-256 over prev_hash and the RFC 8785 canonical JSON of the entry' })),
});

const AuditQuery = Type.Object(
  {
    actor_id: Type.Optional(Uuid),
    action: Type.Optional(Type.String({ pattern: '^[a-z_]+\\.[a-z_]+$' })),
    target_type: Type.Optional(Type.String({ maxLength: 50 })),
    target_id: Type.Optional(Type.String({ maxLength: 100 })),
    from: Type.Optional(Day),
    to: Type.Optional(Day),
    ...PageQuery,
  },
  { additionalProperties: false },
);

const Verification = Type.Object({
  ok: Type.Boolean(),
  checked: Type.Integer({ description: 'Links recomputed' }),
  first_invalid_sequence: Nullable(Type.Integer()),
  sealed: Type.Integer({ description: 'Entries in the chain' }),
  unsealed: Type.Integer({ description: 'Entries written but not chained yet' }),
  sealer_lag_seconds: Type.Number({ description: 'Age of the oldest entry waiting for the sealer' }),
});

export const auditRoutes: FastifyPluginAsyncTypebox<{ database: DatabaseHandle }> = async (app, { database }) => {
  app.get(
    '/audit-logs',
    {
      config: { access: STAFF },
      schema: {
        operationId: 'listAuditLogs',
        summary: 'The audit log, newest first (auditor, admin)',
        tags: ['reports'],
        querystring: AuditQuery,
        response: { 200: pageOf(AuditEntry), ...errorResponses('validation_error', 'unauthorized', 'forbidden') },
      },
    },
    async (request) => {
      const { actor_id, action, target_type, target_id, from, to, limit, cursor } = request.query;
      return listAuditEntries(database.db, {
        limit: limit ?? 20,
        ...(actor_id ? { actorId: actor_id } : {}),
        ...(action ? { action } : {}),
        ...(target_type ? { targetType: target_type } : {}),
        ...(target_id ? { targetId: target_id } : {}),
        ...(from ? { from } : {}),
        ...(to ? { to } : {}),
        ...(cursor ? { cursor } : {}),
      });
    },
  );

  app.get(
    '/audit-logs/verify',
    {
      config: { access: STAFF },
      schema: {
        operationId: 'verifyAuditLog',
        summary: 'Seal what is pending, then recompute the hash chain from its start (auditor, admin)',
        tags: ['reports'],
        response: { 200: Verification, ...errorResponses('unauthorized', 'forbidden') },
      },
    },
    async () => {
      await sealPending(database);
      return verifyChain(database.db);
    },
  );
};
