import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

/** Every error on the wire is `{ "error": code, "message": text }`; the class decides the status. */
const fields = { error: Schema.String, message: Schema.String }

export class BadRequest extends Schema.Class<BadRequest>("BadRequest")(fields, HttpApiSchema.annotations({ status: 400 })) {}
export class Unauthorized extends Schema.Class<Unauthorized>("Unauthorized")(fields, HttpApiSchema.annotations({ status: 401 })) {}
export class Forbidden extends Schema.Class<Forbidden>("Forbidden")(fields, HttpApiSchema.annotations({ status: 403 })) {}
export class NotFound extends Schema.Class<NotFound>("NotFound")(fields, HttpApiSchema.annotations({ status: 404 })) {}
export class Conflict extends Schema.Class<Conflict>("Conflict")(fields, HttpApiSchema.annotations({ status: 409 })) {}
export class PayloadTooLarge extends Schema.Class<PayloadTooLarge>("PayloadTooLarge")(fields, HttpApiSchema.annotations({ status: 413 })) {}
export class Unavailable extends Schema.Class<Unavailable>("Unavailable")(fields, HttpApiSchema.annotations({ status: 503 })) {}

export type ApiError = BadRequest | Unauthorized | Forbidden | NotFound | Conflict | PayloadTooLarge | Unavailable

export const badRequest = (message: string, error = "invalid_request") => new BadRequest({ error, message })
export const notFound = (error: string, message: string) => new NotFound({ error, message })
export const conflict = (error: string, message: string) => new Conflict({ error, message })
