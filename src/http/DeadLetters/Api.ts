import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { DeadLetterId, DeadLetterPage, DeadLetterParams, DeadLetterView, DiscardRequest, ReplayResult } from "../../domain/DeadLetter.ts"
import { BadRequest, Conflict, NotFound, Unavailable } from "../../domain/Errors.ts"
import { AdminOnly } from "../Auth.ts"

const PATH = "/v1/billing/admin/dead-letters"
const ById = Schema.Struct({ id: DeadLetterId })

/** What the consumers gave up on, to see, replay once the cause is fixed, or discard with a reason. */
export class AdminDeadLettersApi extends HttpApiGroup.make("adminDeadLetters")
  .add(
    HttpApiEndpoint.get("list", PATH).setUrlParams(DeadLetterParams)
      .addSuccess(DeadLetterPage)
      .addError(BadRequest).addError(Unavailable)
      .annotate(OpenApi.Description, "Dead letters oldest first, filtered by consumer, reason (prefix) and time; cursor paging.")
  )
  .add(
    HttpApiEndpoint.get("get", `${PATH}/:id`).setPath(ById)
      .addSuccess(DeadLetterView)
      .addError(NotFound).addError(Unavailable)
      .annotate(OpenApi.Description, "One dead letter: payload, original headers, reason, delivery count, first and last failure.")
  )
  .add(
    HttpApiEndpoint.post("replay", `${PATH}/:id/replay`).setPath(ById)
      .addSuccess(ReplayResult)
      .addError(NotFound).addError(Conflict).addError(Unavailable)
      .annotate(
        OpenApi.Description,
        "Puts the message back on its stream under a new message id (an outbox record: its row pending again), audited, and removes the dead letter. The payload's dedupe keys still prevent a second effect."
      )
  )
  .add(
    HttpApiEndpoint.post("discard", `${PATH}/:id/discard`).setPath(ById).setPayload(DiscardRequest)
      .addSuccess(DeadLetterView)
      .addError(BadRequest).addError(NotFound).addError(Unavailable)
      .annotate(OpenApi.Description, "Removes a dead letter for good, with the reason in the audit trail.")
  )
  .middleware(AdminOnly)
{}
