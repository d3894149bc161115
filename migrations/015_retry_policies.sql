-- Retry policies operators set live (services/RetryPolicyStore.ts). A name without a row runs the environment's
-- defaults. The bounds repeat the API's (src/domain/RetryPolicy.ts) so no write can store what no instance may run.
CREATE TABLE retry_policies (
  name              text PRIMARY KEY CHECK (name IN ('webhooks', 'chain-events', 'outbox', 'rpc')),
  initial_delay_ms  integer NOT NULL CHECK (initial_delay_ms BETWEEN 1 AND 3600000),
  factor            double precision NOT NULL CHECK (factor BETWEEN 1 AND 10),
  max_delay_ms      integer NOT NULL CHECK (max_delay_ms BETWEEN 1 AND 86400000),
  max_attempts      integer NOT NULL CHECK (max_attempts BETWEEN 1 AND 1000),
  jitter            double precision NOT NULL CHECK (jitter BETWEEN 0 AND 1),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  updated_by        text NOT NULL,
  CHECK (max_delay_ms >= initial_delay_ms)
);
