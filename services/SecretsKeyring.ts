import { Config, ConfigError, Data, Effect, Either, Redacted } from "effect"
import { open, parseSecretsKey, seal, type SecretsKey as Key } from "../src/domain/SecretBox.ts"

/**
 * The keys that encrypt secrets at rest: BILLING_SECRETS_KEY seals, it and BILLING_SECRETS_PREVIOUS_KEYS open
 * (so a key can rotate while rows sealed under the old one are re-encrypted). There is no default key.
 */
const parsed = (name: string, value: Redacted.Redacted) =>
  Either.mapLeft(parseSecretsKey(Redacted.value(value)), (why) => ConfigError.InvalidData([name], `${name} ${why}`))

export const SecretsKey: Config.Config<Key> = Config.redacted("BILLING_SECRETS_KEY").pipe(
  Config.withDescription("base64 of 32 random bytes: the AES-256-GCM key for webhook secrets at rest"),
  Config.mapOrFail((value) => parsed("BILLING_SECRETS_KEY", value))
)

export const PreviousSecretsKeys: Config.Config<ReadonlyArray<Key>> = Config.redacted("BILLING_SECRETS_PREVIOUS_KEYS").pipe(
  Config.withDescription("comma-separated base64 keys that only decrypt (rows sealed before a key rotation)"),
  Config.withDefault(Redacted.make("")),
  Config.mapOrFail((value) =>
    Either.all(Redacted.value(value).split(",").filter((k) => k.trim() !== "").map((k) =>
      parsed("BILLING_SECRETS_PREVIOUS_KEYS", Redacted.make(k))
    ))
  )
)

export class SecretUndecryptable extends Data.TaggedError("SecretUndecryptable")<{
  readonly keyId: string
  readonly reason: "unknown_key" | "authentication_failed"
}> {
  override get message() {
    return this.reason === "unknown_key"
      ? `sealed under key ${this.keyId}, which is neither BILLING_SECRETS_KEY nor one of BILLING_SECRETS_PREVIOUS_KEYS`
      : `does not authenticate under key ${this.keyId} (altered, or moved from another row)`
  }
}

export const makeKeyring = Effect.gen(function*() {
  const current = yield* SecretsKey
  const previous = yield* PreviousSecretsKeys
  const byId = new Map([...previous, current].map((k) => [k.id, k]))

  const encrypt = (plaintext: Redacted.Redacted<string>, aad: string) =>
    Effect.sync(() => ({ keyId: current.id, ciphertext: seal(current, Redacted.value(plaintext), aad) }))

  const decrypt = (keyId: string, ciphertext: Uint8Array, aad: string): Effect.Effect<Redacted.Redacted<string>, SecretUndecryptable> => {
    const key = byId.get(keyId)
    if (key === undefined) return Effect.fail(new SecretUndecryptable({ keyId, reason: "unknown_key" }))
    return Either.match(open(key, ciphertext, aad), {
      onLeft: () => Effect.fail(new SecretUndecryptable({ keyId, reason: "authentication_failed" })),
      onRight: (text) => Effect.succeed(Redacted.make(text))
    })
  }

  return { currentKeyId: current.id, encrypt, decrypt } as const
})

export class SecretsKeyring extends Effect.Service<SecretsKeyring>()("billing/SecretsKeyring", {
  effect: makeKeyring
}) {}
