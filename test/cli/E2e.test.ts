/**
 * `evm-billing e2e` as an operator runs it: the real binary, a fresh database, a NATS prefix of its own, the service
 * and a devnet started inside the command. The JSON document is checked step by step, and the database is read
 * independently of what the command printed.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted, Schema } from "effect"
import { cli, isolatedEnv } from "../smoke/harness.ts"

const Step = Schema.Struct({
  step: Schema.String,
  ok: Schema.Boolean,
  skipped: Schema.optional(Schema.Boolean),
  summary: Schema.String,
  ms: Schema.Number,
  data: Schema.optional(Schema.Unknown),
  error: Schema.optional(Schema.String)
})
const Document = Schema.Struct({ ok: Schema.Boolean, user_id: Schema.String, steps: Schema.Array(Step) })
const decodeDocument = Schema.decodeUnknownSync(Schema.parseJson(Document))

const Posting = Schema.Struct({ account: Schema.String, asset: Schema.String, amount: Schema.String })
const LedgerData = Schema.Struct({ balanced: Schema.Literal(true), transactions: Schema.Array(Schema.Struct({ kind: Schema.String, postings: Schema.Array(Posting) })) })
const SetupData = Schema.Struct({ in_process: Schema.Boolean, devnet: Schema.Boolean, chain_id: Schema.Number })
const ConfirmationData = Schema.Struct({ status: Schema.String, transaction_id: Schema.String })
const CheckoutData = Schema.Struct({ transaction_id: Schema.String, payload: Schema.Struct({ transactions: Schema.Array(Schema.Struct({ to: Schema.String, data: Schema.String })) }) })
const BundleData = Schema.Struct({
  summary: Schema.Struct({
    subscription: Schema.Struct({ plan_slug: Schema.String, status: Schema.String }),
    debt: Schema.Array(Schema.Unknown),
    last_payment: Schema.Struct({ status: Schema.String })
  })
})
const EventsData = Schema.Array(Schema.Struct({ subject: Schema.String, published: Schema.Boolean }))
const Deleted = Schema.Struct({ deleted: Schema.Boolean, soft: Schema.Boolean })

const dataOf = <A, I>(doc: typeof Document.Type, step: string, schema: Schema.Schema<A, I>) => {
  const found = doc.steps.find((s) => s.step === step)
  assert.isDefined(found, `step ${step} missing`)
  return Schema.decodeUnknownSync(schema)(found!.data)
}

const paymentsOf = (url: string, userId: string) =>
  Effect.flatMap(PgClient.PgClient, (sql) =>
    sql<{ status: string }>`SELECT status FROM payment_transactions WHERE user_id = ${userId}`).pipe(
    Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 })),
    Effect.orDie
  )

describe("evm-billing e2e", () => {
  it.scopedLive("--json: every step passes, from the demo plan to its removal, and exits 0", () =>
    Effect.gen(function*() {
      const env = yield* isolatedEnv
      const out = yield* cli(["e2e", "--json", "--user-id", "e2e-ci-user"], env)
      assert.strictEqual(out.code, 0, out.stderr.slice(-3000))
      const doc = decodeDocument(out.stdout)
      assert.isTrue(doc.ok)
      assert.strictEqual(doc.user_id, "e2e-ci-user")
      assert.deepStrictEqual(
        doc.steps.map((s) => [s.step, s.ok]),
        ["setup", "plan", "checkout", "payment", "webhook", "confirmation", "ledger", "events", "notifications", "audit", "bundle", "overview", "cleanup"]
          .map((s) => [s, true])
      )

      assert.deepStrictEqual(dataOf(doc, "setup", SetupData), { in_process: true, devnet: true, chain_id: 31337 })
      const checkout = dataOf(doc, "checkout", CheckoutData)
      assert.isAbove(checkout.payload.transactions.length, 0, "the wallet payload is printed")
      const confirmed = dataOf(doc, "confirmation", ConfirmationData)
      assert.deepStrictEqual(confirmed, { status: "confirmed", transaction_id: checkout.transaction_id })

      const ledger = dataOf(doc, "ledger", LedgerData)
      const postings = ledger.transactions.flatMap((t) => t.postings)
      assert.isAbove(postings.length, 1)
      for (const asset of new Set(postings.map((p) => p.asset))) {
        const sum = postings.filter((p) => p.asset === asset).reduce((s, p) => s + BigInt(p.amount), 0n)
        assert.strictEqual(sum, 0n, `postings of ${asset} sum to zero`)
      }

      const events = dataOf(doc, "events", EventsData)
      assert.isTrue(events.some((e) => e.subject === "plan.changed.v1"))

      const bundle = dataOf(doc, "bundle", BundleData)
      assert.deepStrictEqual(bundle.summary.subscription, { ...bundle.summary.subscription, plan_slug: "demo-monthly", status: "active" })
      assert.deepStrictEqual(bundle.summary.debt, [])
      assert.strictEqual(bundle.summary.last_payment.status, "confirmed")
      assert.deepStrictEqual(dataOf(doc, "cleanup", Deleted), { deleted: true, soft: true })

      // The database agrees with what the command printed.
      assert.deepStrictEqual(yield* paymentsOf(env["DATABASE_URL"]!, "e2e-ci-user"), [{ status: "confirmed" }])
    }))

  it.scopedLive("a webhook signed with the wrong secret fails its step with 401 and the command exits 1", () =>
    Effect.gen(function*() {
      const env = yield* isolatedEnv
      const out = yield* cli(["e2e", "--json", "--user-id", "e2e-ci-wrong-secret", "--webhook-secret", "not-the-server-secret-0123"], env)
      assert.strictEqual(out.code, 1, out.stderr.slice(-3000))
      const doc = decodeDocument(out.stdout)
      assert.isFalse(doc.ok)
      assert.deepStrictEqual(doc.steps.map((s) => [s.step, s.ok]), [
        ["setup", true],
        ["plan", true],
        ["checkout", true],
        ["payment", true],
        ["webhook", false],
        ["cleanup", true]
      ])
      const webhook = doc.steps.find((s) => s.step === "webhook")!
      assert.include(webhook.error, "401")
      assert.include(webhook.error, "unauthorized")
      // The rejected webhook wrote nothing; the plan this run created was removed all the same.
      assert.deepStrictEqual(yield* paymentsOf(env["DATABASE_URL"]!, "e2e-ci-wrong-secret"), [{ status: "pending" }])
      assert.notInclude(out.stdout + out.stderr, "not-the-server-secret-0123", "the secret is never printed")
    }))

  it.scopedLive("human output prints each step and the failure, and exits 1", () =>
    Effect.gen(function*() {
      const env = yield* isolatedEnv
      const out = yield* cli(["e2e", "--webhook-secret", "not-the-server-secret-0123", "--timeout", "5"], env)
      assert.strictEqual(out.code, 1)
      assert.match(out.stdout, /✓ +1 setup +service started in this process/)
      assert.match(out.stdout, /✓ +2 plan +demo-monthly created/)
      assert.match(out.stdout, /✓ +3 checkout +transaction [0-9a-f-]+ pending/)
      assert.match(out.stdout, /✗ +5 webhook +webhook: expected 202, got 401/)
      assert.match(out.stdout, /✓ +6 cleanup +demo plan demo-monthly removed/)
      assert.notMatch(out.stdout, /e2e passed/)
    }))
})
