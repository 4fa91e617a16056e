import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import type { DatabaseHandle } from '../db/connection.js';
import { problem, sendProblem } from './errors.js';

export async function operationRoutes(app: FastifyInstance, { database }: { database: DatabaseHandle }): Promise<void> {
  app.get(
    '/health',
    {
      config: { access: 'public' },
      schema: {
        operationId: 'health',
        summary: 'Liveness: the process answers',
        tags: ['operations'],
        response: {
          200: { type: 'object', properties: { status: { type: 'string', enum: ['ok'] } }, required: ['status'] },
          400: { $ref: 'Problem#', description: 'A malformed request' },
        },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/ready',
    {
      config: { access: 'public' },
      schema: {
        operationId: 'ready',
        summary: 'Readiness: the database answers',
        tags: ['operations'],
        response: {
          200: { type: 'object', properties: { status: { type: 'string', enum: ['ok'] } }, required: ['status'] },
          400: { $ref: 'Problem#', description: 'A malformed request' },
          503: { $ref: 'Problem#', description: 'The database does not answer' },
        },
      },
    },
    async (request, reply) => {
      try {
        await sql`SELECT 1`.execute(database.db);
        return { status: 'ok' as const };
      } catch (error) {
        request.log.warn({ err: error }, 'readiness check failed');
        return sendProblem(reply, problem('service_unavailable', 'The database does not answer'));
      }
    },
  );
}
