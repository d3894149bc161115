import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { BadRequest, Conflict, NotFound } from "../../domain/Errors.ts"
import { Slug } from "../../domain/Ids.ts"
import { WebhookSecretCreate, WebhookSecretUpdate, WebhookSecretView } from "../../domain/WebhookSecret.ts"
import { AdminOnly } from "../Auth.ts"

const PATH = "/v1/billing/admin/contracts/:slug/webhook-secrets"
const ByContract = Schema.Struct({ slug: Slug })
const BySecret = Schema.Struct({ slug: Slug, id: Schema.UUID })

/** Rotation with overlap: add the new secret, let relayers switch, then retire (or schedule the expiry of) the old one. */
export class AdminWebhookSecretsApi extends HttpApiGroup.make("adminWebhookSecrets")
  .add(
    HttpApiEndpoint.get("list", PATH).setPath(ByContract)
      .addSuccess(Schema.Struct({ items: Schema.Array(WebhookSecretView) }))
      .addError(NotFound)
      .annotate(OpenApi.Description, "A contract's webhook secrets, newest first: metadata only, never the secret.")
  )
  .add(
    HttpApiEndpoint.post("add", PATH).setPath(ByContract).setPayload(WebhookSecretCreate)
      .addSuccess(WebhookSecretView, { status: 201 })
      .addError(BadRequest).addError(NotFound).addError(Conflict)
      .annotate(OpenApi.Description, "Adds a secret (plain text, or whsec_<base64> as Standard Webhooks libraries use); at most 5 active per contract.")
  )
  .add(
    HttpApiEndpoint.patch("schedule", `${PATH}/:id`).setPath(BySecret).setPayload(WebhookSecretUpdate)
      .addSuccess(WebhookSecretView)
      .addError(BadRequest).addError(NotFound).addError(Conflict)
      .annotate(OpenApi.Description, "Sets (or clears, with null) when an active secret stops being accepted: the overlap window of a rotation.")
  )
  .add(
    HttpApiEndpoint.del("retire", `${PATH}/:id`).setPath(BySecret)
      .addSuccess(WebhookSecretView)
      .addError(NotFound)
      .annotate(OpenApi.Description, "Retires a secret now; webhooks signed only with it are refused from then on.")
  )
  .middleware(AdminOnly)
{}
