import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { DatabaseHandle } from '../db/connection.js';
import { withTransaction } from '../db/transaction.js';
import { STAFF } from '../auth/access.js';
import { errorResponses, Money, Timestamp, Uuid } from '../http/schemas.js';
import { reconcile } from './reconciliation.js';

const ReconciliationReport = Type.Object({
  ok: Type.Boolean({ description: 'true when every invariant holds' }),
  accounts_checked: Type.Integer(),
  entries_checked: Type.Integer(),
  ledger_sum: { ...Money, description: 'The sum of all balances, internal accounts included: "0.00" when money is conserved' },
  mismatches: Type.Array(Type.Object({ account_id: Uuid, balance: Money, ledger_balance: Money })),
  unbalanced_transactions: Type.Array(Type.Object({ transaction_id: Uuid, net: Money })),
  hold_mismatches: Type.Array(Type.Object({ account_id: Uuid, held: Money, pending_total: Money })),
  checked_at: { ...Timestamp, description: 'The instant of the snapshot the report describes' },
});

export const ledgerRoutes: FastifyPluginAsyncTypebox<{ database: DatabaseHandle }> = async (app, { database }) => {
  app.get(
    '/reports/reconciliation',
    {
      config: { access: STAFF },
      schema: {
        operationId: 'reconcile',
        summary: 'Reconcile the ledger on one consistent snapshot (auditor, admin)',
        tags: ['reports'],
        response: { 200: ReconciliationReport, ...errorResponses('unauthorized', 'forbidden') },
      },
    },
    async () => withTransaction(database, reconcile, { snapshot: true }),
  );
};
