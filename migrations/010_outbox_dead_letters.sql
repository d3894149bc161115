-- A row the relay cannot publish (too big for NATS, an invalid subject, a publish the server keeps refusing) is set
-- aside with its reason instead of blocking the rows behind it (invariant 14).

ALTER TABLE outbox
  ADD COLUMN attempts           integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  ADD COLUMN last_error         text,
  ADD COLUMN dead_lettered_at   timestamptz,
  ADD COLUMN dead_letter_reason text,
  ADD CONSTRAINT outbox_dead_letter_has_reason CHECK ((dead_lettered_at IS NULL) = (dead_letter_reason IS NULL)),
  ADD CONSTRAINT outbox_sent_or_dead_lettered CHECK (sent_at IS NULL OR dead_lettered_at IS NULL);

DROP INDEX outbox_unsent;
CREATE INDEX outbox_pending ON outbox (id) WHERE sent_at IS NULL AND dead_lettered_at IS NULL;
CREATE INDEX outbox_dead_lettered ON outbox (id) WHERE dead_lettered_at IS NOT NULL;
