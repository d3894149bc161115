/**
 * BILLING_ROLES splits one process's work: `api` serves HTTP and queues webhooks without consuming them (no durable
 * consumer is made), and a value outside api/workers stops the start before anything runs.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { isNotFound, Nats } from "../../services/Nats.ts"
import { Prefix } from "../../services/Subjects.ts"
import { signWebhook } from "../../src/domain/WebhookSignature.ts"
import { DEMO_CONTRACT } from "../../src/Demo.ts"
import { cli, isolatedEnv, serve, WEBHOOK_SECRET } from "../smoke/harness.ts"

const webhook = (baseUrl: string) => {
  const body = JSON.stringify({ type: "payment.minted", contract: DEMO_CONTRACT, network: "anvil", tx_hash: `0x${"ab".repeat(32)}`, log_index: 0 })
  const timestamp = Math.floor(Date.now() / 1000)
  return Effect.promise(() =>
    fetch(`${baseUrl}/v1/billing/contracts/webhook`, {
      method: "POST",
      body,
      headers: {
        "content-type": "application/json",
        "webhook-id": "msg_roles_1",
        "webhook-timestamp": String(timestamp),
        "webhook-signature": signWebhook(WEBHOOK_SECRET, "msg_roles_1", timestamp, body)
      }
    }).then((r) => r.status)
  )
}

describe("BILLING_ROLES", () => {
  it.scopedLive("api: the webhook is queued and no consumer takes it", () =>
    Effect.gen(function*() {
      const env = yield* isolatedEnv
      const { baseUrl } = yield* serve({ ...env, BILLING_ROLES: "api" })
      assert.strictEqual(yield* webhook(baseUrl), 202)
      const nats = Context.get(yield* Layer.build(Nats.layerWith({ prefix: Prefix.make(env.BILLING_NATS_PREFIX!) })).pipe(Effect.orDie), Nats)
      const { streams, durables } = nats.subjects
      const info = yield* nats.use("streams.info", ({ jsm }) => jsm.streams.info(streams.webhooks)).pipe(Effect.orDie)
      assert.strictEqual(info.state.messages, 1)
      const consumer = yield* nats.use("consumers.info", ({ jsm }) => jsm.consumers.info(streams.webhooks, durables.paymentProcessorWebhooks)).pipe(
        Effect.as("present"),
        Effect.catchIf(isNotFound, () => Effect.succeed("absent")),
        Effect.orDie
      )
      assert.strictEqual(consumer, "absent")
    }), { timeout: 120_000 })

  it.scopedLive("a role outside api/workers stops the start, naming the variable", () =>
    Effect.gen(function*() {
      const env = yield* isolatedEnv
      const out = yield* cli(["serve"], { ...env, BILLING_ROLES: "api,everything" })
      assert.notStrictEqual(out.code, 0)
      assert.include(out.stderr, "BILLING_ROLES")
      assert.notInclude(out.stderr, "applied migration")
    }), { timeout: 120_000 })
})
