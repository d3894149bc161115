import { Command } from "@effect/cli"
import { Console, Effect } from "effect"
import { PgLive } from "../../services/Database.ts"
import { reencryptSecrets } from "../../services/WebhookSecretsAtRest.ts"

/**
 * Key rotation for secrets at rest: with the new key in BILLING_SECRETS_KEY and the old one in
 * BILLING_SECRETS_PREVIOUS_KEYS, re-seals every row under the new key in one transaction. No development default.
 */
const rotate = Command.make("rotate", {}, () =>
  Effect.gen(function*() {
    const { keyId, legacy, rotated } = yield* reencryptSecrets
    yield* Console.log(`re-encrypted ${rotated} webhook secret(s) under key ${keyId}${legacy > 0 ? ` (and sealed ${legacy} stored in plain text)` : ""}`)
  }).pipe(Effect.provide(PgLive))
).pipe(Command.withDescription("re-encrypt every stored webhook secret under BILLING_SECRETS_KEY (old keys in BILLING_SECRETS_PREVIOUS_KEYS)"))

export const secrets = Command.make("secrets").pipe(
  Command.withDescription("secrets at rest"),
  Command.withSubcommands([rotate])
)
