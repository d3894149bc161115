import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import { Schema } from "effect"

/**
 * Every error on the wire is `{ "error": code, "message": text }`; the class decides the status. Each class
 * lists its codes: disjoint code sets are also what lets the response encoder tell the classes apart.
 */
const shape = <const Codes extends ReadonlyArray<string>>(...codes: Codes) => ({
  error: Schema.Literal(...codes),
  message: Schema.String
})

export class BadRequest extends Schema.Class<BadRequest>("BadRequest")(
  shape(
    "invalid_request",
    "invalid_webhook",
    "network_not_offered",
    "invalid_plan",
    "invalid_cursor",
    "invalid_rpc_endpoint",
    "refund_unverified"
  ),
  HttpApiSchema.annotations({ status: 400 })
) {}
export class Unauthorized extends Schema.Class<Unauthorized>("Unauthorized")(
  shape("unauthorized"),
  HttpApiSchema.annotations({ status: 401 })
) {}
export class Forbidden extends Schema.Class<Forbidden>("Forbidden")(
  shape("forbidden"),
  HttpApiSchema.annotations({ status: 403 })
) {}
export class NotFound extends Schema.Class<NotFound>("NotFound")(
  shape("not_found", "payment_not_found", "plan_not_found", "contract_not_found", "gateway_not_found", "webhook_secret_not_found", "dead_letter_not_found"),
  HttpApiSchema.annotations({ status: 404 })
) {}
export class Conflict extends Schema.Class<Conflict>("Conflict")(
  shape(
    "contract_exists",
    "contract_in_use",
    "plan_exists",
    "gateway_exists",
    "gateway_disabled",
    "contract_disabled",
    "network_unavailable",
    "idempotency_key_reused",
    "too_many_webhook_secrets",
    "webhook_secret_inactive",
    "chain_id_frozen",
    "payment_not_refundable",
    "refund_tx_used",
    "credit_changed",
    "dead_letter_not_replayable"
  ),
  HttpApiSchema.annotations({ status: 409 })
) {}
export class PayloadTooLarge extends Schema.Class<PayloadTooLarge>("PayloadTooLarge")(
  shape("payload_too_large"),
  HttpApiSchema.annotations({ status: 413 })
) {}
export class UnsupportedMediaType extends Schema.Class<UnsupportedMediaType>("UnsupportedMediaType")(
  shape("unsupported_media_type"),
  HttpApiSchema.annotations({ status: 415 })
) {}
export class Unavailable extends Schema.Class<Unavailable>("Unavailable")(
  shape("not_ready", "queue_unavailable"),
  HttpApiSchema.annotations({ status: 503 })
) {}
export class Internal extends Schema.Class<Internal>("Internal")(
  shape("internal_error"),
  HttpApiSchema.annotations({ status: 500 })
) {}
