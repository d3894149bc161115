import { Data, Effect, Schema } from "effect"

export class BadCursor extends Data.TaggedError("BadCursor") {}

/** Opaque keyset cursors: base64url JSON, decoded with a schema; anything else is a BadCursor (400). */
export const cursorCodec = <A, I>(schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknown(Schema.parseJson(schema))
  const encodeJson = Schema.encodeSync(schema)
  return {
    encode: (value: A) => Buffer.from(JSON.stringify(encodeJson(value))).toString("base64url"),
    decode: (raw: string) => decode(Buffer.from(raw, "base64url").toString("utf8")).pipe(Effect.mapError(() => new BadCursor()))
  }
}

/** Keyset position on payments: created_at with PostgreSQL's microseconds (a JS Date would drop them), and id. */
export const PaymentCursor = cursorCodec(Schema.Struct({
  at: Schema.String.pipe(Schema.pattern(/^\d{4}-\d{2}-\d{2}T[\d:.]+Z$/)),
  id: Schema.UUID
}))
