/**
 * The faults, each injected at seeded random moments while payments stream in; each returns how many it injected and
 * leaves the component running again.
 */
import { Effect } from "effect"
import type { Deployment } from "./Deployment.ts"
import type { Random } from "./Random.ts"
import { CONFIRMATIONS, type Stack } from "./Stack.ts"
import type { Workload } from "./Workload.ts"

export interface FaultContext {
  readonly stack: Stack
  readonly deployment: Deployment
  readonly workload: Workload
  readonly random: Random
}

const pause = (random: Random, min: number, max: number) => Effect.sleep(`${random.millis(min, max)} millis`)

const times = (n: number, one: (i: number) => Effect.Effect<void, unknown>) =>
  Effect.forEach(Array.from({ length: n }, (_, i) => i), one, { discard: true }).pipe(Effect.as(n))

/** `n` times: a pause drawn from `before` (ms), the component down, a pause drawn from `during`, the component back. */
const outages = (
  n: number,
  random: FaultContext["random"],
  before: readonly [number, number],
  down: Effect.Effect<void, unknown>,
  during: readonly [number, number],
  up: Effect.Effect<void, unknown>
) =>
  // Each pause is drawn when it starts, as the seeded draws always were.
  times(n, () =>
    Effect.suspend(() => pause(random, ...before)).pipe(
      Effect.zipRight(down),
      Effect.zipRight(Effect.suspend(() => pause(random, ...during))),
      Effect.zipRight(up)
    ))

/** SIGKILL the service, start it again at once or after a moment; the next kill comes 0.3–2 s after it is healthy. */
export const serviceKills = (n: number) => ({ deployment, random }: FaultContext) =>
  outages(n, random, [300, 2000], deployment.service.kill, [0, 1000], deployment.service.start)

/** SIGKILL nats-server, down for 0.5–2.5 s, started again on the same port and store. */
export const natsKills = (n: number) => ({ random, stack }: FaultContext) =>
  outages(n, random, [1500, 4000], stack.nats.kill, [500, 2500], stack.nats.start)

/** pg_ctl restart, alternating a clean fast shutdown and an immediate one (a crash recovered from the WAL). */
export const postgresRestarts = (n: number) => ({ random, stack }: FaultContext) =>
  times(n, (i) =>
    Effect.gen(function*() {
      yield* pause(random, 1500, 4000)
      yield* stack.postgres.restart(i % 2 === 0 ? "fast" : "immediate")
    }))

/** The primary RPC endpoint refuses connections for 1–3 s (open ones reset), then comes back on the same port. */
export const rpcOutages = (n: number) => ({ random, stack }: FaultContext) =>
  outages(n, random, [1000, 3000], stack.gate.kill, [1000, 3000], stack.gate.revive)

/**
 * anvil_reorg of depth 1 to CONFIRMATIONS + 3 while payments confirm: the newest blocks are replaced, and each mint
 * they held is mined again in the new blocks with probability 1/2 (the rest stay dropped until `resendDropped`).
 */
export const reorgs = (n: number) => ({ random, stack, workload }: FaultContext) =>
  times(n, () =>
    Effect.gen(function*() {
      yield* pause(random, 800, 2500)
      const depth = random.int(1, CONFIRMATIONS + 3)
      // Mints of one payer must go back in nonce order; when anvil refuses the set, the reorg drops them all.
      yield* stack.chain.reorg(depth, (head) =>
        Effect.map(workload.orders, (orders) => orders.filter((o) => o.block !== undefined && o.block > head - BigInt(depth) && random.chance(0.5)).map((o) => o.raw)))
    }))

/** After the reorgs: every mint the chain does not hold is sent again where its nonce still allows; how many were. */
export const resendDropped = ({ stack, workload }: FaultContext) =>
  Effect.gen(function*() {
    let resent = 0
    for (const order of yield* workload.orders) {
      if (yield* stack.chain.orderUsed(order.orderId)) continue
      const sent = yield* Effect.either(stack.chain.sendRaw(order.raw))
      if (sent._tag === "Right") resent++
    }
    return resent
  })
