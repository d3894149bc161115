-- The chain listener's position per network and what it has seen, for reorg detection and removal events.

CREATE TABLE chain_cursors (
  network      text PRIMARY KEY,
  block_number bigint NOT NULL CHECK (block_number >= 0),
  block_hash   text NOT NULL,
  updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Blocks the listener advanced through (cursor positions and blocks holding published logs), trimmed to a window.
CREATE TABLE chain_blocks (
  network      text NOT NULL,
  block_number bigint NOT NULL,
  block_hash   text NOT NULL,
  PRIMARY KEY (network, block_number)
);

-- Logs the listener published; a reorg that drops one publishes its removal.
CREATE TABLE chain_logs (
  network      text NOT NULL,
  block_number bigint NOT NULL,
  block_hash   text NOT NULL,
  tx_hash      text NOT NULL,
  log_index    integer NOT NULL,
  contract     text NOT NULL,
  event        text NOT NULL,
  PRIMARY KEY (network, block_hash, log_index)
);
CREATE INDEX chain_logs_height ON chain_logs (network, block_number);

-- Notifications to users and finance_ops, written in the transaction of the change they describe.
CREATE TABLE notifications (
  id          bigserial PRIMARY KEY,
  user_id     text NOT NULL,
  kind        text NOT NULL,
  payload     jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_user ON notifications (user_id, id DESC);
