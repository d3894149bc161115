import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { AuditPage, AuditParams } from "../../domain/AuditLog.ts"
import { BadRequest } from "../../domain/Errors.ts"
import { AdminOnly } from "../Auth.ts"

export class AdminAuditApi extends HttpApiGroup.make("adminAudit")
  .add(
    HttpApiEndpoint.get("list", "/v1/billing/admin/audit")
      .setUrlParams(AuditParams)
      .addSuccess(AuditPage)
      .addError(BadRequest)
      .annotate(OpenApi.Description, "The audit trail newest first, filtered by resource, actor or action; cursor paging.")
  )
  .middleware(AdminOnly)
{}
