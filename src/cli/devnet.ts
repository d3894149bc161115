import { Command, Options } from "@effect/cli"
import { Console, Effect, Schema } from "effect"
import { SignerKey } from "../../services/QuoteSigner.ts"
import { withDevelopmentDefaults } from "../devnet/DevelopmentConfig.ts"
import { Devnet, DevnetInfo } from "../devnet/Devnet.ts"

const port = Options.integer("port").pipe(Options.withDescription("port for anvil"), Options.withDefault(8545))
const json = Options.boolean("json").pipe(Options.withDescription("print only the JSON line"))
const blockTime = Options.integer("block-time").pipe(
  Options.withDescription("seconds between blocks (default: one block per transaction)"),
  Options.optional
)

export const devnet = Command.make("devnet", { port, json, blockTime }, ({ blockTime, json, port }) =>
  Effect.gen(function*() {
    const { key } = yield* SignerKey
    const info = yield* Devnet.start({ port, signerPrivateKey: key, ...(blockTime._tag === "Some" ? { blockTime: blockTime.value } : {}) })
    yield* Console.log(JSON.stringify(Schema.encodeSync(DevnetInfo)(info)))
    if (!json) yield* Console.error("devnet running; Ctrl-C stops it")
    return yield* Effect.never
  }).pipe(Effect.scoped, withDevelopmentDefaults)
).pipe(Command.withDescription("start anvil with the reference contracts deployed and print their addresses"))
