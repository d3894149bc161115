/** What operator commands share: arguments checked with the HTTP routes' own schemas, and who is acting. */
import { Options } from "@effect/cli"
import { Data, Effect, Option, ParseResult, Schema } from "effect"
import { userInfo } from "node:os"
import { isServiceActor } from "../domain/Actor.ts"

/** What the operator typed, refused with the schema's own words (the same checks as the HTTP routes). */
export class InvalidArguments extends Data.TaggedError("InvalidArguments")<{ readonly message: string }> {}

export const decode = <A, I>(schema: Schema.Schema<A, I>, input: unknown) =>
  Schema.decodeUnknown(schema)(input).pipe(
    Effect.mapError((e) => new InvalidArguments({ message: ParseResult.TreeFormatter.formatErrorSync(e) }))
  )

export const actor = Options.text("actor").pipe(
  Options.withDescription("who does it, for the audit trail (default: operator:<login name>)"),
  Options.optional
)

export const actorOf = (given: Option.Option<string>) =>
  Effect.gen(function*() {
    const name = Option.getOrElse(given, () => `operator:${userInfo().username}`).trim()
    if (name === "" || name.length > 200) return yield* new InvalidArguments({ message: "--actor must be 1 to 200 characters" })
    if (isServiceActor(name)) return yield* new InvalidArguments({ message: "--actor must not start with system: (reserved for the service's own actors)" })
    return { id: name }
  })

