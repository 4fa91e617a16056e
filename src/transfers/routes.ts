import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { Histogram, type Registry } from 'prom-client';
import type { Config } from '../config.js';
import type { DatabaseHandle } from '../db/connection.js';
import { BatchQueue } from '../db/batch-queue.js';
import { sqlState, withAutocommit, withTransaction } from '../db/transaction.js';
import { actorOf, ANY_ROLE, callerOf, STAFF, tokenHolderOf } from '../http/access.js';
import { IdempotencyHeaders, idempotencyScopeOf, runIdempotent, sendOutcome, type Outcome } from '../http/idempotency.js';
import { databaseTrouble, DomainError } from '../http/errors.js';
import { accountNumberField, amountField, errorResponses, IdParams } from '../http/schemas.js';
import { Transaction } from '../ledger/schemas.js';
import { reverseTransaction } from './reversal.js';
import { approveTransfer, listFlagged, rejectTransfer } from './review.js';
import { ApproveBody, FlaggedQuery, ListTransactionsQuery, ReasonBody, TransactionPage, TransferBody, TransferResult } from './schemas.js';
import { getVisibleTransaction, listTransactions, transferBatch, type TransferRequest, type TransferView } from './service.js';

export const transferRoutes: FastifyPluginAsyncTypebox<{ config: Config; database: DatabaseHandle; metrics: Registry; clock: () => Date }> = async (
  app,
  { config, database, metrics, clock },
) => {
  const batchSizes = new Histogram({
    name: 'transfer_batch_size',
    help: 'Transfers committed together in one database transaction (group commit)',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers: [metrics],
  });
  // Group commit: the transfers that arrive while a batch is being committed are committed together.
  const transfers = new BatchQueue<TransferRequest, Outcome<TransferView>>({
    // The clock is read for each run: a batch run again after a serialization failure takes the time anew.
    run: (requests) => withAutocommit(database, (session) => transferBatch(session, requests, config, clock())),
    exclusiveKeyOf: ({ idempotency }) => (idempotency ? JSON.stringify([idempotency.userId, idempotency.endpoint, idempotency.key]) : null),
    // A lock wait that timed out may be one request's (a key in flight elsewhere, which transferBatch
    // answers idempotency_in_progress; a busy account, 55P03).
    mayBelongToOne: (error) => databaseTrouble(error) === undefined || sqlState(error) === '55P03',
    maxBatch: config.transferBatchSize,
    // PGlite has one session: a second batch would only queue for it.
    concurrency: database.engine === 'pglite' ? 1 : config.transferBatchConcurrency,
    startNextFirst: database.engine === 'postgres',
    onBatch: (size) => batchSizes.observe(size),
  });

  app.post(
    '/transactions/transfer',
    {
      config: {
        access: ['customer'],
        // transfer_batch checks the token's registration, session and user with the transfer itself.
        tokenCheckedByStatement: true,
        rateLimit: {
          max: config.rateLimitTransfersPerMinute,
          timeWindow: 60_000,
          // Per user: the access hook has verified the caller's token before this onRequest hook runs.
          keyGenerator: (request) => `transfer:${request.tokenHolder?.id ?? request.ip}`,
          errorResponseBuilder: (_request, context) =>
            new DomainError('rate_limited', `At most ${context.max} transfers a minute; retry in ${context.after}`, {
              retryAfterSeconds: Math.max(1, Math.ceil(context.ttl / 1000)),
            }),
        },
      },
      schema: {
        operationId: 'transfer',
        summary: 'Transfer money from one of your accounts to another account',
        tags: ['transactions'],
        headers: IdempotencyHeaders,
        body: TransferBody,
        response: {
          201: TransferResult,
          ...errorResponses(
            'validation_error',
            'unauthorized',
            'forbidden',
            'account_not_found',
            'account_not_active',
            'insufficient_funds',
            'daily_limit_exceeded',
            'currency_mismatch',
            'idempotency_key_reused',
            'idempotency_in_progress',
            'rate_limited',
          ),
        },
      },
    },
    async (request, reply) => {
      const holder = tokenHolderOf(request);
      const input = {
        fromAccount: accountNumberField('from_account', request.body.from_account),
        toAccount: accountNumberField('to_account', request.body.to_account),
        amount: amountField('amount', request.body.amount),
        description: request.body.description ?? null,
      };
      const outcome = await transfers.submit({
        actor: { ...actorOf(request), id: holder.id, role: holder.role, jti: holder.jti },
        input,
        idempotency: idempotencyScopeOf(request, input),
      });
      return sendOutcome(reply, 201, outcome);
    },
  );

  app.get(
    '/transactions/',
    {
      config: { access: ANY_ROLE },
      schema: {
        operationId: 'listTransactions',
        summary: 'List transactions, newest first: a customer those touching its accounts, staff all',
        tags: ['transactions'],
        querystring: ListTransactionsQuery,
        response: { 200: TransactionPage, ...errorResponses('validation_error', 'unauthorized', 'not_found') },
      },
    },
    async (request) => {
      const { account_id, status, type, from, to, limit, cursor } = request.query;
      return listTransactions(database.db, callerOf(request), {
        limit: limit ?? 20,
        ...(account_id ? { accountId: account_id } : {}),
        ...(status ? { status } : {}),
        ...(type ? { type } : {}),
        ...(from ? { from } : {}),
        ...(to ? { to } : {}),
        ...(cursor ? { cursor } : {}),
      });
    },
  );

  app.get(
    '/transactions/flagged',
    {
      config: { access: STAFF },
      schema: {
        operationId: 'listFlaggedTransactions',
        summary: 'The review queue: transfers pending review, oldest first (admin, auditor)',
        tags: ['review'],
        querystring: FlaggedQuery,
        response: { 200: TransactionPage, ...errorResponses('validation_error', 'unauthorized', 'forbidden') },
      },
    },
    async (request) => listFlagged(database.db, { limit: request.query.limit ?? 20, ...(request.query.cursor ? { cursor: request.query.cursor } : {}) }),
  );

  app.get(
    '/transactions/:id',
    {
      config: { access: ANY_ROLE },
      schema: {
        operationId: 'getTransaction',
        summary: 'Read a transaction (a customer: one touching its accounts)',
        tags: ['transactions'],
        params: IdParams,
        response: { 200: Type.Ref(Transaction), ...errorResponses('validation_error', 'unauthorized', 'not_found') },
      },
    },
    async (request) => getVisibleTransaction(database.db, callerOf(request), request.params.id),
  );

  app.post(
    '/transactions/:id/approve',
    {
      config: { access: ['admin'] },
      schema: {
        operationId: 'approveTransaction',
        summary: 'Approve a transfer pending review (admin): the held money moves',
        tags: ['review'],
        params: IdParams,
        body: ApproveBody,
        response: {
          200: Type.Ref(Transaction),
          ...errorResponses('validation_error', 'unauthorized', 'forbidden', 'not_found', 'not_pending', 'account_not_active'),
        },
      },
    },
    async (request) =>
      withTransaction(database, (tx) => approveTransfer(tx, { ...actorOf(request), id: callerOf(request).id }, request.params.id, request.body.note ?? null, clock())),
  );

  app.post(
    '/transactions/:id/reject',
    {
      config: { access: ['admin'] },
      schema: {
        operationId: 'rejectTransaction',
        summary: 'Reject a transfer pending review (admin): the hold is released',
        tags: ['review'],
        params: IdParams,
        body: ReasonBody,
        response: { 200: Type.Ref(Transaction), ...errorResponses('validation_error', 'unauthorized', 'forbidden', 'not_found', 'not_pending') },
      },
    },
    async (request) =>
      withTransaction(database, (tx) => rejectTransfer(tx, { ...actorOf(request), id: callerOf(request).id }, request.params.id, request.body.reason, clock())),
  );

  app.post(
    '/transactions/:id/reverse',
    {
      config: { access: ['admin'] },
      schema: {
        operationId: 'reverseTransaction',
        summary: 'Reverse a completed transfer, deposit or withdrawal (admin), at most once',
        tags: ['review'],
        params: IdParams,
        headers: IdempotencyHeaders,
        body: ReasonBody,
        response: {
          201: Type.Ref(Transaction),
          ...errorResponses(
            'validation_error',
            'unauthorized',
            'forbidden',
            'not_found',
            'already_reversed',
            'not_reversible',
            'insufficient_funds',
            'account_not_active',
            'idempotency_key_reused',
            'idempotency_in_progress',
          ),
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const { reason } = request.body;
      return runIdempotent(database, request, reply, 201, { id, reason }, (tx) =>
        reverseTransaction(tx, { ...actorOf(request), id: callerOf(request).id }, id, reason, clock()),
      );
    },
  );
};
