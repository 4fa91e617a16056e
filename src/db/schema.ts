import type { ColumnType, Generated, Insertable, Kysely, Selectable, Transaction } from 'kysely';

/** The database as Kysely sees it. BIGINT columns arrive as `bigint` on both engines (see connection.ts). */
export interface Database {
  users: UsersTable;
  accounts: AccountsTable;
  transactions: TransactionsTable;
  journal_entries: JournalEntriesTable;
  audit_log: AuditLogTable;
  idempotency_keys: IdempotencyKeysTable;
  sessions: SessionsTable;
  access_tokens: AccessTokensTable;
  refresh_tokens: RefreshTokensTable;
  login_failures: LoginFailuresTable;
  audit_chain: AuditChainTable;
  audit_chain_head: AuditChainHeadTable;
  loans: LoansTable;
  loan_installments: LoanInstallmentsTable;
  loan_payments: LoanPaymentsTable;
  daily_outflows: DailyOutflowsTable;
}

export type Role = 'customer' | 'admin' | 'auditor';

/** A jsonb value as the drivers hand it over. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
export type AccountType = 'checking' | 'savings' | 'internal';
export type AccountStatus = 'active' | 'frozen' | 'closed';
export type SystemAccount = 'cash' | 'loan_fund' | 'interest_income';
export type TransactionType = 'transfer' | 'deposit' | 'withdrawal' | 'loan_disbursement' | 'loan_repayment' | 'reversal';
export type TransactionStatus = 'completed' | 'pending_review' | 'rejected';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;

export interface UsersTable {
  id: Generated<string>;
  name: string;
  email: string;
  password_hash: string;
  role: Role;
  is_active: Generated<boolean>;
  /** Bumped by a new password and by a disable (src/auth/sql/triggers.sql); a session lives only while it matches. */
  credential_version: Generated<number>;
  created_at: Generated<Date>;
  updated_at: Timestamp;
}

export interface AccountsTable {
  id: Generated<string>;
  account_number: string | null;
  user_id: string | null;
  system_code: SystemAccount | null;
  type: AccountType;
  currency: string;
  balance: Generated<bigint>;
  held: Generated<bigint>;
  daily_limit: bigint | null;
  status: Generated<AccountStatus>;
  created_at: Generated<Date>;
  updated_at: Timestamp;
  /** The instant of the account's latest posting (null: none yet); ledger_post moves it forward (ledger/post.ts, postingInstant). */
  last_posted_at: Generated<Date | null>;
}

export interface TransactionsTable {
  id: Generated<string>;
  type: TransactionType;
  status: TransactionStatus;
  amount: bigint;
  currency: string;
  from_account_id: string;
  to_account_id: string;
  description: string | null;
  created_by: string | null;
  created_at: Generated<Date>;
  review_reasons: Generated<string[]>;
  reviewed_by: string | null;
  reviewed_at: Date | null;
  review_note: string | null;
  reverses_id: string | null;
}

export interface JournalEntriesTable {
  id: Generated<bigint>;
  transaction_id: string;
  account_id: string;
  amount: bigint;
  balance_after: bigint;
  posted_at: Generated<Date>;
}

export interface AuditLogTable {
  entry_no: Generated<bigint>;
  id: Generated<string>;
  at: Generated<Date>;
  actor_id: string | null;
  actor_role: Role | 'system' | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  ip: string | null;
  request_id: string | null;
  details: ColumnType<{ [key: string]: Json }, string, never>;
  xact_id: Generated<bigint>;
}

export interface AuditChainTable {
  sequence: bigint;
  entry_id: string;
  prev_hash: string;
  hash: string;
  sealed_at: Generated<Date>;
}

export interface AuditChainHeadTable {
  singleton: Generated<boolean>;
  sequence: bigint;
  hash: string;
  sealed_below: bigint;
}

export interface IdempotencyKeysTable {
  user_id: string;
  endpoint: string;
  key: string;
  fingerprint: string;
  /** One answer of three (migration 0020): the body answered, the transfer created, or a refusal. */
  response: ColumnType<Json, string | null, string>;
  transaction_id: string | null;
  /** A kept refusal, as the service's error code and detail; null on a success. */
  problem_code: string | null;
  problem_detail: string | null;
  created_at: Generated<Date>;
}

export interface SessionsTable {
  id: Generated<string>;
  user_id: string;
  /** The user's credential_version that the login read with the password hash it verified. */
  credential_version: number;
  created_at: Generated<Date>;
  revoked_at: Date | null;
  revoked_reason: string | null;
}

export interface AccessTokensTable {
  jti: string;
  session_id: string;
  user_id: string;
  expires_at: Date;
  revoked_at: Date | null;
}

export interface RefreshTokensTable {
  token_hash: string;
  session_id: string;
  created_at: Generated<Date>;
  expires_at: Date;
  used_at: Date | null;
}

export interface LoginFailuresTable {
  email: string;
  failures: number;
  locked_until: Date | null;
  updated_at: Generated<Date>;
}

export type UserRow = Selectable<UsersTable>;
export type AccountRow = Selectable<AccountsTable>;
export type TransactionRow = Selectable<TransactionsTable>;
export type NewTransaction = Insertable<TransactionsTable>;

export type Db = Kysely<Database>;
/** A handle inside a database transaction: what every service function takes first. */
export type Tx = Transaction<Database>;

export type LoanStatus = 'pending' | 'active' | 'rejected' | 'paid_off';

export interface LoansTable {
  id: Generated<string>;
  user_id: string;
  account_id: string;
  principal: bigint;
  /** Hundredths of a percent a year: 12.00 % is 1200. */
  annual_rate_bp: number;
  term_months: number;
  monthly_installment: bigint;
  total_payable: bigint;
  status: Generated<LoanStatus>;
  purpose: string | null;
  created_at: Generated<Date>;
  decided_by: string | null;
  decided_at: Date | null;
  decision_note: string | null;
  disbursement_transaction_id: string | null;
}

export interface LoanInstallmentsTable {
  loan_id: string;
  number: number;
  /** A calendar date, written as YYYY-MM-DD; read it as text (loans/repository.ts), never as a Date in local time. */
  due_date: ColumnType<Date, string, never>;
  installment: bigint;
  principal: bigint;
  interest: bigint;
  balance_after: bigint;
  paid_principal: Generated<bigint>;
  paid_interest: Generated<bigint>;
}

export interface LoanPaymentsTable {
  id: Generated<string>;
  loan_id: string;
  transaction_id: string;
  amount: bigint;
  principal: bigint;
  interest: bigint;
  created_at: Generated<Date>;
}

export type LoanRow = Selectable<LoansTable>;

/** What each account has sent per UTC day (transfers completed or pending review), kept by a trigger on transactions. */
export interface DailyOutflowsTable {
  account_id: string;
  day: ColumnType<string, string, string>;
  amount: bigint;
}
