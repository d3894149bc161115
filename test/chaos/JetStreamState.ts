/**
 * What the scenario's durable consumers still hold (JetStream consumer info: pending + awaiting ack) and whether every
 * dead letter carries its reason header, read over a connection of the suite's own.
 */
import { jetstreamManager } from "@nats-io/jetstream"
import { connect } from "@nats-io/transport-node"
import { Data, Effect } from "effect"
import { DeadLetterHeaders, make as makeSubjects, Prefix } from "../../services/Subjects.ts"

export class JetStreamStateError extends Data.TaggedError("JetStreamStateError")<{ readonly cause: unknown }> {}

export interface ConsumerState {
  readonly durable: string
  readonly unacked: number
}

export interface JetStreamState {
  readonly consumers: ReadonlyArray<ConsumerState>
  readonly deadLetters: number
  readonly deadLettersWithoutReason: number
  /** Dead letters per reason, hashes elided so alike reasons count together. */
  readonly reasons: Readonly<Record<string, number>>
}

export const jetStreamState = (url: string, prefix: string) =>
  Effect.acquireUseRelease(
    Effect.tryPromise({ try: () => connect({ servers: url, maxReconnectAttempts: 0 }), catch: (cause) => new JetStreamStateError({ cause }) }),
    (nc) =>
      Effect.tryPromise({
        try: async (): Promise<JetStreamState> => {
          const subjects = makeSubjects(Prefix.make(prefix))
          const jsm = await jetstreamManager(nc)
          const pairs = [
            [subjects.streams.webhooks, subjects.durables.paymentProcessorWebhooks],
            [subjects.streams.chain, subjects.durables.paymentProcessorChain]
          ] as const
          const consumers = await Promise.all(pairs.map(async ([stream, durable]) => {
            const info = await jsm.consumers.info(stream, durable)
            return { durable, unacked: info.num_pending + info.num_ack_pending }
          }))
          const dlq = await jsm.streams.info(subjects.streams.dlq)
          let withoutReason = 0
          const reasons: Record<string, number> = {}
          for (let seq = dlq.state.first_seq; dlq.state.messages > 0 && seq <= dlq.state.last_seq; seq++) {
            const msg = await jsm.streams.getMessage(subjects.streams.dlq, { seq })
            if (msg === null) continue
            const reason = (msg.header.get(DeadLetterHeaders.reason) ?? "").trim()
            if (reason === "") withoutReason++
            const kind = reason.replace(/0x[0-9a-fA-F]+/g, "0x…")
            reasons[kind] = (reasons[kind] ?? 0) + 1
          }
          return { consumers, deadLetters: dlq.state.messages, deadLettersWithoutReason: withoutReason, reasons }
        },
        catch: (cause) => new JetStreamStateError({ cause })
      }),
    (nc) => Effect.promise(() => nc.close())
  )

export const jetStreamProblems = (state: JetStreamState) => [
  ...state.consumers.filter((c) => c.unacked > 0).map((c) => `${c.unacked} messages unacked on ${c.durable}`),
  ...(state.deadLettersWithoutReason > 0 ? [`${state.deadLettersWithoutReason} dead letters without a reason`] : [])
]
