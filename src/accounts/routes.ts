import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Config } from '../config.js';
import type { DatabaseHandle } from '../db/connection.js';
import { withTransaction } from '../db/transaction.js';
import { IdempotencyHeaders, runIdempotent } from '../http/idempotency.js';
import { actorOf, ANY_ROLE, callerOf } from '../auth/access.js';
import { amountField, errorResponses, IdParams } from '../http/schemas.js';
import { Transaction } from '../ledger/schemas.js';
import {
  Account,
  AccountPage,
  CreateAccountBody,
  CreateAccountQuery,
  ListAccountsQuery,
  TellerBody,
  UpdateAccountBody,
} from './schemas.js';
import { deposit, getVisibleAccount, listAccounts, openAccount, toAccountView, updateAccount, withdraw } from './service.js';

export interface AccountRouteOptions {
  config: Config;
  database: DatabaseHandle;
  /** The instant of every posting (ledger/post.ts, postingInstant); tests move it. */
  clock: () => Date;
}

export const accountRoutes: FastifyPluginAsyncTypebox<AccountRouteOptions> = async (app, { config, database, clock }) => {
  app.post(
    '/accounts/',
    {
      config: { access: ['admin'] },
      schema: {
        operationId: 'openAccount',
        summary: 'Open an account for a customer (admin), with an optional initial deposit from the bank’s cash',
        tags: ['accounts'],
        querystring: CreateAccountQuery,
        body: Type.Optional(CreateAccountBody),
        response: {
          201: Type.Ref(Account),
          ...errorResponses('validation_error', 'unauthorized', 'forbidden', 'user_not_found', 'user_not_customer'),
        },
      },
    },
    async (request, reply) => {
      const body = request.body ?? {};
      const input = {
        userId: request.query.user_id,
        type: body.type ?? 'checking',
        currency: body.currency ?? config.currency,
        dailyLimit: body.daily_limit === undefined ? config.dailyTransferLimit : amountField('daily_limit', body.daily_limit),
        initialDeposit: body.initial_deposit === undefined ? undefined : amountField('initial_deposit', body.initial_deposit),
      };
      const account = await withTransaction(database, (tx) => openAccount(tx, actorOf(request), input, clock()));
      return reply.code(201).send(toAccountView(account));
    },
  );

  app.get(
    '/accounts/',
    {
      config: { access: ANY_ROLE },
      schema: {
        operationId: 'listAccounts',
        summary: 'List accounts: a customer its own, staff all (filter by user_id)',
        tags: ['accounts'],
        querystring: ListAccountsQuery,
        response: { 200: AccountPage, ...errorResponses('validation_error', 'unauthorized') },
      },
    },
    async (request) => {
      const { user_id, limit, cursor } = request.query;
      return listAccounts(database.db, callerOf(request), {
        limit: limit ?? 20,
        ...(user_id ? { userId: user_id } : {}),
        ...(cursor ? { cursor } : {}),
      });
    },
  );

  app.get(
    '/accounts/:id',
    {
      config: { access: ANY_ROLE },
      schema: {
        operationId: 'getAccount',
        summary: 'Read an account (its owner or staff)',
        tags: ['accounts'],
        params: IdParams,
        response: { 200: Type.Ref(Account), ...errorResponses('validation_error', 'unauthorized', 'not_found') },
      },
    },
    async (request) => toAccountView(await getVisibleAccount(database.db, callerOf(request), request.params.id)),
  );

  app.patch(
    '/accounts/:id',
    {
      config: { access: ['admin'] },
      schema: {
        operationId: 'updateAccount',
        summary: 'Freeze, unfreeze or close an account, or set its daily limit (admin)',
        description:
          'A frozen or closed account neither sends nor receives, tellers included. Closing needs a zero balance and no held transfer; a closed account stays closed.',
        tags: ['accounts'],
        params: IdParams,
        body: UpdateAccountBody,
        response: {
          200: Type.Ref(Account),
          ...errorResponses('validation_error', 'unauthorized', 'forbidden', 'not_found', 'balance_not_zero', 'account_closed'),
        },
      },
    },
    async (request) => {
      const { status, daily_limit } = request.body;
      const changes = {
        ...(status ? { status } : {}),
        ...(daily_limit !== undefined ? { dailyLimit: amountField('daily_limit', daily_limit) } : {}),
      };
      return toAccountView(await withTransaction(database, (tx) => updateAccount(tx, actorOf(request), request.params.id, changes)));
    },
  );

  for (const [operation, post] of [
    ['deposit', deposit],
    ['withdraw', withdraw],
  ] as const) {
    app.post(
      `/accounts/:id/${operation}`,
      {
        config: { access: ['admin'] },
        schema: {
          operationId: operation,
          summary:
            operation === 'deposit'
              ? 'Teller deposit (admin): cash into the account'
              : 'Teller withdrawal (admin): cash out of the account',
          tags: ['accounts'],
          params: IdParams,
          headers: IdempotencyHeaders,
          body: TellerBody,
          response: {
            201: Type.Ref(Transaction),
            ...errorResponses(
              'validation_error',
              'unauthorized',
              'forbidden',
              'not_found',
              'account_not_active',
              // Only a withdrawal can lack the money.
              ...(operation === 'withdraw' ? (['insufficient_funds'] as const) : []),
              'idempotency_key_reused',
              'idempotency_in_progress',
            ),
          },
        },
      },
      async (request, reply) => {
        const input = {
          accountId: request.params.id,
          amount: amountField('amount', request.body.amount),
          description: request.body.description ?? null,
        };
        return runIdempotent(database, request, reply, { status: 201, userId: callerOf(request).id, meaning: input }, (tx) =>
          post(tx, actorOf(request), input.accountId, input.amount, input.description, clock()),
        );
      },
    );
  }
};
