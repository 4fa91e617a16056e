import { Type } from '@sinclair/typebox';
import { PageQuery, pageOf } from '../http/pagination.js';
import { AmountInput, Currency, Description, Money, Timestamp, Uuid } from '../http/schemas.js';

export const Account = Type.Object(
  {
    id: Uuid,
    account_number: Type.String({ pattern: '^[0-9]{10}$' }),
    user_id: Uuid,
    type: Type.Union([Type.Literal('checking'), Type.Literal('savings')]),
    currency: Currency,
    balance: Money,
    available_balance: { ...Money, description: 'balance less funds held by transfers pending review' },
    daily_limit: Money,
    status: Type.Union([Type.Literal('active'), Type.Literal('frozen'), Type.Literal('closed')]),
    created_at: Timestamp,
  },
  { $id: 'Account' },
);

export const AccountPage = pageOf(Type.Ref(Account));

export const CreateAccountQuery = Type.Object({ user_id: Uuid }, { additionalProperties: false });

export const CreateAccountBody = Type.Object(
  {
    type: Type.Optional(Type.Union([Type.Literal('checking'), Type.Literal('savings')], { default: 'checking' })),
    currency: Type.Optional(Currency),
    initial_deposit: Type.Optional(AmountInput),
    daily_limit: Type.Optional(AmountInput),
  },
  { additionalProperties: false },
);

export const ListAccountsQuery = Type.Object({ user_id: Type.Optional(Uuid), ...PageQuery }, { additionalProperties: false });

export const UpdateAccountBody = Type.Object(
  {
    status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('frozen'), Type.Literal('closed')])),
    daily_limit: Type.Optional(AmountInput),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const TellerBody = Type.Object({ amount: AmountInput, description: Type.Optional(Description) }, { additionalProperties: false });
