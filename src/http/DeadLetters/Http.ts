import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect, Layer } from "effect"
import { DeadLetters } from "../../../services/DeadLetters.ts"
import { Conflict, NotFound, Unavailable } from "../../domain/Errors.ts"
import { currentActor } from "../Admin/Http.ts"
import { Api } from "../Api.ts"

const notFound = (e: { readonly id: number }) =>
  Effect.fail(new NotFound({ error: "dead_letter_not_found", message: `no dead letter ${e.id} (replayed, discarded, expired or never written)` }))

/** NATS or PostgreSQL not answering: nothing was changed that a retry would repeat (replay ids are per dead letter). */
const unavailable = (e: { readonly message: string }) =>
  Effect.zipRight(
    Effect.logWarning("dead letters: NATS or PostgreSQL did not answer", e.message),
    Effect.fail(new Unavailable({ error: "queue_unavailable", message: "the dead-letter queue is unavailable, retry later" }))
  )

export const AdminDeadLettersLive = HttpApiBuilder.group(Api, "adminDeadLetters", (handlers) =>
  Effect.gen(function*() {
    const deadLetters = yield* DeadLetters
    return handlers
      .handle("list", ({ urlParams }) => deadLetters.list(urlParams).pipe(Effect.catchTag("NatsError", unavailable)))
      .handle("get", ({ path }) =>
        deadLetters.get(path.id).pipe(Effect.catchTags({ DeadLetterNotFound: notFound, NatsError: unavailable })))
      .handle("replay", ({ path }) =>
        Effect.flatMap(currentActor, (actor) => deadLetters.replay(path.id, actor)).pipe(
          Effect.catchTags({
            DeadLetterNotFound: notFound,
            DeadLetterNotReplayable: (e) => Effect.fail(new Conflict({ error: "dead_letter_not_replayable", message: e.message })),
            NatsError: unavailable,
            SqlError: unavailable
          })
        ))
      .handle("discard", ({ path, payload }) =>
        Effect.flatMap(currentActor, (actor) => deadLetters.discard(path.id, payload.reason, actor)).pipe(
          Effect.catchTags({ DeadLetterNotFound: notFound, NatsError: unavailable, SqlError: unavailable })
        ))
  })).pipe(Layer.provide(DeadLetters.Default))
