-- Where settled payments sit on chain: the listener asks for those above a height on every tick (its reorg checks),
-- which without this index read every seen or confirmed payment of the network.
CREATE INDEX payment_chain_position ON payment_transactions (network, block_number)
  WHERE status IN ('seen', 'confirmed');
