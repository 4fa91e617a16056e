--
-- PostgreSQL database dump
--

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: idempotency_answer; Type: TYPE; Schema: public; Owner: -
--

CREATE TYPE public.idempotency_answer AS (
	user_id uuid,
	endpoint text,
	key text,
	fingerprint text,
	response jsonb,
	transaction_id uuid,
	problem_code text,
	problem_detail text
);

--
-- Name: active_access_tokens(uuid[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.active_access_tokens(p_jtis uuid[]) RETURNS TABLE(jti uuid, user_id uuid, session_id uuid, role text, is_active boolean)
    LANGUAGE plpgsql STABLE
    SET plan_cache_mode TO 'force_generic_plan'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$ -- body: src/auth/sql/active_access_tokens.sql $$;

--
-- Name: assert_transaction_balanced(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.assert_transaction_balanced() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ -- body: src/ledger/sql/assert_transaction_balanced.sql $$;

--
-- Name: bump_credential_version(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.bump_credential_version() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ -- body: src/auth/sql/bump_credential_version.sql $$;

--
-- Name: daily_outflows_track(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.daily_outflows_track() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ -- body: src/transfers/sql/daily_outflows_track.sql $$;

--
-- Name: format_amount(bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.format_amount(p_units bigint) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ -- body: src/ledger/sql/format_amount.sql $$;

--
-- Name: idempotency_record(public.idempotency_answer[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.idempotency_record(p_answers public.idempotency_answer[]) RETURNS void
    LANGUAGE plpgsql
    AS $$ -- body: src/db/sql/idempotency_record.sql $$;

--
-- Name: idempotency_stored(uuid[], text[], text[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.idempotency_stored(p_users uuid[], p_endpoints text[], p_keys text[]) RETURNS TABLE(ord integer, fingerprint text, response jsonb, transaction_id uuid, problem_code text, problem_detail text)
    LANGUAGE plpgsql STABLE
    SET plan_cache_mode TO 'force_generic_plan'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$ -- body: src/db/sql/idempotency_stored.sql $$;

--
-- Name: ledger_post(uuid[], uuid[], bigint[], integer[], uuid[], bigint[], timestamp with time zone); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_post(p_transactions uuid[], p_held_accounts uuid[], p_held_deltas bigint[], p_entry_postings integer[], p_entry_accounts uuid[], p_entry_amounts bigint[], p_posted_at timestamp with time zone) RETURNS void
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$ -- body: src/ledger/sql/ledger_post.sql $$;

--
-- Name: new_transfer_status(text[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.new_transfer_status(p_review_reasons text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ -- body: src/transfers/sql/new_transfer_status.sql $$;

--
-- Name: refuse_change(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.refuse_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ -- body: src/db/sql/refuse_change.sql $$;

--
-- Name: refuse_schedule_rewrite(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.refuse_schedule_rewrite() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ -- body: src/loans/sql/refuse_schedule_rewrite.sql $$;

--
-- Name: refuse_transaction_rewrite(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.refuse_transaction_rewrite() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ -- body: src/ledger/sql/refuse_transaction_rewrite.sql $$;

--
-- Name: revoke_sessions_of_disabled_user(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.revoke_sessions_of_disabled_user() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ -- body: src/auth/sql/revoke_sessions_of_disabled_user.sql $$;

--
-- Name: transfer_batch(jsonb, jsonb, timestamp with time zone); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.transfer_batch(p_requests jsonb, p_risk jsonb, p_now timestamp with time zone) RETURNS TABLE(ord integer, replayed boolean, problem text, detail text, id uuid, status text, amount bigint, currency text, from_account text, to_account text, description text, created_by uuid, created_at timestamp with time zone, review_reasons text[])
    LANGUAGE plpgsql
    SET jit TO 'off'
    AS $$ -- body: src/transfers/sql/transfer_batch.sql $$;

--
-- Name: transfer_lock_accounts(text[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.transfer_lock_accounts(p_account_numbers text[]) RETURNS TABLE(ids uuid[], numbers text[], users uuid[], currencies text[], statuses text[], opened timestamp with time zone[], balances bigint[], helds bigint[], limits bigint[], last_posted timestamp with time zone)
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$ -- body: src/transfers/sql/transfer_lock_accounts.sql $$;

--
-- Name: transfer_review_reasons(bigint, timestamp with time zone, timestamp with time zone, boolean, bigint, bigint, bigint, bigint, integer, integer, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.transfer_review_reasons(p_amount bigint, p_sender_opened_at timestamp with time zone, p_now timestamp with time zone, p_paid_receiver_before boolean, p_recent_transfers bigint, p_review_threshold bigint, p_new_payee_amount bigint, p_new_account_amount bigint, p_new_account_hours integer, p_velocity_count integer, p_velocity_minutes integer) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ -- body: src/risk/sql/transfer_review_reasons.sql $$;

--
-- Name: transfer_sender_history(uuid[], integer[], integer[], date, timestamp with time zone, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.transfer_sender_history(p_accounts uuid[], p_sender_slots integer[], p_receiver_slots integer[], p_day date, p_since timestamp with time zone, p_velocity_count integer) RETURNS TABLE(sent_today bigint[], recent bigint[], paid_pairs text[])
    LANGUAGE plpgsql STABLE
    SET plan_cache_mode TO 'force_generic_plan'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$ -- body: src/transfers/sql/transfer_sender_history.sql $$;

--
-- Name: transfers_as_created(uuid[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.transfers_as_created(p_ids uuid[]) RETURNS TABLE(id uuid, status text, amount bigint, currency text, from_account text, to_account text, description text, created_by uuid, created_at timestamp with time zone, review_reasons text[])
    LANGUAGE plpgsql STABLE
    SET plan_cache_mode TO 'force_generic_plan'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$ -- body: src/transfers/sql/transfers_as_created.sql $$;

--
-- Name: uuid_v7(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.uuid_v7() RETURNS uuid
    LANGUAGE plpgsql PARALLEL SAFE
    AS $$ -- body: src/ledger/sql/uuid_v7.sql $$;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: access_tokens; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.access_tokens (
    jti uuid NOT NULL,
    session_id uuid NOT NULL,
    user_id uuid NOT NULL,
    expires_at timestamp(3) with time zone NOT NULL,
    revoked_at timestamp(3) with time zone
);

--
-- Name: accounts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.accounts (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    account_number text,
    user_id uuid,
    system_code text,
    type text NOT NULL,
    currency text NOT NULL,
    balance bigint DEFAULT 0 NOT NULL,
    held bigint DEFAULT 0 NOT NULL,
    daily_limit bigint,
    status text DEFAULT 'active'::text NOT NULL,
    created_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    updated_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    last_posted_at timestamp(3) with time zone,
    CONSTRAINT accounts_account_number_check CHECK ((account_number ~ '^[0-9]{10}$'::text)),
    CONSTRAINT accounts_currency_check CHECK ((currency ~ '^[A-Z]{3}$'::text)),
    CONSTRAINT accounts_customer_not_overdrawn CHECK (((type = 'internal'::text) OR ((balance >= 0) AND ((balance - held) >= 0)))),
    CONSTRAINT accounts_daily_limit_check CHECK ((daily_limit >= 0)),
    CONSTRAINT accounts_held_check CHECK ((held >= 0)),
    CONSTRAINT accounts_kind CHECK ((((type = 'internal'::text) AND (system_code IS NOT NULL) AND (user_id IS NULL) AND (account_number IS NULL) AND (daily_limit IS NULL)) OR ((type <> 'internal'::text) AND (system_code IS NULL) AND (user_id IS NOT NULL) AND (account_number IS NOT NULL) AND (daily_limit IS NOT NULL)))),
    CONSTRAINT accounts_status_check CHECK ((status = ANY (ARRAY['active'::text, 'frozen'::text, 'closed'::text]))),
    CONSTRAINT accounts_system_code_check CHECK ((system_code = ANY (ARRAY['cash'::text, 'loan_fund'::text, 'interest_income'::text]))),
    CONSTRAINT accounts_type_check CHECK ((type = ANY (ARRAY['checking'::text, 'savings'::text, 'internal'::text])))
);

--
-- Name: audit_chain; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.audit_chain (
    sequence bigint NOT NULL,
    entry_id uuid NOT NULL,
    prev_hash text NOT NULL,
    hash text NOT NULL,
    sealed_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    CONSTRAINT audit_chain_hash_check CHECK ((hash ~ '^[0-9a-f]{64}$'::text)),
    CONSTRAINT audit_chain_prev_hash_check CHECK ((prev_hash ~ '^[0-9a-f]{64}$'::text)),
    CONSTRAINT audit_chain_sequence_check CHECK ((sequence > 0))
);

--
-- Name: audit_chain_head; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.audit_chain_head (
    singleton boolean DEFAULT true NOT NULL,
    sequence bigint NOT NULL,
    hash text NOT NULL,
    sealed_below bigint NOT NULL,
    CONSTRAINT audit_chain_head_singleton_check CHECK (singleton)
);

--
-- Name: audit_log; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.audit_log (
    entry_no bigint NOT NULL,
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    at timestamp(3) with time zone DEFAULT clock_timestamp() NOT NULL,
    actor_id uuid,
    actor_role text,
    action text NOT NULL,
    target_type text,
    target_id text,
    ip text,
    request_id text,
    details jsonb DEFAULT '{}'::jsonb NOT NULL,
    xact_id bigint DEFAULT ((pg_current_xact_id())::text)::bigint NOT NULL,
    CONSTRAINT audit_log_action_check CHECK ((action ~ '^[a-z_]+\.[a-z_]+$'::text)),
    CONSTRAINT audit_log_actor_role_check CHECK ((actor_role = ANY (ARRAY['customer'::text, 'admin'::text, 'auditor'::text, 'system'::text])))
);

--
-- Name: audit_log_entry_no_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.audit_log ALTER COLUMN entry_no ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.audit_log_entry_no_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: daily_outflows; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.daily_outflows (
    account_id uuid NOT NULL,
    day date NOT NULL,
    amount bigint NOT NULL,
    CONSTRAINT daily_outflows_amount_check CHECK ((amount >= 0))
);

--
-- Name: idempotency_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.idempotency_keys (
    user_id uuid NOT NULL,
    endpoint text NOT NULL,
    key text NOT NULL,
    fingerprint text NOT NULL,
    response jsonb,
    created_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    problem_code text,
    problem_detail text,
    transaction_id uuid,
    CONSTRAINT idempotency_keys_key_check CHECK (((length(key) >= 1) AND (length(key) <= 255))),
    CONSTRAINT idempotency_keys_one_answer CHECK (((num_nonnulls(response, transaction_id, problem_code) = 1) AND ((problem_detail IS NULL) OR (problem_code IS NOT NULL))))
);

--
-- Name: journal_entries; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.journal_entries (
    id bigint NOT NULL,
    transaction_id uuid NOT NULL,
    account_id uuid NOT NULL,
    amount bigint NOT NULL,
    balance_after bigint NOT NULL,
    posted_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    CONSTRAINT journal_entries_amount_check CHECK ((amount <> 0))
);

--
-- Name: journal_entries_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.journal_entries ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.journal_entries_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: loan_installments; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.loan_installments (
    loan_id uuid NOT NULL,
    number integer NOT NULL,
    due_date date NOT NULL,
    installment bigint NOT NULL,
    principal bigint NOT NULL,
    interest bigint NOT NULL,
    balance_after bigint NOT NULL,
    paid_principal bigint DEFAULT 0 NOT NULL,
    paid_interest bigint DEFAULT 0 NOT NULL,
    CONSTRAINT loan_installments_balance_after_check CHECK ((balance_after >= 0)),
    CONSTRAINT loan_installments_check CHECK (((paid_principal >= 0) AND (paid_principal <= principal))),
    CONSTRAINT loan_installments_check1 CHECK (((paid_interest >= 0) AND (paid_interest <= interest))),
    CONSTRAINT loan_installments_check2 CHECK ((installment = (principal + interest))),
    CONSTRAINT loan_installments_installment_check CHECK ((installment > 0)),
    CONSTRAINT loan_installments_interest_check CHECK ((interest >= 0)),
    CONSTRAINT loan_installments_number_check CHECK (((number >= 1) AND (number <= 360))),
    CONSTRAINT loan_installments_principal_check CHECK ((principal >= 0))
);

--
-- Name: loan_payments; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.loan_payments (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    loan_id uuid NOT NULL,
    transaction_id uuid NOT NULL,
    amount bigint NOT NULL,
    principal bigint NOT NULL,
    interest bigint NOT NULL,
    created_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    CONSTRAINT loan_payments_amount_check CHECK ((amount > 0)),
    CONSTRAINT loan_payments_check CHECK ((amount = (principal + interest))),
    CONSTRAINT loan_payments_interest_check CHECK ((interest >= 0)),
    CONSTRAINT loan_payments_principal_check CHECK ((principal >= 0))
);

--
-- Name: loans; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.loans (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    user_id uuid NOT NULL,
    account_id uuid NOT NULL,
    principal bigint NOT NULL,
    annual_rate_bp integer NOT NULL,
    term_months integer NOT NULL,
    monthly_installment bigint NOT NULL,
    total_payable bigint NOT NULL,
    status text DEFAULT 'pending'::text NOT NULL,
    purpose text,
    created_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    decided_by uuid,
    decided_at timestamp(3) with time zone,
    decision_note text,
    disbursement_transaction_id uuid,
    CONSTRAINT loans_annual_rate_bp_check CHECK (((annual_rate_bp >= 0) AND (annual_rate_bp <= 10000))),
    CONSTRAINT loans_check CHECK ((total_payable >= principal)),
    CONSTRAINT loans_decided CHECK (((status = 'pending'::text) = ((decided_by IS NULL) AND (decided_at IS NULL)))),
    CONSTRAINT loans_decision_note_check CHECK ((length(decision_note) <= 500)),
    CONSTRAINT loans_disbursed CHECK (((status = ANY (ARRAY['active'::text, 'paid_off'::text])) = (disbursement_transaction_id IS NOT NULL))),
    CONSTRAINT loans_monthly_installment_check CHECK ((monthly_installment > 0)),
    CONSTRAINT loans_principal_check CHECK ((principal > 0)),
    CONSTRAINT loans_purpose_check CHECK ((length(purpose) <= 500)),
    CONSTRAINT loans_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'active'::text, 'rejected'::text, 'paid_off'::text]))),
    CONSTRAINT loans_term_months_check CHECK (((term_months >= 1) AND (term_months <= 360)))
);

--
-- Name: login_failures; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.login_failures (
    email text NOT NULL,
    failures integer NOT NULL,
    locked_until timestamp(3) with time zone,
    updated_at timestamp(3) with time zone DEFAULT now() NOT NULL
);

--
-- Name: refresh_tokens; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.refresh_tokens (
    token_hash text NOT NULL,
    session_id uuid NOT NULL,
    created_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    expires_at timestamp(3) with time zone NOT NULL,
    used_at timestamp(3) with time zone
);

--
-- Name: schema_migrations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.schema_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: schema_repeatables; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.schema_repeatables (
    path text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: sessions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sessions (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    user_id uuid NOT NULL,
    created_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    revoked_at timestamp(3) with time zone,
    revoked_reason text,
    credential_version integer DEFAULT 0 NOT NULL
);

--
-- Name: transactions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.transactions (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    type text NOT NULL,
    status text NOT NULL,
    amount bigint NOT NULL,
    currency text NOT NULL,
    from_account_id uuid NOT NULL,
    to_account_id uuid NOT NULL,
    description text,
    created_by uuid,
    created_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    review_reasons text[] DEFAULT '{}'::text[] NOT NULL,
    reviewed_by uuid,
    reviewed_at timestamp(3) with time zone,
    review_note text,
    reverses_id uuid,
    CONSTRAINT transactions_amount_check CHECK ((amount > 0)),
    CONSTRAINT transactions_check CHECK ((from_account_id <> to_account_id)),
    CONSTRAINT transactions_currency_check CHECK ((currency ~ '^[A-Z]{3}$'::text)),
    CONSTRAINT transactions_description_check CHECK ((length(description) <= 500)),
    CONSTRAINT transactions_status_check CHECK ((status = ANY (ARRAY['completed'::text, 'pending_review'::text, 'rejected'::text]))),
    CONSTRAINT transactions_type_check CHECK ((type = ANY (ARRAY['transfer'::text, 'deposit'::text, 'withdrawal'::text, 'loan_disbursement'::text, 'loan_repayment'::text, 'reversal'::text])))
);

--
-- Name: users; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.users (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name text NOT NULL,
    email text NOT NULL,
    password_hash text NOT NULL,
    role text NOT NULL,
    is_active boolean DEFAULT true NOT NULL,
    created_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    updated_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    credential_version integer DEFAULT 0 NOT NULL,
    CONSTRAINT users_email_check CHECK (((email = lower(email)) AND (length(email) <= 254))),
    CONSTRAINT users_name_check CHECK (((length(name) >= 1) AND (length(name) <= 200))),
    CONSTRAINT users_role_check CHECK ((role = ANY (ARRAY['customer'::text, 'admin'::text, 'auditor'::text])))
);

--
-- Name: access_tokens access_tokens_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.access_tokens
    ADD CONSTRAINT access_tokens_pkey PRIMARY KEY (jti);

--
-- Name: accounts accounts_account_number_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.accounts
    ADD CONSTRAINT accounts_account_number_key UNIQUE (account_number);

--
-- Name: accounts accounts_one_internal_per_currency; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.accounts
    ADD CONSTRAINT accounts_one_internal_per_currency UNIQUE (system_code, currency);

--
-- Name: accounts accounts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.accounts
    ADD CONSTRAINT accounts_pkey PRIMARY KEY (id);

--
-- Name: audit_chain audit_chain_entry_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit_chain
    ADD CONSTRAINT audit_chain_entry_id_key UNIQUE (entry_id);

--
-- Name: audit_chain audit_chain_hash_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit_chain
    ADD CONSTRAINT audit_chain_hash_key UNIQUE (hash);

--
-- Name: audit_chain_head audit_chain_head_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit_chain_head
    ADD CONSTRAINT audit_chain_head_pkey PRIMARY KEY (singleton);

--
-- Name: audit_chain audit_chain_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit_chain
    ADD CONSTRAINT audit_chain_pkey PRIMARY KEY (sequence);

--
-- Name: audit_log audit_log_entry_no_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit_log
    ADD CONSTRAINT audit_log_entry_no_key UNIQUE (entry_no);

--
-- Name: audit_log audit_log_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit_log
    ADD CONSTRAINT audit_log_pkey PRIMARY KEY (id);

--
-- Name: daily_outflows daily_outflows_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.daily_outflows
    ADD CONSTRAINT daily_outflows_pkey PRIMARY KEY (account_id, day);

--
-- Name: idempotency_keys idempotency_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.idempotency_keys
    ADD CONSTRAINT idempotency_keys_pkey PRIMARY KEY (user_id, endpoint, key);

--
-- Name: journal_entries journal_entries_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.journal_entries
    ADD CONSTRAINT journal_entries_pkey PRIMARY KEY (id);

--
-- Name: loan_installments loan_installments_number; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.loan_installments
    ADD CONSTRAINT loan_installments_number UNIQUE (loan_id, number);

--
-- Name: loan_payments loan_payments_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.loan_payments
    ADD CONSTRAINT loan_payments_pkey PRIMARY KEY (id);

--
-- Name: loan_payments loan_payments_transaction_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.loan_payments
    ADD CONSTRAINT loan_payments_transaction_id_key UNIQUE (transaction_id);

--
-- Name: loans loans_disbursement_transaction_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.loans
    ADD CONSTRAINT loans_disbursement_transaction_id_key UNIQUE (disbursement_transaction_id);

--
-- Name: loans loans_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.loans
    ADD CONSTRAINT loans_pkey PRIMARY KEY (id);

--
-- Name: login_failures login_failures_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.login_failures
    ADD CONSTRAINT login_failures_pkey PRIMARY KEY (email);

--
-- Name: refresh_tokens refresh_tokens_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.refresh_tokens
    ADD CONSTRAINT refresh_tokens_pkey PRIMARY KEY (token_hash);

--
-- Name: schema_migrations schema_migrations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);

--
-- Name: schema_repeatables schema_repeatables_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.schema_repeatables
    ADD CONSTRAINT schema_repeatables_pkey PRIMARY KEY (path);

--
-- Name: sessions sessions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sessions
    ADD CONSTRAINT sessions_pkey PRIMARY KEY (id);

--
-- Name: transactions transactions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.transactions
    ADD CONSTRAINT transactions_pkey PRIMARY KEY (id);

--
-- Name: users users_email_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_email_key UNIQUE (email);

--
-- Name: users users_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);

--
-- Name: access_tokens_expires_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX access_tokens_expires_idx ON public.access_tokens USING btree (expires_at);

--
-- Name: access_tokens_session_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX access_tokens_session_idx ON public.access_tokens USING btree (session_id);

--
-- Name: accounts_created_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX accounts_created_idx ON public.accounts USING btree (created_at, id);

--
-- Name: accounts_user_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX accounts_user_idx ON public.accounts USING btree (user_id, created_at, id);

--
-- Name: audit_log_action_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX audit_log_action_idx ON public.audit_log USING btree (action, at);

--
-- Name: audit_log_actor_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX audit_log_actor_idx ON public.audit_log USING btree (actor_id, at);

--
-- Name: audit_log_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX audit_log_at_idx ON public.audit_log USING btree (at, entry_no);

--
-- Name: audit_log_target_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX audit_log_target_idx ON public.audit_log USING btree (target_type, target_id, at);

--
-- Name: audit_log_xact_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX audit_log_xact_idx ON public.audit_log USING btree (xact_id, entry_no);

--
-- Name: idempotency_keys_created_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idempotency_keys_created_idx ON public.idempotency_keys USING btree (created_at);

--
-- Name: journal_entries_account_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX journal_entries_account_idx ON public.journal_entries USING btree (account_id, posted_at, id);

--
-- Name: journal_entries_transaction_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX journal_entries_transaction_idx ON public.journal_entries USING btree (transaction_id);

--
-- Name: loan_payments_loan_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX loan_payments_loan_idx ON public.loan_payments USING btree (loan_id, created_at);

--
-- Name: loans_created_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX loans_created_idx ON public.loans USING btree (created_at DESC, id DESC);

--
-- Name: loans_user_created_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX loans_user_created_idx ON public.loans USING btree (user_id, created_at DESC, id DESC);

--
-- Name: refresh_tokens_session_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX refresh_tokens_session_idx ON public.refresh_tokens USING btree (session_id);

--
-- Name: sessions_user_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX sessions_user_idx ON public.sessions USING btree (user_id) WHERE (revoked_at IS NULL);

--
-- Name: transactions_completed_payee_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX transactions_completed_payee_idx ON public.transactions USING btree (from_account_id, to_account_id) WHERE ((type = 'transfer'::text) AND (status = 'completed'::text));

--
-- Name: transactions_created_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX transactions_created_idx ON public.transactions USING btree (created_at DESC, id DESC);

--
-- Name: transactions_from_created_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX transactions_from_created_idx ON public.transactions USING btree (from_account_id, created_at DESC, id DESC);

--
-- Name: transactions_pending_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX transactions_pending_idx ON public.transactions USING btree (created_at, id) WHERE (status = 'pending_review'::text);

--
-- Name: transactions_reverses_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX transactions_reverses_idx ON public.transactions USING btree (reverses_id) WHERE (reverses_id IS NOT NULL);

--
-- Name: transactions_to_created_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX transactions_to_created_idx ON public.transactions USING btree (to_account_id, created_at DESC, id DESC);

--
-- Name: users_created_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX users_created_idx ON public.users USING btree (created_at, id);

--
-- Name: users_role_created_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX users_role_created_idx ON public.users USING btree (role, created_at, id);

--
-- Name: audit_chain audit_chain_append_only; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_chain_append_only BEFORE DELETE OR UPDATE ON public.audit_chain FOR EACH ROW EXECUTE FUNCTION public.refuse_change();

--
-- Name: audit_chain audit_chain_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON public.audit_chain FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_change();

--
-- Name: audit_log audit_log_append_only; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_log_append_only BEFORE DELETE OR UPDATE ON public.audit_log FOR EACH ROW EXECUTE FUNCTION public.refuse_change();

--
-- Name: audit_log audit_log_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON public.audit_log FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_change();

--
-- Name: journal_entries journal_entries_append_only; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER journal_entries_append_only BEFORE DELETE OR UPDATE ON public.journal_entries FOR EACH ROW EXECUTE FUNCTION public.refuse_change();

--
-- Name: journal_entries journal_entries_balanced; Type: TRIGGER; Schema: public; Owner: -
--

CREATE CONSTRAINT TRIGGER journal_entries_balanced AFTER INSERT ON public.journal_entries DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.assert_transaction_balanced();

--
-- Name: journal_entries journal_entries_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER journal_entries_no_truncate BEFORE TRUNCATE ON public.journal_entries FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_change();

--
-- Name: loan_installments loan_installments_fixed; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER loan_installments_fixed BEFORE DELETE OR UPDATE ON public.loan_installments FOR EACH ROW EXECUTE FUNCTION public.refuse_schedule_rewrite();

--
-- Name: loan_installments loan_installments_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER loan_installments_no_truncate BEFORE TRUNCATE ON public.loan_installments FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_change();

--
-- Name: loan_payments loan_payments_append_only; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER loan_payments_append_only BEFORE DELETE OR UPDATE ON public.loan_payments FOR EACH ROW EXECUTE FUNCTION public.refuse_change();

--
-- Name: loan_payments loan_payments_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER loan_payments_no_truncate BEFORE TRUNCATE ON public.loan_payments FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_change();

--
-- Name: transactions transactions_daily_outflows; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER transactions_daily_outflows AFTER INSERT OR UPDATE OF type, status, amount, from_account_id, created_at ON public.transactions FOR EACH ROW EXECUTE FUNCTION public.daily_outflows_track();

--
-- Name: transactions transactions_immutable; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER transactions_immutable BEFORE DELETE OR UPDATE ON public.transactions FOR EACH ROW EXECUTE FUNCTION public.refuse_transaction_rewrite();

--
-- Name: transactions transactions_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER transactions_no_truncate BEFORE TRUNCATE ON public.transactions FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_change();

--
-- Name: users users_credential_change_bumps_version; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER users_credential_change_bumps_version BEFORE UPDATE OF password_hash, is_active ON public.users FOR EACH ROW WHEN (((new.password_hash IS DISTINCT FROM old.password_hash) OR (old.is_active AND (NOT new.is_active)))) EXECUTE FUNCTION public.bump_credential_version();

--
-- Name: users users_disable_ends_sessions; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER users_disable_ends_sessions AFTER UPDATE OF is_active ON public.users FOR EACH ROW WHEN ((old.is_active AND (NOT new.is_active))) EXECUTE FUNCTION public.revoke_sessions_of_disabled_user();

--
-- Name: access_tokens access_tokens_session_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.access_tokens
    ADD CONSTRAINT access_tokens_session_id_fkey FOREIGN KEY (session_id) REFERENCES public.sessions(id);

--
-- Name: access_tokens access_tokens_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.access_tokens
    ADD CONSTRAINT access_tokens_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id);

--
-- Name: accounts accounts_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.accounts
    ADD CONSTRAINT accounts_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id);

--
-- Name: audit_chain audit_chain_entry_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit_chain
    ADD CONSTRAINT audit_chain_entry_id_fkey FOREIGN KEY (entry_id) REFERENCES public.audit_log(id);

--
-- Name: audit_log audit_log_actor_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit_log
    ADD CONSTRAINT audit_log_actor_id_fkey FOREIGN KEY (actor_id) REFERENCES public.users(id);

--
-- Name: daily_outflows daily_outflows_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.daily_outflows
    ADD CONSTRAINT daily_outflows_account_id_fkey FOREIGN KEY (account_id) REFERENCES public.accounts(id);

--
-- Name: idempotency_keys idempotency_keys_transaction_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.idempotency_keys
    ADD CONSTRAINT idempotency_keys_transaction_id_fkey FOREIGN KEY (transaction_id) REFERENCES public.transactions(id);

--
-- Name: idempotency_keys idempotency_keys_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.idempotency_keys
    ADD CONSTRAINT idempotency_keys_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id);

--
-- Name: journal_entries journal_entries_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.journal_entries
    ADD CONSTRAINT journal_entries_account_id_fkey FOREIGN KEY (account_id) REFERENCES public.accounts(id);

--
-- Name: journal_entries journal_entries_transaction_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.journal_entries
    ADD CONSTRAINT journal_entries_transaction_id_fkey FOREIGN KEY (transaction_id) REFERENCES public.transactions(id);

--
-- Name: loan_installments loan_installments_loan_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.loan_installments
    ADD CONSTRAINT loan_installments_loan_id_fkey FOREIGN KEY (loan_id) REFERENCES public.loans(id);

--
-- Name: loan_payments loan_payments_loan_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.loan_payments
    ADD CONSTRAINT loan_payments_loan_id_fkey FOREIGN KEY (loan_id) REFERENCES public.loans(id);

--
-- Name: loan_payments loan_payments_transaction_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.loan_payments
    ADD CONSTRAINT loan_payments_transaction_id_fkey FOREIGN KEY (transaction_id) REFERENCES public.transactions(id);

--
-- Name: loans loans_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.loans
    ADD CONSTRAINT loans_account_id_fkey FOREIGN KEY (account_id) REFERENCES public.accounts(id);

--
-- Name: loans loans_decided_by_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.loans
    ADD CONSTRAINT loans_decided_by_fkey FOREIGN KEY (decided_by) REFERENCES public.users(id);

--
-- Name: loans loans_disbursement_transaction_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.loans
    ADD CONSTRAINT loans_disbursement_transaction_id_fkey FOREIGN KEY (disbursement_transaction_id) REFERENCES public.transactions(id);

--
-- Name: loans loans_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.loans
    ADD CONSTRAINT loans_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id);

--
-- Name: refresh_tokens refresh_tokens_session_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.refresh_tokens
    ADD CONSTRAINT refresh_tokens_session_id_fkey FOREIGN KEY (session_id) REFERENCES public.sessions(id);

--
-- Name: sessions sessions_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sessions
    ADD CONSTRAINT sessions_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id);

--
-- Name: transactions transactions_created_by_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.transactions
    ADD CONSTRAINT transactions_created_by_fkey FOREIGN KEY (created_by) REFERENCES public.users(id);

--
-- Name: transactions transactions_from_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.transactions
    ADD CONSTRAINT transactions_from_account_id_fkey FOREIGN KEY (from_account_id) REFERENCES public.accounts(id);

--
-- Name: transactions transactions_reverses_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.transactions
    ADD CONSTRAINT transactions_reverses_id_fkey FOREIGN KEY (reverses_id) REFERENCES public.transactions(id);

--
-- Name: transactions transactions_reviewed_by_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.transactions
    ADD CONSTRAINT transactions_reviewed_by_fkey FOREIGN KEY (reviewed_by) REFERENCES public.users(id);

--
-- Name: transactions transactions_to_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.transactions
    ADD CONSTRAINT transactions_to_account_id_fkey FOREIGN KEY (to_account_id) REFERENCES public.accounts(id);

--
-- PostgreSQL database dump complete
--

