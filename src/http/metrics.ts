import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

/**
 * Prometheus metrics of this process: request latency by route and status, and the process's own
 * (event-loop lag, heap, GC). One registry per app, so apps built side by side in tests do not collide;
 * it is returned for domains to add their own (transfer batch sizes).
 * Money counts belong to the ledger, not to a process: ask reconciliation for those.
 */
export function registerMetrics(app: FastifyInstance): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const problems = new Counter({
    name: 'http_problems_total',
    help: 'Error answers by stable error code',
    labelNames: ['code'] as const,
    registers: [registry],
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    duration.observe({ method: request.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    if (reply.problemCode) problems.inc({ code: reply.problemCode });
  });

  app.get(
    '/metrics',
    {
      config: { access: 'public' },
      schema: {
        operationId: 'metrics',
        summary: 'Prometheus metrics in the text exposition format (scrape from the internal network only)',
        tags: ['operations'],
        produces: ['text/plain'],
        response: {
          200: { type: 'string', description: 'Prometheus text format' },
          400: { $ref: 'Problem#', description: 'A malformed request' },
        },
      },
    },
    async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()),
  );
  return registry;
}
