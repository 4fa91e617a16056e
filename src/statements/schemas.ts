import { Type } from '@sinclair/typebox';
import { Account } from '../accounts/schemas.js';
import { AccountNumber, CalendarDay, Money, Timestamp, Uuid } from '../http/schemas.js';
import { TransactionType } from '../ledger/schemas.js';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()]);

const Counterparty = Nullable({
  ...AccountNumber,
  description: 'The other side’s account number; null for the bank’s own side (cash, loan fund)',
});

const STATEMENT_FORMATS = ['json', 'csv', 'pdf'] as const;
export type StatementFormat = (typeof STATEMENT_FORMATS)[number];

export const StatementQuery = Type.Object(
  {
    from: Type.Optional({
      ...CalendarDay,
      description: 'First day of the period (inclusive); default: the first day of the month of `to`',
    }),
    to: Type.Optional({ ...CalendarDay, description: 'Last day of the period (inclusive); default: today (UTC)' }),
    format: Type.Optional(
      Type.Union(
        STATEMENT_FORMATS.map((format) => Type.Literal(format)),
        { default: 'json' },
      ),
    ),
  },
  { additionalProperties: false },
);

const StatementEntry = Type.Object({
  transaction_id: Uuid,
  posted_at: Timestamp,
  type: TransactionType,
  description: Nullable(Type.String()),
  amount: { ...Money, description: 'Signed: negative leaves the account' },
  balance_after: Money,
  counterparty: Counterparty,
});

const HeldTransfer = Type.Object({
  transaction_id: Uuid,
  created_at: Timestamp,
  amount: { ...Money, description: 'Signed like the entries: negative, since it would leave the account once approved' },
  counterparty: Counterparty,
  review_reasons: Type.Array(Type.String()),
});

const Statement = Type.Object({
  account: Type.Ref(Account),
  from: CalendarDay,
  to: CalendarDay,
  opening_balance: { ...Money, description: 'The balance after the last journal entry before `from` (0.00 when there is none)' },
  closing_balance: { ...Money, description: 'opening_balance + total_credits − total_debits' },
  total_credits: { ...Money, description: 'Sum of the entries entering the account' },
  total_debits: { ...Money, description: 'Sum of the entries leaving the account, as a positive amount' },
  entries: Type.Array(StatementEntry, { description: 'The journal entries of the period, oldest first (posted_at, then posting order)' }),
  held: Type.Array(HeldTransfer, {
    description:
      'Outgoing transfers created by the end of the period and still pending review: their amount is held, but no money has moved',
  }),
});

/**
 * @fastify/swagger turns JSON Schema's `examples` into OpenAPI 3.0's `example` for a `200: schema`
 * response, but not inside a `content` map (one schema per media type), where OpenAPI 3.0 refuses them:
 * the conversion is done here instead.
 */
function withOpenApi30Examples(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(withOpenApi30Examples);
  if (schema === null || typeof schema !== 'object') return schema;
  return Object.fromEntries(
    Object.entries(schema).map(([key, value]) =>
      key === 'examples' && Array.isArray(value) ? ['example', value[0]] : [key, withOpenApi30Examples(value)],
    ),
  );
}

/** The 200 answer in each format: JSON is serialised by its schema; CSV and PDF are streamed as they are read. */
export const StatementResponse = {
  description: 'The statement: JSON (default), CSV or PDF, by `format`',
  content: {
    'application/json': { schema: withOpenApi30Examples(Statement) },
    'text/csv': { schema: { type: 'string', description: 'A header row, then one row per entry (RFC 4180)' } },
    'application/pdf': { schema: { type: 'string', format: 'binary' } },
  },
};

export const BalanceQuery = Type.Object(
  { at: Type.Optional({ ...Timestamp, description: 'The instant (ISO 8601 with a time zone); default now; not in the future' }) },
  { additionalProperties: false },
);

export const BalanceAt = Type.Object({
  account_id: Uuid,
  at: Timestamp,
  balance: { ...Money, description: 'The balance after the last journal entry posted at or before `at`' },
});
