-- 010: the rail's facts of a payout in `settlements` (issue 13, ADR 0084), read by the streamer
-- from the control plane (written there before the ledger post): the block (or slot) including
-- the transaction, the confirmations at which it was judged final, and the network fee in the
-- rail's native unit (Base: wei; Solana: lamports; Lightning: msat). 0 when unknown.
ALTER TABLE {{db}}.settlements ADD COLUMN IF NOT EXISTS rail_block UInt64 DEFAULT 0 COMMENT 'block or slot of rail_tx';
ALTER TABLE {{db}}.settlements ADD COLUMN IF NOT EXISTS rail_confirmations UInt32 DEFAULT 0;
ALTER TABLE {{db}}.settlements ADD COLUMN IF NOT EXISTS network_fee_native UInt128 DEFAULT 0 COMMENT 'rail native unit';
