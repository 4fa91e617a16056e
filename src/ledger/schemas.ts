import { Type } from '@sinclair/typebox';
import { Currency, Money, Timestamp, Uuid } from '../http/schemas.js';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()]);

export const TransactionType = Type.Union([
  Type.Literal('transfer'),
  Type.Literal('deposit'),
  Type.Literal('withdrawal'),
  Type.Literal('loan_disbursement'),
  Type.Literal('loan_repayment'),
  Type.Literal('reversal'),
]);
export const TransactionStatus = Type.Union([Type.Literal('completed'), Type.Literal('pending_review'), Type.Literal('rejected')]);

export const Transaction = Type.Object(
  {
    id: Uuid,
    type: TransactionType,
    status: TransactionStatus,
    amount: Money,
    currency: Currency,
    from_account: Nullable(Type.String({ description: 'Account number; null for the bank’s own side' })),
    to_account: Nullable(Type.String({ description: 'Account number; null for the bank’s own side' })),
    description: Nullable(Type.String()),
    created_by: Nullable(Uuid),
    created_at: Timestamp,
    review_reasons: Type.Array(Type.String()),
    reviewed_by: Nullable(Uuid),
    reviewed_at: Nullable(Timestamp),
    review_note: Nullable(Type.String()),
    reverses: Nullable({ ...Uuid, description: 'For a reversal: the id of the transaction it reverses' }),
    reversed_by: Nullable({ ...Uuid, description: 'The id of the reversal of this transaction, once reversed' }),
  },
  { $id: 'Transaction' },
);
