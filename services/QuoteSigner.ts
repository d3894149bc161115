import { Config, ConfigError, Effect, Either, Option, Redacted } from "effect"
import { privateKeyToAccount } from "viem/accounts"
import { type QuoteInput, signQuote } from "../src/contracts/Quote.ts"
import { DEV_SIGNER_PRIVATE_KEY } from "../src/devnet/Deploy.ts"

const isKey = (k: string): k is `0x${string}` => /^0x[0-9a-fA-F]{64}$/.test(k)

/** The signer key; unset means the documented development key (anvil account 8), never for production. */
export const SignerKey = Config.option(Config.redacted("BILLING_SIGNER_PRIVATE_KEY")).pipe(
  Config.mapOrFail((key) => {
    const raw = Option.match(key, { onNone: () => DEV_SIGNER_PRIVATE_KEY, onSome: Redacted.value })
    return isKey(raw)
      ? Either.right({ key: Redacted.make(raw), development: Option.isNone(key) })
      : Either.left(ConfigError.InvalidData(["BILLING_SIGNER_PRIVATE_KEY"], "BILLING_SIGNER_PRIVATE_KEY must be a 0x-prefixed 32-byte hex private key"))
  })
)

/** Signs EIP-712 checkout quotes that SubscriptionPass.mint verifies. */
export class QuoteSigner extends Effect.Service<QuoteSigner>()("billing/QuoteSigner", {
  effect: Effect.gen(function*() {
    const { development, key } = yield* SignerKey
    const account = privateKeyToAccount(Redacted.value(key) as `0x${string}`)
    if (development) yield* Effect.logWarning("BILLING_SIGNER_PRIVATE_KEY is unset: quotes are signed with the public development key")
    return {
      address: account.address,
      sign: (quote: QuoteInput) => Effect.promise(() => signQuote(account, quote)).pipe(Effect.withSpan("QuoteSigner.sign"))
    } as const
  })
}) {}
