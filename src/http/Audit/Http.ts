import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect, Layer } from "effect"
import { AuditLog } from "../../../services/AuditLog.ts"
import { Api } from "../Api.ts"
import * as E from "../Errors.ts"

export const AdminAuditLive = HttpApiBuilder.group(Api, "adminAudit", (handlers) =>
  Effect.map(AuditLog, (audit) =>
    handlers.handle("list", ({ urlParams }) =>
      audit.list("admin", urlParams).pipe(
        Effect.catchTags({ BadCursor: E.BadCursor })
      )))).pipe(Layer.provide(AuditLog.Default))

export const FinanceAuditLive = HttpApiBuilder.group(Api, "financeAudit", (handlers) =>
  Effect.map(AuditLog, (audit) =>
    handlers.handle("list", ({ urlParams }) =>
      audit.list("finance", urlParams).pipe(
        Effect.catchTags({ BadCursor: E.BadCursor })
      )))).pipe(Layer.provide(AuditLog.Default))
