import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { DatabaseHandle } from '../db/connection.js';
import { withTransaction } from '../db/transaction.js';
import { actorOf, ANY_ROLE, callerOf } from '../http/access.js';
import { accountNumberField, amountField, errorResponses, IdParams } from '../http/schemas.js';
import { Transaction } from '../ledger/schemas.js';
import { TransferBody, TransferResult } from './schemas.js';
import { getVisibleTransaction, transfer } from './service.js';

export const transferRoutes: FastifyPluginAsyncTypebox<{ database: DatabaseHandle }> = async (app, { database }) => {
  app.post(
    '/transactions/transfer',
    {
      config: { access: ['customer'] },
      schema: {
        operationId: 'transfer',
        summary: 'Transfer money from one of your accounts to another account',
        tags: ['transactions'],
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
          ),
        },
      },
    },
    async (request, reply) => {
      const caller = callerOf(request);
      const input = {
        fromAccount: accountNumberField('from_account', request.body.from_account),
        toAccount: accountNumberField('to_account', request.body.to_account),
        amount: amountField('amount', request.body.amount),
        description: request.body.description ?? null,
      };
      const transaction = await withTransaction(database, (tx) => transfer(tx, { ...actorOf(request), id: caller.id }, input));
      return reply.code(201).send({ ...transaction, transaction_id: transaction.id });
    },
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
    async (request) => withTransaction(database, (tx) => getVisibleTransaction(tx, callerOf(request), request.params.id)),
  );
};
