-- A network's chain id is frozen once it has payments: dedupe keys and ledger ids carry the chain id, so changing
-- it under existing payments would let reconcile post them a second time. The service checks first (409); this
-- trigger holds for every other writer.

CREATE FUNCTION crypto_config_chain_id_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.chain_id IS DISTINCT FROM OLD.chain_id
    AND EXISTS (SELECT 1 FROM payment_transactions WHERE network = OLD.network) THEN
    RAISE EXCEPTION 'chain_id of network % is frozen: payments exist for it', OLD.network
      USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER crypto_config_chain_id_frozen BEFORE UPDATE OF chain_id ON crypto_config
  FOR EACH ROW EXECUTE FUNCTION crypto_config_chain_id_frozen();
