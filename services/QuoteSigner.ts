import { Config, ConfigError, Effect, Either, Redacted } from "effect"
import { privateKeyToAccount } from "viem/accounts"
import { type QuoteInput, signQuote } from "../src/contracts/Quote.ts"

const isKey = (k: string): k is `0x${string}` => /^0x[0-9a-fA-F]{64}$/.test(k)

/** The quote signer's key: required, a start without it fails naming the variable (the devnet supplies its own). */
export const SignerKey = Config.redacted("BILLING_SIGNER_PRIVATE_KEY").pipe(
  Config.mapOrFail((key) =>
    isKey(Redacted.value(key))
      ? Either.right({ key })
      : Either.left(ConfigError.InvalidData(["BILLING_SIGNER_PRIVATE_KEY"], "BILLING_SIGNER_PRIVATE_KEY must be a 0x-prefixed 32-byte hex private key"))
  )
)

/** Signs EIP-712 checkout quotes that SubscriptionPass.mint verifies. */
export class QuoteSigner extends Effect.Service<QuoteSigner>()("billing/QuoteSigner", {
  effect: Effect.gen(function*() {
    const { key } = yield* SignerKey
    const account = privateKeyToAccount(Redacted.value(key) as `0x${string}`)
    return {
      address: account.address,
      sign: (quote: QuoteInput) => Effect.promise(() => signQuote(account, quote)).pipe(Effect.withSpan("QuoteSigner.sign"))
    } as const
  })
}) {}
