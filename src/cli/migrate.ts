import { Command } from "@effect/cli"
import { Console, Effect } from "effect"
import { migrate as run } from "../Bootstrap.ts"

export const migrate = Command.make("migrate", {}, () =>
  Effect.gen(function*() {
    const applied = yield* run
    yield* Console.log(applied.length === 0 ? "database is up to date" : `applied ${applied.length} migration(s)`)
  })
).pipe(Command.withDescription("create the database if needed and apply pending migrations"))
