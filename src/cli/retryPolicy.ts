import { Args, Command, Options } from "@effect/cli"
import { Console, Effect, Layer, Option } from "effect"
import { PgLive } from "../../services/Database.ts"
import { Nats } from "../../services/Nats.ts"
import { RetryPolicyState } from "../../services/RetryPolicies.ts"
import { RetryPolicyStore } from "../../services/RetryPolicyStore.ts"
import { RetryPolicyName, RetryPolicySettings, type RetryPolicyView } from "../domain/RetryPolicy.ts"
import { actor, actorOf, decode } from "./operator.ts"

const Live = RetryPolicyStore.Default.pipe(Layer.provide(Layer.mergeAll(Nats.Default, RetryPolicyState.Default)), Layer.provide(PgLive))
const name = Args.text({ name: "name" }).pipe(Args.withDescription("webhooks, chain-events, outbox or rpc"))
const number = (option: string, description: string) => Options.float(option).pipe(Options.withDescription(description), Options.optional)

const line = (p: RetryPolicyView) =>
  `${p.name.padEnd(13)} initial ${p.initial_delay_ms} ms, factor ${p.factor}, max ${p.max_delay_ms} ms, ` +
  `${p.max_attempts} attempts, jitter ${p.jitter} (${p.source === "stored" ? `set by ${p.updated_by} at ${p.updated_at}` : "environment"})`

const list = Command.make("list", {}, () =>
  Effect.gen(function*() {
    const views = yield* (yield* RetryPolicyStore).list
    yield* Console.log(views.map(line).join("\n"))
  }).pipe(Effect.provide(Live))).pipe(Command.withDescription("every retry policy in force"))

const get = Command.make("get", { name }, ({ name }) =>
  Effect.gen(function*() {
    const view = yield* (yield* RetryPolicyStore).get(yield* decode(RetryPolicyName, name))
    yield* Console.log(JSON.stringify(view))
  }).pipe(Effect.provide(Live))).pipe(Command.withDescription("one retry policy as JSON"))

const set = Command.make("set", {
  name,
  actor,
  initialDelayMs: number("initial-delay-ms", "delay after a first failure, ms"),
  factor: number("factor", "growth per failure, 1 to 10"),
  maxDelayMs: number("max-delay-ms", "longest delay, ms (not below the initial delay)"),
  maxAttempts: number("max-attempts", "deliveries or tries before giving up"),
  jitter: number("jitter", "spread of each delay, 0 to 1")
}, (o) =>
  Effect.gen(function*() {
    const store = yield* RetryPolicyStore
    const policy = yield* decode(RetryPolicyName, o.name)
    const who = yield* actorOf(o.actor)
    // what is not given keeps its value in force
    const current = yield* store.get(policy)
    const or = (given: Option.Option<number>, kept: number) => Option.getOrElse(given, () => kept)
    const settings = yield* decode(RetryPolicySettings, {
      initial_delay_ms: or(o.initialDelayMs, current.initial_delay_ms),
      factor: or(o.factor, current.factor),
      max_delay_ms: or(o.maxDelayMs, current.max_delay_ms),
      max_attempts: or(o.maxAttempts, current.max_attempts),
      jitter: or(o.jitter, current.jitter)
    })
    yield* Console.log(line(yield* store.set(policy, settings, who)))
  }).pipe(Effect.provide(Live))).pipe(Command.withDescription("change a retry policy (the fields given); every instance applies it within seconds; audited"))

export const retryPolicy = Command.make("retry-policy").pipe(
  Command.withDescription("tune the retry schedules of the consumers, the outbox relay and RPC calls, live"),
  Command.withSubcommands([list, get, set])
)
