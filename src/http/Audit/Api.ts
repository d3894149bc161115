import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as OpenApi from "@effect/platform/OpenApi"
import { AuditPage, AuditParams } from "../../domain/AuditLog.ts"
import { BadRequest } from "../../domain/Errors.ts"
import { AdminOnly, FinanceOpsOnly } from "../Auth.ts"

const list = (path: `/${string}`, description: string) =>
  HttpApiEndpoint.get("list", path)
    .setUrlParams(AuditParams)
    .addSuccess(AuditPage)
    .addError(BadRequest)
    .annotate(OpenApi.Description, description)

export class AdminAuditApi extends HttpApiGroup.make("adminAudit")
  .add(list(
    "/v1/billing/admin/audit",
    "Admin changes (plans, contracts, gateways, crypto-config) newest first, filtered by resource, actor or action; cursor paging. Payment rows are finance_ops'."
  ))
  .middleware(AdminOnly)
{}

export class FinanceAuditApi extends HttpApiGroup.make("financeAudit")
  .add(list(
    "/v1/billing/overview/audit",
    "Payment transitions and crypto-config changes newest first, filtered by resource, actor or action; cursor paging."
  ))
  .middleware(FinanceOpsOnly)
{}
