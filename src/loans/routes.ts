import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import type { DatabaseHandle } from '../db/connection.js';
import { withTransaction } from '../db/transaction.js';
import { actorOf, ANY_ROLE, callerOf } from '../auth/access.js';
import { IdempotencyHeaders, runIdempotent } from '../http/idempotency.js';
import { amountField, errorResponses, IdParams } from '../http/schemas.js';
import { ApplyBody, ApproveBody, ListLoansQuery, Loan, LoanPage, RejectBody, RepayBody, RepayResult } from './schemas.js';
import { applyForLoan, approveLoan, getVisibleLoan, listLoans, rejectLoan, repayLoan, utcDateOf } from './service.js';

export interface LoanRouteOptions {
  config: Config;
  database: DatabaseHandle;
  /** What "now" is for overdue installments, and the instant of disbursements, repayments and decisions; tests move it. */
  clock: () => Date;
}

export const loanRoutes: FastifyPluginAsyncTypebox<LoanRouteOptions> = async (app, { config, database, clock }) => {
  const today = () => utcDateOf(clock());
  const actor = (request: FastifyRequest) => ({ ...actorOf(request), id: callerOf(request).id });

  app.post(
    '/loans',
    {
      config: { access: ['customer'] },
      schema: {
        operationId: 'applyForLoan',
        summary: 'Apply for a loan into one of your active accounts; the answer quotes the monthly installment',
        tags: ['loans'],
        body: ApplyBody,
        response: {
          201: Loan,
          ...errorResponses('validation_error', 'unauthorized', 'forbidden', 'account_not_found', 'account_not_active'),
        },
      },
    },
    async (request, reply) => {
      const input = {
        accountId: request.body.account_id,
        principal: amountField('principal', request.body.principal),
        termMonths: request.body.term_months,
        purpose: request.body.purpose ?? null,
      };
      const loan = await withTransaction(database, (tx) => applyForLoan(tx, actor(request), input, config.loanAnnualRate, today()));
      return reply.code(201).send(loan);
    },
  );

  app.get(
    '/loans',
    {
      config: { access: ANY_ROLE },
      schema: {
        operationId: 'listLoans',
        summary: 'List loans, newest first: a customer its own, staff all',
        tags: ['loans'],
        querystring: ListLoansQuery,
        response: { 200: LoanPage, ...errorResponses('validation_error', 'unauthorized') },
      },
    },
    async (request) => {
      const { status, limit, cursor } = request.query;
      return listLoans(
        database.db,
        callerOf(request),
        { limit: limit ?? 20, ...(status ? { status } : {}), ...(cursor ? { cursor } : {}) },
        today(),
      );
    },
  );

  app.get(
    '/loans/:id',
    {
      config: { access: ANY_ROLE },
      schema: {
        operationId: 'getLoan',
        summary: 'Read a loan with its schedule (the borrower or staff)',
        tags: ['loans'],
        params: IdParams,
        response: { 200: Loan, ...errorResponses('validation_error', 'unauthorized', 'not_found') },
      },
    },
    async (request) => getVisibleLoan(database.db, callerOf(request), request.params.id, today()),
  );

  app.post(
    '/loans/:id/approve',
    {
      config: { access: ['admin'] },
      schema: {
        operationId: 'approveLoan',
        summary: 'Approve a pending loan (admin): the principal is disbursed once and the schedule fixed',
        tags: ['loans'],
        params: IdParams,
        body: ApproveBody,
        response: {
          200: Loan,
          ...errorResponses('validation_error', 'unauthorized', 'forbidden', 'not_found', 'not_pending', 'account_not_active'),
        },
      },
    },
    async (request) =>
      withTransaction(database, (tx) => approveLoan(tx, actor(request), request.params.id, request.body.note ?? null, clock())),
  );

  app.post(
    '/loans/:id/reject',
    {
      config: { access: ['admin'] },
      schema: {
        operationId: 'rejectLoan',
        summary: 'Reject a pending loan (admin)',
        tags: ['loans'],
        params: IdParams,
        body: RejectBody,
        response: { 200: Loan, ...errorResponses('validation_error', 'unauthorized', 'forbidden', 'not_found', 'not_pending') },
      },
    },
    async (request) => withTransaction(database, (tx) => rejectLoan(tx, actor(request), request.params.id, request.body.reason, clock())),
  );

  app.post(
    '/loans/:id/repay',
    {
      config: { access: ['customer'] },
      schema: {
        operationId: 'repayLoan',
        summary: 'Repay your loan: the oldest unpaid installments first, interest before principal',
        description:
          'At most the unpaid parts of the schedule: interest is charged as scheduled, and paying early does not reduce it. ' +
          'The payment that clears the schedule pays the loan off.',
        tags: ['loans'],
        params: IdParams,
        headers: IdempotencyHeaders,
        body: RepayBody,
        response: {
          201: RepayResult,
          ...errorResponses(
            'validation_error',
            'unauthorized',
            'forbidden',
            'not_found',
            'account_not_found',
            'account_not_active',
            'insufficient_funds',
            'overpayment',
            'currency_mismatch',
            'idempotency_key_reused',
            'idempotency_in_progress',
          ),
        },
      },
    },
    async (request, reply) => {
      const input = { amount: amountField('amount', request.body.amount), fromAccountId: request.body.from_account_id ?? null };
      return runIdempotent(
        database,
        request,
        reply,
        { status: 201, userId: callerOf(request).id, meaning: { loanId: request.params.id, ...input } },
        (tx) => repayLoan(tx, actor(request), request.params.id, input, clock()),
      );
    },
  );
};
