/** Reading what reached the EVENTS stream, and the plan.changed JSON Schema compiled with ajv (draft 2020-12). */
import { Effect, Schema } from "effect"
import { readFileSync } from "node:fs"
import { Ajv2020 } from "ajv/dist/2020.js"
import { Nats } from "../../services/Nats.ts"
import { eventually } from "../support/app.ts"

export interface EventMessage {
  readonly seq: number
  readonly subject: string
  readonly msgId: string | undefined
  /** The payload, parsed (it is JSON text the service wrote). */
  readonly body: unknown
}

const parseJson = Schema.decodeUnknownSync(Schema.parseJson())

/** Every message of this prefix's EVENTS stream, oldest first (test streams are small). */
export const eventMessages = Effect.flatMap(Nats, (nats) =>
  nats.use("events", async ({ jsm }) => {
    const stream = nats.subjects.streams.events
    const { state } = await jsm.streams.info(stream)
    const found: Array<EventMessage> = []
    for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
      const m = await jsm.streams.getMessage(stream, { seq })
      if (m === null) continue
      found.push({ seq: m.seq, subject: m.subject, msgId: m.header?.get("Nats-Msg-Id"), body: parseJson(m.string()) })
    }
    return found
  })).pipe(Effect.orDie)

/** The messages on one subject (`nats.subjects.event(name)`). */
export const messagesOn = (name: string) =>
  Effect.flatMap(Nats, (nats) =>
    Effect.map(eventMessages, (all) => all.filter((m) => m.subject === nats.subjects.event(name))))

/** Waits until `pick` finds a message among those on `name`. */
export const awaitMessage = <A>(name: string, pick: (messages: ReadonlyArray<EventMessage>) => A | undefined, what: string) =>
  eventually(Effect.map(messagesOn(name), pick), (found) => found !== undefined, what).pipe(Effect.map((found) => found!))

const schemaUrl = new URL("../../docs/events/billing.plan.changed.v1.schema.json", import.meta.url)

/** ajv in strict mode; `format` is documentation here (the schema's patterns enforce the same). */
export const planChangedValidator = () => {
  const ajv = new Ajv2020({ strict: true, allErrors: true, validateFormats: false })
  const schema = parseJson(readFileSync(schemaUrl, "utf8"))
  return ajv.compile(schema as object)
}
