import { Effect } from "effect"
import { BadRequest, Conflict, NotFound, Unavailable as UnavailableError } from "../domain/Errors.ts"

/** Domain outcomes of the admin services, each as its HTTP error. */
const notFound = (error: NotFound["error"], what: string) => (e: { readonly slug: string }) =>
  Effect.fail(new NotFound({ error, message: `${what} ${e.slug} does not exist` }))
const conflict = (error: Conflict["error"]) => (e: { readonly message: string }) => Effect.fail(new Conflict({ error, message: e.message }))

export const ContractNotFound = notFound("contract_not_found", "contract")
export const PlanNotFound = notFound("plan_not_found", "plan")
export const GatewayNotFound = notFound("gateway_not_found", "gateway")
export const ContractExists = conflict("contract_exists")
export const ContractInUse = conflict("contract_in_use")
export const PlanExists = (e: { readonly slug: string }) =>
  Effect.fail(new Conflict({ error: "plan_exists", message: `plan ${e.slug} already exists` }))
export const GatewayExists = (e: { readonly slug: string }) =>
  Effect.fail(new Conflict({ error: "gateway_exists", message: `gateway ${e.slug} already exists` }))
export const PlanInvalid = (e: { readonly message: string }) => Effect.fail(new BadRequest({ error: "invalid_plan", message: e.message }))

/** A cursor that does not decode is the client's mistake. */
export const BadCursor = () => Effect.fail(new BadRequest({ error: "invalid_cursor", message: "cursor is not valid" }))

/**
 * NATS or PostgreSQL did not answer: logged (the cause's message, never the request) and answered 503 with `code`;
 * nothing was changed that a retry would repeat.
 */
export const Unavailable = (what: string, code: UnavailableError["error"]) => (e: { readonly message: string }) =>
  Effect.zipRight(
    Effect.logWarning(`${what}: a dependency did not answer`, e.message),
    Effect.fail(new UnavailableError({ error: code, message: `${what} are unavailable, retry later` }))
  )
