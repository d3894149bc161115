-- Per-network chain settings; seeded from BILLING_RPC_CONFIG, changed live through the API.

CREATE TABLE crypto_config (
  network        text PRIMARY KEY CHECK (network ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
  chain_id       bigint NOT NULL CHECK (chain_id > 0),
  rpc_endpoints  jsonb NOT NULL,
  confirmations  integer NOT NULL DEFAULT 2 CHECK (confirmations >= 0),
  gas_cap        numeric(78, 0) NOT NULL DEFAULT 1000000 CHECK (gas_cap > 0),
  updated_at     timestamptz NOT NULL DEFAULT now()
);
