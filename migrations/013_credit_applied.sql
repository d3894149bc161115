-- Customer credit a checkout uses: its quote asks the chain for the price minus this, and the confirmation consumes
-- it (in the payment's own ledger transaction). While the checkout is pending or seen the credit is reserved.
ALTER TABLE payment_transactions ADD COLUMN credit_applied numeric(78, 0) NOT NULL DEFAULT 0 CHECK (credit_applied >= 0);
