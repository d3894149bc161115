// (g) Payment pipeline floor: what confirming N payments costs with nothing else. Per batch: one JSON-RPC batch
// of the receipts + eth_blockNumber, one of the distinct blocks (their timestamps), a check of each log, then one
// SQL transaction writing the rows a confirmation writes (multi-row unnest inserts, one UPDATE of the payments).
// usage: node g_pipeline.mjs --input=payments.json [--batch=200] [--rows=processed_events:1,ledger_postings:2,...]
//   input: {"rpc": url, "payments": [{"txHash", "logIndex", "orderId", "transactionId"}]} (test/bench/pipeline.ts)
//   rows:  rows per payment per table, as the service wrote them in the same run (fractions allowed)
import fs from 'node:fs';
import pg from 'pg';
import { arg, PG, cpuStart, emit } from './common.mjs';

const input = JSON.parse(fs.readFileSync(arg('input', ''), 'utf8'));
const batch = arg('batch', 200);
const rowsPer = Object.fromEntries(arg('rows', 'processed_events:1,ledger_transactions:1,ledger_postings:2,audit_log:1,notifications:2,outbox:3')
  .split(',').map((kv) => kv.split(':')).map(([t, k]) => [t, Number(k)]));
const payments = input.payments;

let rpcId = 0;
async function rpcBatch(calls) {
  const body = calls.map(([method, params]) => ({ jsonrpc: '2.0', id: ++rpcId, method, params }));
  const res = await fetch(input.rpc, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const answers = await res.json();
  const byId = new Map(answers.map((a) => [a.id, a]));
  return body.map((b) => {
    const a = byId.get(b.id);
    if (a.error) throw new Error(`${b.method}: ${a.error.message}`);
    return a.result;
  });
}

const db = new pg.Client(PG);
await db.connect();
const T = (t) => `bench_g_${t}`;
await db.query(`DROP TABLE IF EXISTS ${T('payments')}`);
await db.query(`CREATE TABLE ${T('payments')} (id text PRIMARY KEY, status text NOT NULL, tx_hash text, log_index int,
  block_number numeric, block_hash text, paid_amount numeric, confirmed_at timestamptz, updated_at timestamptz)`);
await db.query(`INSERT INTO ${T('payments')} (id, status) SELECT unnest($1::text[]), 'pending'`, [payments.map((p) => p.transactionId)]);
const generic = Object.keys(rowsPer).filter((t) => t !== 'processed_events');
for (const t of generic) {
  await db.query(`DROP TABLE IF EXISTS ${T(t)}`);
  await db.query(`CREATE TABLE ${T(t)} (id bigserial PRIMARY KEY, ref text NOT NULL, kind text NOT NULL, payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now())`);
}
await db.query(`DROP TABLE IF EXISTS ${T('processed_events')}`);
await db.query(`CREATE TABLE ${T('processed_events')} (dedupe_key text PRIMARY KEY, source text NOT NULL, payment_id text NOT NULL,
  outcome text NOT NULL, processed_at timestamptz NOT NULL DEFAULT now())`);

const meter = cpuStart();
const started = performance.now();
let confirmed = 0;
for (let i = 0; i < payments.length; i += batch) {
  const chunk = payments.slice(i, i + batch);
  const hashes = [...new Set(chunk.map((p) => p.txHash))];
  const answers = await rpcBatch([...hashes.map((h) => ['eth_getTransactionReceipt', [h]]), ['eth_blockNumber', []]]);
  const head = BigInt(answers.at(-1));
  const receipts = new Map(hashes.map((h, k) => [h, answers[k]]));
  const blockNumbers = [...new Set([...receipts.values()].map((r) => r.blockNumber))];
  const blocks = new Map((await rpcBatch(blockNumbers.map((n) => ['eth_getBlockByNumber', [n, false]]))).map((b) => [b.number, b]));
  const ready = chunk.flatMap((p) => {
    const r = receipts.get(p.txHash);
    const log = r.logs.find((l) => Number(l.logIndex) === p.logIndex);
    const block = blocks.get(r.blockNumber);
    const deep = head - BigInt(r.blockNumber) + 1n >= 2n && block.hash === r.blockHash;
    return log && deep ? [{ ...p, blockNumber: BigInt(r.blockNumber).toString(), blockHash: r.blockHash, amount: BigInt(log.data.slice(0, 66)).toString() }] : [];
  });
  await db.query('BEGIN');
  await db.query(`INSERT INTO ${T('processed_events')} (dedupe_key, source, payment_id, outcome)
    SELECT unnest($1::text[]), 'webhook', unnest($2::text[]), 'confirmed' ON CONFLICT (dedupe_key) DO NOTHING`,
  [ready.map((p) => `31337:${p.txHash}:${p.logIndex}:${p.blockHash}`), ready.map((p) => p.transactionId)]);
  await db.query(`UPDATE ${T('payments')} t SET status = 'confirmed', tx_hash = v.tx_hash, log_index = v.log_index,
    block_number = v.block_number, block_hash = v.block_hash, paid_amount = v.amount, confirmed_at = now(), updated_at = now()
    FROM unnest($1::text[], $2::text[], $3::int[], $4::numeric[], $5::text[], $6::numeric[]) AS v(id, tx_hash, log_index, block_number, block_hash, amount)
    WHERE t.id = v.id AND t.status = 'pending'`,
  [ready.map((p) => p.transactionId), ready.map((p) => p.txHash), ready.map((p) => p.logIndex), ready.map((p) => p.blockNumber),
    ready.map((p) => p.blockHash), ready.map((p) => p.amount)]);
  for (const t of generic) {
    const n = Math.round(rowsPer[t] * ready.length);
    if (n === 0) continue;
    const refs = Array.from({ length: n }, (_, k) => ready[k % ready.length].transactionId);
    const payloads = refs.map((ref, k) => JSON.stringify({ transaction_id: ref, order_id: ready[k % ready.length].orderId, kind: t, n: k }));
    await db.query(`INSERT INTO ${T(t)} (ref, kind, payload) SELECT unnest($1::text[]), $2, unnest($3::jsonb[])`, [refs, t, payloads]);
  }
  await db.query('COMMIT');
  confirmed += ready.length;
}
const secs = (performance.now() - started) / 1000;
const cpu = meter();
for (const t of [...generic, 'processed_events', 'payments']) await db.query(`DROP TABLE IF EXISTS ${T(t)}`);
await db.end();
emit({ test: 'g_pipeline', n: payments.length, confirmed, batch, secs: +secs.toFixed(3), payments_per_sec: Math.round(confirmed / secs), ...cpu });
