/**
 * The reading half of the e2e run, after confirmation: the ledger entry, the outbox events, notifications and audit
 * rows written with the payment, the user's bundle, finance_ops' view of the user, and removal of the demo plan.
 */
import { Effect, Schema } from "effect"
import type { CheckoutView } from "../../domain/Checkout.ts"
import { PlanView } from "../../domain/Plan.ts"
import { HistoryPage, Summary } from "../../http/Me/Api.ts"
import { expect } from "./Http.ts"
import type { Run } from "./Payment.ts"
import { type PaymentRefs, type Records, unbalancedAssets } from "./Records.ts"
import { check, Skipped } from "./Report.ts"

type Rows = Effect.Effect.Success<typeof Records>

const mentions = (value: unknown, refs: PaymentRefs) => {
  const text = JSON.stringify(value) ?? ""
  return [refs.transactionId, refs.orderId, refs.txHash].some((ref) => text.includes(ref))
}

export const ledger = (records: Rows, view: CheckoutView) =>
  Effect.gen(function*() {
    const entries = yield* records.ledger(view.transaction_id)
    const payment = entries.find((e) => e.kind === "payment")
    yield* check(payment !== undefined, `no ledger transaction of kind payment for ${view.transaction_id}`)
    for (const entry of entries) {
      const unbalanced = unbalancedAssets(entry)
      yield* check(unbalanced.length === 0, `ledger transaction ${entry.id} does not balance for ${unbalanced.join(", ")}`)
    }
    const asset = `${view.network}:${view.token}`
    const debit = payment!.postings.filter((p) => p.asset === asset && BigInt(p.amount) > 0n).reduce((sum, p) => sum + BigInt(p.amount), 0n)
    yield* check(debit === BigInt(view.amount), `ledger debits ${debit} ${asset}, the payment was ${view.amount}`)
    const postings = entries.reduce((n, e) => n + e.postings.length, 0)
    return {
      summary: `${entries.length} ledger transaction(s), ${postings} posting(s), balanced per asset; ${debit} ${asset} debited`,
      data: { balanced: true, transactions: entries }
    }
  })

export const events = (records: Rows, refs: PaymentRefs) =>
  Effect.gen(function*() {
    const rows = yield* records.outbox(refs)
    const planChanged = rows.filter((r) => r.subject === "plan.changed.v1" && mentions(r.payload, refs))
    yield* check(planChanged.length > 0, "no billing.plan.changed.v1 event for the payment in the outbox")
    const published = rows.filter((r) => r.published).length
    return {
      summary: `${rows.length} outbox event(s) for the user (${published} published by the relay, ${rows.length - published} pending); ${planChanged.length} plan.changed.v1`,
      data: rows
    }
  })

export const notifications = (records: Rows, refs: PaymentRefs) =>
  Effect.gen(function*() {
    const rows = yield* records.notifications(refs)
    const confirmed = rows.find((r) => r.user_id === refs.userId && /payment[._]?confirmed/.test(r.kind))
    yield* check(confirmed !== undefined, `no payment-confirmed notification for user ${refs.userId}`)
    return {
      summary: `${rows.length} notification(s): ${rows.map((r) => `${r.kind} → ${r.user_id}`).join(", ")}`,
      data: rows
    }
  })

export const audit = (records: Rows, refs: PaymentRefs, planSlug: string, planCreated: boolean, since: string) =>
  Effect.gen(function*() {
    const rows = yield* records.audit(refs, planSlug, since)
    if (planCreated) {
      yield* check(rows.some((r) => r.action === "plan.create" && r.resource === `plan:${planSlug}`), `no plan.create audit row for plan:${planSlug}`)
    }
    yield* check(rows.some((r) => mentions([r.resource, r.before, r.after], refs)), "no audit row for the payment's transitions")
    return {
      summary: `${rows.length} audit row(s): ${rows.map((r) => `${r.action} ${r.resource}`).join(", ")}`,
      data: rows
    }
  })

export const bundle = (run: Run, view: CheckoutView) =>
  Effect.gen(function*() {
    const summary = yield* expect("me/summary", yield* run.http("GET", "/v1/billing/me/summary", { token: run.tokens.user }), [200], Summary)
    const history = yield* expect("me/history", yield* run.http("GET", "/v1/billing/me/history", { token: run.tokens.user }), [200], HistoryPage)
    const sub = summary.subscription
    yield* check(summary.user_id === run.userId, `summary is for ${summary.user_id}`)
    yield* check(summary.wallet === run.payer.address.toLowerCase(), `wallet is ${summary.wallet}, paid from ${run.payer.address}`)
    yield* check(sub !== null && sub.plan_slug === run.planSlug && sub.status === "active", `subscription is ${sub === null ? "none" : `${sub.plan_slug} ${sub.status}`}, not ${run.planSlug} active`)
    yield* check(summary.debt.length === 0, `a user who just paid has debt ${JSON.stringify(summary.debt)}`)
    yield* check(summary.last_payment?.transaction_id === view.transaction_id && summary.last_payment.status === "confirmed", "last payment is not the confirmed one")
    yield* check(history.items.some((i) => i.transaction_id === view.transaction_id && i.status === "confirmed"), "history lacks the confirmed payment")
    return {
      summary: `wallet ${summary.wallet}, ${sub!.plan_slug} ${sub!.status} until ${sub!.current_period_end}, debt ${summary.debt.length === 0 ? "none" : JSON.stringify(summary.debt)}, ${history.items.length} history item(s)`,
      data: { summary, history }
    }
  })

const noSuchRoute = (body: unknown) => Schema.is(Schema.Struct({ error: Schema.Literal("not_found"), message: Schema.Literal("no such route") }))(body)

/** The playbook's check that finance_ops sees the payment; skipped on a server without these routes. */
export const overview = (run: Run, view: CheckoutView) =>
  Effect.gen(function*() {
    const paths = [`/v1/billing/overview/users/${encodeURIComponent(run.userId)}/summary`, `/v1/billing/overview/users/${encodeURIComponent(run.userId)}/history`]
    const seen: Array<{ path: string; body: unknown }> = []
    for (const path of paths) {
      const res = yield* run.http("GET", path, { token: run.tokens.financeOps })
      if (res.status === 404 && noSuchRoute(res.body)) return yield* new Skipped({ message: `the server has no ${path}` })
      yield* expect(path, res, [200], Schema.Unknown)
      seen.push({ path, body: res.body })
    }
    yield* check(JSON.stringify(seen[1]!.body).includes(view.transaction_id), "finance_ops' history of the user lacks the payment")
    return { summary: "finance_ops sees the user's summary and the payment in their history", data: seen }
  })

const Deleted = Schema.Struct({ deleted: Schema.Literal(true), soft: Schema.Boolean })

/** Removes the plan if this run created it; after a confirmed payment that must be a soft delete. */
export const cleanup = (run: Run, created: boolean, paid: boolean) =>
  Effect.gen(function*() {
    if (!created) return { summary: `plan ${run.planSlug} kept: it existed before this run`, data: { deleted: false } }
    const res = yield* run.http("DELETE", `/v1/billing/admin/plans/${run.planSlug}`, { token: run.tokens.admin })
    const deleted = yield* expect("delete plan", res, [200], Deleted)
    if (paid) yield* check(deleted.soft, "the plan was hard-deleted although a payment refers to it")
    const listed = yield* expect("public plans", yield* run.http("GET", "/v1/billing/plans"), [200], Schema.Struct({ items: Schema.Array(PlanView) }))
    yield* check(!listed.items.some((p) => p.slug === run.planSlug), `plan ${run.planSlug} is still listed`)
    return { summary: `demo plan ${run.planSlug} removed (${deleted.soft ? "soft delete: payments refer to it" : "hard delete"})`, data: deleted }
  })
