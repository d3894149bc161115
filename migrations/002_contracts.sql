-- Registered contracts and payment gateways.

CREATE TABLE contracts (
  slug           text PRIMARY KEY CHECK (slug ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
  network        text NOT NULL,
  address        text NOT NULL CHECK (address ~ '^0x[0-9a-f]{40}$'),
  abi            jsonb NOT NULL,
  mint_method    text NOT NULL,
  burn_method    text NOT NULL,
  events         jsonb NOT NULL DEFAULT '["Minted", "Burned"]'::jsonb,
  webhook_secret text,
  enabled        boolean NOT NULL DEFAULT true,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  UNIQUE (network, address)
);

CREATE TABLE gateways (
  slug       text PRIMARY KEY CHECK (slug ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
  title      text NOT NULL DEFAULT '',
  networks   jsonb NOT NULL DEFAULT '[]'::jsonb,
  enabled    boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
