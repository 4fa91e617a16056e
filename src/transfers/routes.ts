import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Config } from '../config.js';
import type { DatabaseHandle } from '../db/connection.js';
import { withTransaction } from '../db/transaction.js';
import { actorOf, ANY_ROLE, callerOf, STAFF, tokenHolderOf } from '../auth/access.js';
import { IdempotencyHeaders, idempotencyScopeOf, runIdempotent, sendOutcome } from '../http/idempotency.js';
import { DomainError } from '../errors.js';
import { amountField, errorResponses, IdParams } from '../http/schemas.js';
import { accountNumberField } from '../accounts/account-number.js';
import { Transaction } from '../ledger/schemas.js';
import { reverseTransaction } from './reversal.js';
import { approveTransfer, listFlagged, rejectTransfer } from './review.js';
import { ApproveBody, FlaggedQuery, ListTransactionsQuery, ReasonBody, TransactionPage, TransferBody, TransferResult } from './schemas.js';
import { getVisibleTransaction, listTransactions, type TransferQueue } from './service.js';

export interface TransferRouteOptions {
  config: Config;
  database: DatabaseHandle;
  /** The group commit of transfers (createTransferQueue), built by the app. */
  transfers: TransferQueue;
  clock: () => Date;
}

export const transferRoutes: FastifyPluginAsyncTypebox<TransferRouteOptions> = async (app, { config, database, transfers, clock }) => {
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
        idempotency: idempotencyScopeOf(request, holder.id, input),
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
    async (request) =>
      listFlagged(database.db, { limit: request.query.limit ?? 20, ...(request.query.cursor ? { cursor: request.query.cursor } : {}) }),
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
      withTransaction(database, (tx) =>
        approveTransfer(tx, { ...actorOf(request), id: callerOf(request).id }, request.params.id, request.body.note ?? null, clock()),
      ),
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
        response: {
          200: Type.Ref(Transaction),
          ...errorResponses('validation_error', 'unauthorized', 'forbidden', 'not_found', 'not_pending'),
        },
      },
    },
    async (request) =>
      withTransaction(database, (tx) =>
        rejectTransfer(tx, { ...actorOf(request), id: callerOf(request).id }, request.params.id, request.body.reason, clock()),
      ),
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
      return runIdempotent(database, request, reply, { status: 201, userId: callerOf(request).id, meaning: { id, reason } }, (tx) =>
        reverseTransaction(tx, { ...actorOf(request), id: callerOf(request).id }, id, reason, clock()),
      );
    },
  );
};
