/** A full work stream refuses new webhooks (discard New): 503 to the relayer, nothing already queued is dropped. */
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import { Nats } from "../../services/Nats.ts"
import { App, appHarness, errorOf, PASS } from "../support/app.ts"

const event = { type: "payment.minted", contract: PASS, network: "anvil", log_index: 0, block_number: 1 }

layer(appHarness({ env: { BILLING_STREAM_MAX_BYTES: "16384" } }), { timeout: 120_000, excludeTestServices: true })("full webhooks stream", (it) => {
  it.effect("webhooks are accepted until the stream is full, then refused with 503; the queued ones stay", () =>
    Effect.gen(function*() {
      const app = yield* App
      const nats = yield* Nats
      const contract = yield* app.request("POST", "/v1/billing/admin/contracts", {
        token: app.admin,
        body: { slug: PASS, network: "anvil", address: app.devnet.info.contract_address }
      })
      assert.strictEqual(contract.status, 201)
      const statuses: Array<number> = []
      for (let i = 0; i < 40 && !statuses.includes(503); i++) {
        const res = yield* app.webhook({ ...event, tx_hash: `0x${randomBytes(32).toString("hex")}` })
        statuses.push(res.status)
        if (res.status === 503) assert.strictEqual(errorOf(res).error, "queue_unavailable")
      }
      const accepted = statuses.filter((s) => s === 202).length
      assert.isAbove(accepted, 0, `statuses ${statuses.join(",")}`)
      assert.strictEqual(statuses.at(-1), 503, `statuses ${statuses.join(",")}`)
      const info = yield* nats.use("info", ({ jsm }) => jsm.streams.info(nats.subjects.streams.webhooks)).pipe(Effect.orDie)
      assert.strictEqual(info.config.max_bytes, 16384)
      assert.strictEqual(info.state.first_seq, 1, "nothing dropped to make room")
      assert.strictEqual(info.state.messages, accepted)
    }))
})
