import { Type } from '@sinclair/typebox';
import { Currency, Money, Timestamp, Uuid } from '../http/schemas.js';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()]);

export const Transaction = Type.Object(
  {
    id: Uuid,
    type: Type.Union(['transfer', 'deposit', 'withdrawal', 'loan_disbursement', 'loan_repayment', 'reversal'].map((t) => Type.Literal(t))),
    status: Type.Union(['completed', 'pending_review', 'rejected'].map((s) => Type.Literal(s))),
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
  },
  { $id: 'Transaction' },
);
