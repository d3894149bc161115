import { Config, ConfigError, Data, Duration, Effect, Either } from "effect"
import { lookup } from "node:dns/promises"
import { createPublicClient, http } from "viem"
import { checkResolved, checkUrl, type EndpointPolicy, isRefusal, parseAllowedHosts } from "../src/domain/EndpointPolicy.ts"
import { safeMessage } from "./RpcError.ts"

export const EndpointPolicyConfig = Config.all({
  allowedHosts: Config.string("BILLING_RPC_ALLOWED_HOSTS").pipe(
    Config.withDefault(""),
    Config.mapOrFail((text) => {
      const parsed = parseAllowedHosts(text)
      return typeof parsed === "string"
        ? Either.left(ConfigError.InvalidData([], `BILLING_RPC_ALLOWED_HOSTS: ${parsed}`))
        : Either.right(parsed)
    })
  ),
  allowLoopback: Config.boolean("BILLING_RPC_ALLOW_LOOPBACK").pipe(Config.withDefault(false))
}) satisfies Config.Config<EndpointPolicy>

/** Bounds a probe (DNS and `eth_chainId`): the same budget as one RPC request. */
const ProbeTimeout = Config.duration("BILLING_RPC_TIMEOUT").pipe(Config.withDefault(Duration.seconds(10)))

export type EndpointRefusalReason = string

/** Host name → addresses (the system resolver); a test layer stands in for DNS answers an attacker would give. */
export class HostResolver extends Effect.Service<HostResolver>()("billing/HostResolver", {
  succeed: {
    lookup: (host: string): Effect.Effect<ReadonlyArray<string>, unknown> =>
      Effect.map(Effect.tryPromise(() => lookup(host, { all: true, verbatim: true })), (answers) => answers.map((a) => a.address))
  }
}) {}

/** An endpoint the service will not trust; `message` never holds the URL. */
export class EndpointRefused extends Data.TaggedError("EndpointRefused")<{
  readonly reason: EndpointRefusalReason
  readonly message: string
}> {}

/**
 * The endpoint policy with DNS: every address a host name resolves to is checked, so a public-looking name that
 * points at the metadata service or a private network is refused. Checked when an endpoint is configured and again
 * whenever the Rpc service (re)probes it; a rebinding answer between two probes remains a residual risk.
 */
export class EndpointGuard extends Effect.Service<EndpointGuard>()("billing/EndpointGuard", {
  effect: Effect.gen(function*() {
    const policy = yield* EndpointPolicyConfig
    const timeout = yield* ProbeTimeout
    const resolver = yield* HostResolver

    // No answer (or none in time) is an empty list: refused as unresolved.
    const resolve = (host: string) =>
      resolver.lookup(host).pipe(Effect.timeout(timeout), Effect.orElseSucceed((): ReadonlyArray<string> => []))

    /** The policy for one URL, its host resolved. */
    const admit = (url: string) =>
      Effect.gen(function*() {
        const parsed = checkUrl(url, policy)
        if (isRefusal(parsed)) return yield* new EndpointRefused(parsed)
        const addresses = parsed.literal ? [parsed.host] : yield* resolve(parsed.host)
        const refused = checkResolved(url, addresses, policy)
        if (refused !== undefined) return yield* new EndpointRefused(refused)
      }).pipe(Effect.withSpan("EndpointGuard.admit"))

    /** Admitted, and it answers `eth_chainId` with `chainId` within the timeout: fit to be configured. */
    const prove = (url: string, chainId: number) =>
      Effect.gen(function*() {
        yield* admit(url)
        const client = createPublicClient({ transport: http(url, { retryCount: 0, timeout: Duration.toMillis(timeout) }) })
        const answered = yield* Effect.tryPromise({
          try: () => client.getChainId(),
          catch: (error) => new EndpointRefused({ reason: "unreachable", message: `it did not answer eth_chainId: ${safeMessage(error)}` })
        }).pipe(
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () => new EndpointRefused({ reason: "unreachable", message: "it did not answer eth_chainId in time" })
          })
        )
        if (answered !== chainId) {
          return yield* new EndpointRefused({ reason: "wrong_chain", message: `it answered chain id ${answered}, expected ${chainId}` })
        }
      }).pipe(Effect.withSpan("EndpointGuard.prove", { attributes: { chain_id: chainId } }))

    return { policy, admit, prove } as const
  }),
  dependencies: [HostResolver.Default]
}) {}
