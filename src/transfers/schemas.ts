import { Type } from '@sinclair/typebox';
import { AccountNumber, AmountInput, Description, Uuid } from '../http/schemas.js';
import { Transaction } from '../ledger/schemas.js';

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
