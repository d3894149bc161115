-- A contract holds several webhook secrets (rotation overlaps), each encrypted at rest with AES-256-GCM.
-- Secrets stored in contracts.webhook_secret move here as rows awaiting encryption: `migrate` seals them in the
-- same run (the key lives in the environment, not in SQL), and no start proceeds while one remains.

CREATE TABLE contract_webhook_secrets (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  contract_slug    text NOT NULL REFERENCES contracts (slug) ON DELETE CASCADE,
  key_id           text,
  ciphertext       bytea,
  legacy_plaintext text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  expires_at       timestamptz,
  retired_at       timestamptz,
  CHECK (
    (legacy_plaintext IS NULL AND key_id IS NOT NULL AND ciphertext IS NOT NULL)
    OR (legacy_plaintext IS NOT NULL AND key_id IS NULL AND ciphertext IS NULL)
  )
);

CREATE INDEX contract_webhook_secrets_live ON contract_webhook_secrets (contract_slug) WHERE retired_at IS NULL;

INSERT INTO contract_webhook_secrets (contract_slug, legacy_plaintext, created_at)
SELECT slug, webhook_secret, updated_at FROM contracts WHERE webhook_secret IS NOT NULL;

ALTER TABLE contracts DROP COLUMN webhook_secret;
