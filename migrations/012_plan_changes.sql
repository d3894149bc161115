-- Plan changes (docs/billing-rules.md): a downgrade paid now starts at the period end, an upgrade credits the unused
-- part of the period, a stale checkout is credited. What each grant holds, and when a subscription last changed.

-- A grant bought a period of the subscription's next plan that has not started yet (a downgrade paid in advance).
ALTER TABLE subscription_grants ADD COLUMN deferred boolean NOT NULL DEFAULT false;
-- The upgrade payment that turned this grant's unused time into customer credit (ledger kind 'proration'):
-- from then on the grant holds no time; a reversal of its payment reverses that credit instead.
ALTER TABLE subscription_grants ADD COLUMN prorated_by uuid REFERENCES payment_transactions (id);
CREATE INDEX subscription_grants_deferred ON subscription_grants (subscription_id)
  WHERE deferred AND revoked_at IS NULL AND prorated_by IS NULL;

-- When a payment, a rollover or a revocation last set the subscription's plan or period: a checkout issued before
-- it is stale.
ALTER TABLE subscriptions ADD COLUMN changed_at timestamptz;
UPDATE subscriptions s SET changed_at = coalesce(
  (SELECT max(g.granted_at) FROM subscription_grants g WHERE g.subscription_id = s.id), s.created_at);
ALTER TABLE subscriptions ALTER COLUMN changed_at SET DEFAULT now();
ALTER TABLE subscriptions ALTER COLUMN changed_at SET NOT NULL;

ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_kind_check;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_kind_check
  CHECK (kind IN ('payment', 'reversal', 'refund', 'proration'));
