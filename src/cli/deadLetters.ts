import { Args, Command, Options } from "@effect/cli"
import { Console, Effect, Layer, Option } from "effect"
import { PgLive } from "../../services/Database.ts"
import { DeadLetters } from "../../services/DeadLetters.ts"
import { Nats } from "../../services/Nats.ts"
import { actor, actorOf, decode } from "./operator.ts"
import { DeadLetterId, DeadLetterParams, DiscardRequest, type DeadLetterSummary } from "../domain/DeadLetter.ts"

const optionalText = (name: string, description: string) => Options.text(name).pipe(Options.withDescription(description), Options.optional)
const json = Options.boolean("json").pipe(Options.withDescription("print JSON"))
const id = Args.text({ name: "id" }).pipe(Args.withDescription("the dead letter's id (its sequence in the DLQ stream)"))
const Live = DeadLetters.Default.pipe(Layer.provide(Nats.Default), Layer.provide(PgLive))

const line = (d: DeadLetterSummary) =>
  `${d.id.padStart(6)}  ${d.last_failed_at}  ${d.consumer.padEnd(26)}  deliveries ${d.delivery_count}  ${d.subject}  ${d.reason}`

const list = Command.make("list", {
  consumer: optionalText("consumer", "payment-processor-webhooks, payment-processor-chain or outbox"),
  reason: optionalText("reason", "reason starts with this text"),
  since: optionalText("since", "dead-lettered at or after (ISO 8601)"),
  until: optionalText("until", "dead-lettered before (ISO 8601)"),
  cursor: optionalText("cursor", "the next_cursor of the previous page"),
  limit: optionalText("limit", "1 to 100 (default 50)"),
  json
}, ({ json, ...filters }) =>
  Effect.gen(function*() {
    const params = yield* decode(DeadLetterParams, Object.fromEntries(Object.entries(filters).flatMap(([k, v]) => Option.isSome(v) ? [[k, v.value]] : [])))
    const page = yield* (yield* DeadLetters).list(params)
    if (json) return yield* Console.log(JSON.stringify(page))
    yield* Console.log(page.items.length === 0 ? "no dead letters" : page.items.map(line).join("\n"))
    if (page.next_cursor !== null) yield* Console.log(`more: --cursor ${page.next_cursor}`)
  }).pipe(Effect.provide(Live))).pipe(Command.withDescription("dead letters oldest first, filtered by consumer, reason and time"))

const get = Command.make("get", { id }, ({ id }) =>
  Effect.gen(function*() {
    const letter = yield* (yield* DeadLetters).get(yield* decode(DeadLetterId, id))
    yield* Console.log(JSON.stringify(letter, null, 2))
  }).pipe(Effect.provide(Live))).pipe(Command.withDescription("one dead letter: payload, headers, reason, deliveries, first and last failure"))

const replay = Command.make("replay", { id, actor }, ({ actor, id }) =>
  Effect.gen(function*() {
    const who = yield* actorOf(actor)
    const result = yield* (yield* DeadLetters).replay(yield* decode(DeadLetterId, id), who)
    yield* Console.log(`dead letter ${result.id} replayed to ${result.replayed_to}${result.msg_id === null ? "" : ` as ${result.msg_id}`}`)
  }).pipe(Effect.provide(Live))).pipe(Command.withDescription("put a dead letter back on its stream (an outbox record: its row pending again); audited"))

const discard = Command.make("discard", {
  id,
  actor,
  reason: Options.text("reason").pipe(Options.withDescription("why it is dropped, for the audit trail (required)"))
}, ({ actor, id, reason }) =>
  Effect.gen(function*() {
    const who = yield* actorOf(actor)
    const { reason: why } = yield* decode(DiscardRequest, { reason })
    const letter = yield* (yield* DeadLetters).discard(yield* decode(DeadLetterId, id), why, who)
    yield* Console.log(`dead letter ${letter.id} discarded`)
  }).pipe(Effect.provide(Live))).pipe(Command.withDescription("remove a dead letter for good, with a reason; audited"))

export const deadLetters = Command.make("dead-letters").pipe(
  Command.withDescription("see, replay and discard what the consumers gave up on"),
  Command.withSubcommands([list, get, replay, discard])
)
