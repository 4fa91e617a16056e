import { Type } from '@sinclair/typebox';
import { PageQuery, pageOf } from '../http/pagination.js';
import { AccountNumber, AmountInput, CalendarDay, Description, Uuid } from '../http/schemas.js';
import { Transaction, TransactionStatus, TransactionType } from '../ledger/schemas.js';

export const TransferBody = Type.Object(
  {
    from_account: AccountNumber,
    to_account: AccountNumber,
    amount: AmountInput,
    description: Type.Optional(Description),
  },
  { additionalProperties: false },
);

/** A transfer's answer: the Transaction, plus `transaction_id` (equal to `id`) for the seed's clients. */
export const TransferResult = Type.Intersect([Type.Ref(Transaction), Type.Object({ transaction_id: Uuid })]);

const Day = { ...CalendarDay, description: 'YYYY-MM-DD, UTC, inclusive' };

export const ListTransactionsQuery = Type.Object(
  {
    account_id: Type.Optional(Uuid),
    status: Type.Optional(TransactionStatus),
    type: Type.Optional(TransactionType),
    from: Type.Optional(Day),
    to: Type.Optional(Day),
    ...PageQuery,
  },
  { additionalProperties: false },
);

export const TransactionPage = pageOf(Type.Ref(Transaction));

export const FlaggedQuery = Type.Object({ ...PageQuery }, { additionalProperties: false });
export const ApproveBody = Type.Object({ note: Type.Optional(Type.String({ maxLength: 500 })) }, { additionalProperties: false });
export const ReasonBody = Type.Object({ reason: Type.String({ minLength: 1, maxLength: 500 }) }, { additionalProperties: false });
