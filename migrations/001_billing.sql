-- Plans, checkouts (payment transactions), the double-entry ledger and subscriptions.

CREATE TABLE plans (
  id             bigserial PRIMARY KEY,
  slug           text NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
  title          text NOT NULL,
  interval       text NOT NULL CHECK (interval IN ('month', 'year')),
  contract_slug  text NOT NULL,
  monthly_limits jsonb NOT NULL DEFAULT '{}'::jsonb,
  features       jsonb NOT NULL DEFAULT '[]'::jsonb,
  is_active      boolean NOT NULL DEFAULT true,
  deleted_at     timestamptz,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);
-- A soft-deleted plan frees its slug.
CREATE UNIQUE INDEX plans_slug_live ON plans (slug) WHERE deleted_at IS NULL;

CREATE TABLE plan_prices (
  plan_id bigint NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
  network text NOT NULL,
  token   text NOT NULL CHECK (token = 'native' OR token ~ '^0x[0-9a-f]{40}$'),
  amount  numeric(78, 0) NOT NULL CHECK (amount > 0),
  PRIMARY KEY (plan_id, network, token)
);

CREATE TABLE payment_transactions (
  id               uuid PRIMARY KEY,
  order_id         text NOT NULL UNIQUE CHECK (order_id ~ '^0x[0-9a-f]{64}$'),
  user_id          text NOT NULL,
  plan_id          bigint NOT NULL REFERENCES plans (id),
  contract_slug    text NOT NULL,
  network          text NOT NULL,
  chain_id         bigint NOT NULL,
  contract_address text NOT NULL,
  token            text NOT NULL,
  amount           numeric(78, 0) NOT NULL CHECK (amount > 0),
  paid_amount      numeric(78, 0),
  wallet_address   text NOT NULL,
  status           text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'seen', 'confirmed', 'failed', 'expired', 'reversed', 'refunded')),
  failure_reason   text CHECK (failure_reason IN ('underpaid', 'wrong_token', 'wrong_network', 'expired', 'reverted', 'wrong_payer', 'wrong_contract')),
  idempotency_key  text,
  tx_hash          text,
  log_index        integer,
  block_number     bigint,
  block_hash       text,
  quote_signature  text NOT NULL,
  payload          jsonb NOT NULL,
  expires_at       timestamptz NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  seen_at          timestamptz,
  confirmed_at     timestamptz,
  CHECK ((status = 'failed') = (failure_reason IS NOT NULL))
);
CREATE UNIQUE INDEX payment_idempotency ON payment_transactions (user_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
-- One open checkout per user and plan: the same user and plan while pending get the same transaction.
CREATE UNIQUE INDEX payment_one_pending ON payment_transactions (user_id, plan_id) WHERE status = 'pending';
CREATE INDEX payment_user_created ON payment_transactions (user_id, created_at DESC, id DESC);
CREATE INDEX payment_status ON payment_transactions (status, created_at);
CREATE INDEX payment_tx_hash ON payment_transactions (tx_hash) WHERE tx_hash IS NOT NULL;

-- Ledger transaction ids are deterministic (chain id, tx hash, log index), so a retry cannot post twice.
CREATE TABLE ledger_transactions (
  id          text PRIMARY KEY,
  payment_id  uuid NOT NULL REFERENCES payment_transactions (id),
  kind        text NOT NULL CHECK (kind IN ('payment', 'reversal', 'refund')),
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ledger_postings (
  id                    bigserial PRIMARY KEY,
  ledger_transaction_id text NOT NULL REFERENCES ledger_transactions (id),
  account               text NOT NULL,
  asset                 text NOT NULL,
  amount                numeric(78, 0) NOT NULL CHECK (amount <> 0),
  created_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_postings_tx ON ledger_postings (ledger_transaction_id);

-- Append-only: corrections are reversing entries, never UPDATE or DELETE.
CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ledger is append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME;
END
$$;
CREATE TRIGGER ledger_postings_append_only BEFORE UPDATE OR DELETE ON ledger_postings
  FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_transactions_append_only BEFORE UPDATE OR DELETE ON ledger_transactions
  FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

-- Postings of one ledger transaction must sum to zero per asset when the SQL transaction commits.
CREATE FUNCTION ledger_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (
    SELECT 1 FROM ledger_postings WHERE ledger_transaction_id = NEW.ledger_transaction_id
    GROUP BY asset HAVING sum(amount) <> 0
  ) THEN
    RAISE EXCEPTION 'ledger transaction % is not balanced', NEW.ledger_transaction_id;
  END IF;
  RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER ledger_postings_balanced AFTER INSERT ON ledger_postings
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_balanced();

CREATE TABLE subscriptions (
  id                   uuid PRIMARY KEY,
  user_id              text NOT NULL,
  plan_id              bigint NOT NULL REFERENCES plans (id),
  status               text NOT NULL CHECK (status IN ('active', 'past_due', 'canceled', 'expired')),
  current_period_start timestamptz NOT NULL,
  current_period_end   timestamptz NOT NULL CHECK (current_period_end > current_period_start),
  cancel_at_period_end boolean NOT NULL DEFAULT false,
  last_payment_id      uuid REFERENCES payment_transactions (id),
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now()
);
-- At most one current subscription per user.
CREATE UNIQUE INDEX subscriptions_one_current ON subscriptions (user_id) WHERE status IN ('active', 'past_due');

-- Effects of webhooks and chain events are keyed here in the same SQL transaction as the effects.
CREATE TABLE processed_events (
  dedupe_key   text PRIMARY KEY,
  source       text NOT NULL,
  payment_id   uuid REFERENCES payment_transactions (id),
  outcome      text NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now()
);
