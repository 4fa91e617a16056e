import { Type } from '@sinclair/typebox';
import { PageQuery, pageOf } from '../http/pagination.js';
import { AmountInput, Money, Timestamp, Uuid } from '../http/schemas.js';
import { Transaction } from '../ledger/schemas.js';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()]);

export const LoanStatus = Type.Union([Type.Literal('pending'), Type.Literal('active'), Type.Literal('rejected'), Type.Literal('paid_off')]);

export const Installment = Type.Object({
  number: Type.Integer({ minimum: 1 }),
  due_date: Type.String({ format: 'date', description: 'YYYY-MM-DD; the first one month after disbursement' }),
  installment: Money,
  principal: Money,
  interest: Money,
  balance_after: { ...Money, description: 'Principal still owed once this installment is paid' },
  paid: { ...Money, description: 'What has been paid of this installment' },
  status: Type.Union([Type.Literal('due'), Type.Literal('paid'), Type.Literal('overdue')], {
    description: 'overdue: not wholly paid and past its due date (UTC)',
  }),
});

export const Loan = Type.Object({
  id: Uuid,
  user_id: Uuid,
  account_id: Uuid,
  principal: Money,
  annual_rate: Type.String({
    pattern: '^[0-9]+\\.[0-9]{2}$',
    description: 'Percent a year, fixed when the loan is applied for',
    examples: ['12.00'],
  }),
  term_months: Type.Integer({ minimum: 1, maximum: 360 }),
  monthly_installment: Money,
  total_payable: { ...Money, description: 'The sum of all installments' },
  outstanding_principal: { ...Money, description: 'The principal less the principal repaid' },
  status: LoanStatus,
  purpose: Nullable(Type.String()),
  created_at: Timestamp,
  decided_by: Nullable(Uuid),
  decided_at: Nullable(Timestamp),
  decision_note: Nullable(Type.String()),
  schedule: Type.Array(Installment, { description: 'Fixed when the loan is approved; empty before' }),
});

export const LoanPage = pageOf(Loan);

export const ApplyBody = Type.Object(
  {
    account_id: { ...Uuid, description: 'One of your active accounts: the principal is paid into it' },
    principal: AmountInput,
    term_months: Type.Integer({ minimum: 1, maximum: 360 }),
    purpose: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);

export const ListLoansQuery = Type.Object({ status: Type.Optional(LoanStatus), ...PageQuery }, { additionalProperties: false });

export const ApproveBody = Type.Object({ note: Type.Optional(Type.String({ maxLength: 500 })) }, { additionalProperties: false });
export const RejectBody = Type.Object({ reason: Type.String({ minLength: 1, maxLength: 500 }) }, { additionalProperties: false });

export const RepayBody = Type.Object(
  {
    amount: AmountInput,
    from_account_id: Type.Optional({ ...Uuid, description: 'One of your active accounts; default: the loan’s account' }),
  },
  { additionalProperties: false },
);

export const RepayResult = Type.Object({ loan: Loan, transaction: Type.Ref(Transaction) });
