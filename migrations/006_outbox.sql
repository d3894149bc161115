-- Transactional outbox: events written in the transaction of the change they describe, published after commit.

CREATE TABLE outbox (
  id          bigserial PRIMARY KEY,
  -- Relative to the NATS prefix: "plan.changed.v1", "notifications.<user_id>", "audit.<kind>".
  subject     text NOT NULL CHECK (subject ~ '^[A-Za-z0-9_.-]+$'),
  payload     jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  sent_at     timestamptz
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
