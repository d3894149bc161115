import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect, Layer } from "effect"
import { DeadLetters } from "../../../services/DeadLetters.ts"
import { Conflict, NotFound } from "../../domain/Errors.ts"
import { currentActor } from "../Admin/Http.ts"
import { Api } from "../Api.ts"
import * as E from "../Errors.ts"

const notFound = (e: { readonly id: number }) =>
  Effect.fail(new NotFound({ error: "dead_letter_not_found", message: `no dead letter ${e.id} (replayed, discarded, expired or never written)` }))

const unavailable = E.Unavailable("dead letters", "queue_unavailable")

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
