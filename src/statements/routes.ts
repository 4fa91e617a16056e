import { once } from 'node:events';
import { Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import type { Config } from '../config.js';
import type { DatabaseHandle } from '../db/connection.js';
import { withTransaction } from '../db/transaction.js';
import { ANY_ROLE, callerOf } from '../auth/access.js';
import { errorResponses, IdParams } from '../http/schemas.js';
import { renderStatementCsv } from './csv.js';
import { renderStatementPdf } from './pdf.js';
import { BalanceAt, BalanceQuery, StatementQuery, StatementResponse, type StatementFormat } from './schemas.js';
import { readBalanceAt, readStatement, readStatementHeader, resolveInstant, resolvePeriod, streamStatementEntries } from './service.js';

const FILE_TYPES: Record<Exclude<StatementFormat, 'json'>, string> = {
  csv: 'text/csv; charset=utf-8',
  pdf: 'application/pdf',
};

/**
 * Sends a stream and resolves once the stream has closed: read to the end, failed, or destroyed
 * because the response closed first (a client that went away, whom fastify answers by destroying the
 * stream; or a response that ended without ever reading it). Until then the stream's generator may
 * still be running a FETCH on the caller's transaction, so the transaction must not end before.
 */
async function sendUntilClosed(reply: FastifyReply, body: Readable): Promise<void> {
  const destroyBody = () => body.destroy();
  reply.raw.once('close', destroyBody);
  const closed = once(body, 'close');
  reply.send(body);
  try {
    await closed;
  } catch {
    // The stream failed: fastify has logged it and cut the response short (or answered with a problem
    // if nothing had been sent yet), so the client cannot mistake a partial file for a whole one.
  } finally {
    reply.raw.off('close', destroyBody);
  }
}

export const statementRoutes: FastifyPluginAsyncTypebox<{ config: Config; database: DatabaseHandle; clock: () => Date }> = async (
  app,
  { config, database, clock },
) => {
  // Rows per FETCH: what a statement holds in memory, and renders, between two turns of the event loop.
  // pdfkit draws about 10,000 rows a second on one core, so a PDF batch is a few pages (~25 ms of
  // work). On PGlite a statement's snapshot transaction holds the only session until its last byte, so
  // every other database request waits for it (the price of a consistent statement on a single-session
  // engine) and each FETCH runs on the event loop's own thread: small batches there too.
  const batchSizeFor = (format: StatementFormat): number => (database.engine === 'pglite' || format === 'pdf' ? 250 : 1000);

  app.get(
    '/accounts/:id/statement',
    {
      config: { access: ANY_ROLE },
      schema: {
        operationId: 'getStatement',
        summary: 'Account statement for a period, as JSON, CSV or PDF (its owner or staff)',
        description:
          'Balances come from the journal as it stood, not from today’s balance. `from` and `to` are inclusive UTC days; ' +
          'the period may span at most STATEMENT_MAX_DAYS days. CSV and PDF are streamed as the entries are read, all from one consistent snapshot.',
        tags: ['statements'],
        params: IdParams,
        querystring: StatementQuery,
        response: { 200: StatementResponse, ...errorResponses('validation_error', 'unauthorized', 'not_found') },
      },
    },
    async (request, reply) => {
      const caller = callerOf(request);
      const period = resolvePeriod(request.query, clock(), config.statementMaxDays);
      const format = request.query.format ?? 'json';
      if (format === 'json') {
        return withTransaction(database, (tx) => readStatement(tx, caller, request.params.id, period, batchSizeFor(format)), {
          snapshot: true,
        });
      }
      // The snapshot transaction lasts exactly as long as the download: withTransaction ends it (and the
      // cursor in it) and gives the connection back once sendUntilClosed returns, however the download ended.
      // A read-only REPEATABLE READ transaction never fails with a serialization error, so withTransaction
      // never retries this callback after it has started sending.
      await withTransaction(
        database,
        async (tx) => {
          const header = await readStatementHeader(tx, caller, request.params.id, period);
          const entries = streamStatementEntries(tx, header, batchSizeFor(format));
          const chunks =
            format === 'csv'
              ? renderStatementCsv(entries)
              : renderStatementPdf(header, entries, { bankName: config.bankName, issuedAt: clock() });
          reply
            .type(FILE_TYPES[format])
            .header(
              'content-disposition',
              `attachment; filename="statement-${header.account.account_number}-${period.from}-${period.to}.${format}"`,
            )
            .header('cache-control', 'no-store');
          // A small read-ahead: at most two chunks (batches) wait for a slow client.
          await sendUntilClosed(reply, Readable.from(chunks, { highWaterMark: 2 }));
        },
        { snapshot: true },
      );
      return reply;
    },
  );

  app.get(
    '/accounts/:id/balance',
    {
      config: { access: ANY_ROLE },
      schema: {
        operationId: 'getBalanceAt',
        summary: 'The balance as the journal stood at an instant (its owner or staff)',
        tags: ['statements'],
        params: IdParams,
        querystring: BalanceQuery,
        response: { 200: BalanceAt, ...errorResponses('validation_error', 'unauthorized', 'not_found') },
      },
    },
    async (request) => readBalanceAt(database.db, callerOf(request), request.params.id, resolveInstant(request.query.at, clock())),
  );
};
