-- Subscription lifecycle: scheduled plan changes, the renewal grid, renewal notices; indexes for the scheduler.
-- All columns are nullable so rows written before (or seeded without them) stay valid.

-- The plan the subscription moves to at its period end (an upgrade or downgrade scheduled by the user).
ALTER TABLE subscriptions ADD COLUMN next_plan_id bigint REFERENCES plans (id);
-- Periods are counted from this instant (Jan 31 + 1, 2, 3 months = Feb 28, Mar 31, Apr 30); NULL = current_period_start.
ALTER TABLE subscriptions ADD COLUMN period_anchor timestamptz;
-- The period end a renewal notice was sent for: one notice per period.
ALTER TABLE subscriptions ADD COLUMN renewal_notified_for timestamptz;

UPDATE subscriptions SET period_anchor = current_period_start WHERE period_anchor IS NULL;

-- The scheduler reads current subscriptions by their end, and pending checkouts by their deadline.
CREATE INDEX subscriptions_current_end ON subscriptions (current_period_end) WHERE status IN ('active', 'past_due');
CREATE INDEX payment_pending_expiry ON payment_transactions (expires_at) WHERE status = 'pending';
