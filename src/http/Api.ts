import * as HttpApi from "@effect/platform/HttpApi"
import * as OpenApi from "@effect/platform/OpenApi"
import { BadRequest, Internal, NotFound, PayloadTooLarge } from "../domain/Errors.ts"
import { AdminContractsApi, AdminGatewaysApi, AdminPlansApi } from "./Admin/Api.ts"
import { AdminAuditApi, FinanceAuditApi } from "./Audit/Api.ts"
import { CheckoutApi } from "./Checkout/Api.ts"
import { AdminDeadLettersApi } from "./DeadLetters/Api.ts"
import { AdminRetryPoliciesApi } from "./RetryPolicies/Api.ts"
import { MeApi } from "./Me/Api.ts"
import { OverviewApi } from "./Overview/Api.ts"
import { PublicApi } from "./Public/Api.ts"
import { WebhooksApi } from "./Webhooks/Api.ts"
import { AdminWebhookSecretsApi } from "./WebhookSecrets/Api.ts"

export class Api extends HttpApi.make("evm-billing")
  .add(PublicApi)
  .add(CheckoutApi)
  .add(MeApi)
  .add(WebhooksApi)
  .add(AdminContractsApi)
  .add(AdminWebhookSecretsApi)
  .add(AdminPlansApi)
  .add(AdminGatewaysApi)
  .add(AdminAuditApi)
  .add(AdminDeadLettersApi)
  .add(AdminRetryPoliciesApi)
  .add(OverviewApi)
  .add(FinanceAuditApi)
  .addError(BadRequest)
  .addError(NotFound)
  .addError(PayloadTooLarge)
  .addError(Internal)
  .annotate(OpenApi.Title, "EVM billing")
  .annotate(OpenApi.Description, "Subscriptions paid on EVM chains: checkout, webhooks, ledger, admin and finance_ops.")
{}
