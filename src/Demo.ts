import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { decodeIds } from "../services/Rows.ts"
import { SubscriptionPassAbi } from "./contracts/abi.ts"
import type { DevnetInfo } from "./devnet/Devnet.ts"

export const DEMO_CONTRACT = "demo-pass"
export const DEMO_PLAN = "demo-monthly"
export const DEMO_NATIVE_PRICE = 10_000_000_000_000_000n // 0.01 ETH
export const DEMO_TOKEN_PRICE = 10_000_000n // 10 TUSD (6 decimals)

/** Registers the devnet's contract and a demo plan (native and token prices), replacing earlier demo rows. */
export const registerDemo = (devnet: DevnetInfo) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const token = devnet.token_address.toLowerCase()
    yield* sql`INSERT INTO contracts (slug, network, address, abi, mint_method, burn_method, enabled)
      VALUES (${DEMO_CONTRACT}, ${devnet.network}, ${devnet.contract_address.toLowerCase()},
        ${JSON.stringify(SubscriptionPassAbi)}::jsonb, 'mint', 'burn', true)
      ON CONFLICT (slug) DO UPDATE SET network = excluded.network, address = excluded.address, abi = excluded.abi,
        enabled = true, updated_at = now()`
    const [plan] = yield* sql`INSERT INTO plans (slug, title, interval, contract_slug, monthly_limits, features)
      VALUES (${DEMO_PLAN}, 'Demo monthly', 'month', ${DEMO_CONTRACT}, '{"requests": 10000}'::jsonb, '["demo"]'::jsonb)
      ON CONFLICT (slug) WHERE deleted_at IS NULL DO UPDATE SET contract_slug = excluded.contract_slug, is_active = true, updated_at = now()
      RETURNING id::text AS id`.pipe(Effect.flatMap(decodeIds))
    yield* sql`DELETE FROM plan_prices WHERE plan_id = ${plan!.id}`
    yield* sql`INSERT INTO plan_prices ${sql.insert([
      { plan_id: plan!.id, network: devnet.network, token: "native", amount: DEMO_NATIVE_PRICE.toString() },
      { plan_id: plan!.id, network: devnet.network, token, amount: DEMO_TOKEN_PRICE.toString() }
    ])}`
  }).pipe(
    (effect) => Effect.flatMap(SqlClient.SqlClient, (sql) => sql.withTransaction(effect)),
    Effect.orDie
  )
