-- Who changed what, written in the same SQL transaction as the change; secrets are removed before.

CREATE TABLE audit_log (
  id          bigserial PRIMARY KEY,
  actor       text NOT NULL,
  action      text NOT NULL,
  resource    text NOT NULL,
  before      jsonb,
  after       jsonb,
  request_id  text,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_resource ON audit_log (resource, id DESC);
CREATE INDEX audit_log_actor ON audit_log (actor, id DESC);
