-- What a checkout buys is fixed at checkout; status moves are checked here as in code; each payment's grant is kept.

-- The plan's interval when the checkout was issued: an admin edit afterwards does not change what was bought.
ALTER TABLE payment_transactions ADD COLUMN interval text CHECK (interval IN ('month', 'year'));
UPDATE payment_transactions t SET interval = p.interval FROM plans p WHERE p.id = t.plan_id;
ALTER TABLE payment_transactions ALTER COLUMN interval SET NOT NULL;
-- A row inserted without it takes the plan's interval at that moment, which is the snapshot too.
CREATE FUNCTION payment_interval_snapshot() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.interval IS NULL THEN
    SELECT p.interval INTO NEW.interval FROM plans p WHERE p.id = NEW.plan_id;
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER payment_interval_snapshot BEFORE INSERT ON payment_transactions
  FOR EACH ROW EXECUTE FUNCTION payment_interval_snapshot();

-- The transition tables of src/domain/Payment.ts and src/domain/Subscription.ts (a test keeps them equal).
CREATE FUNCTION payment_transition_allowed(from_status text, to_status text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
  SELECT (from_status, to_status) IN (
    ('pending', 'seen'), ('pending', 'confirmed'), ('pending', 'failed'), ('pending', 'expired'),
    ('seen', 'pending'), ('seen', 'confirmed'), ('seen', 'failed'), ('seen', 'expired'),
    ('confirmed', 'reversed'), ('confirmed', 'refunded'),
    ('expired', 'confirmed'),
    ('reversed', 'confirmed')
  )
$$;

CREATE FUNCTION subscription_transition_allowed(from_status text, to_status text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
  SELECT (from_status, to_status) IN (
    ('active', 'past_due'), ('active', 'canceled'), ('active', 'expired'),
    ('past_due', 'active'), ('past_due', 'canceled'), ('past_due', 'expired'),
    ('canceled', 'expired')
  )
$$;

CREATE FUNCTION status_transition_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  allowed boolean;
BEGIN
  IF NEW.status IS NOT DISTINCT FROM OLD.status THEN
    RETURN NEW;
  END IF;
  IF TG_TABLE_NAME = 'payment_transactions' THEN
    allowed := payment_transition_allowed(OLD.status, NEW.status);
  ELSE
    allowed := subscription_transition_allowed(OLD.status, NEW.status);
  END IF;
  IF NOT allowed THEN
    RAISE EXCEPTION 'illegal % status change % -> % for %', TG_TABLE_NAME, OLD.status, NEW.status, OLD.id
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER payment_status_transition BEFORE UPDATE OF status ON payment_transactions
  FOR EACH ROW EXECUTE FUNCTION status_transition_guard();
CREATE TRIGGER subscription_status_transition BEFORE UPDATE OF status ON subscriptions
  FOR EACH ROW EXECUTE FUNCTION status_transition_guard();

-- The interval each confirmed payment added to a subscription: a reversal or refund takes back exactly that,
-- whatever renewals followed. A payment confirmed again after a reversal grants again (the row is reused).
CREATE TABLE subscription_grants (
  payment_id      uuid PRIMARY KEY REFERENCES payment_transactions (id),
  subscription_id uuid NOT NULL REFERENCES subscriptions (id),
  interval        text NOT NULL CHECK (interval IN ('month', 'year')),
  granted_at      timestamptz NOT NULL DEFAULT now(),
  revoked_at      timestamptz
);
CREATE INDEX subscription_grants_subscription ON subscription_grants (subscription_id) WHERE revoked_at IS NULL;

INSERT INTO subscription_grants (payment_id, subscription_id, interval)
SELECT s.last_payment_id, s.id, t.interval
FROM subscriptions s JOIN payment_transactions t ON t.id = s.last_payment_id
WHERE t.status = 'confirmed'
ON CONFLICT (payment_id) DO NOTHING;
