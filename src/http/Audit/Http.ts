import { HttpApiBuilder } from "@effect/platform"
import { Effect, Layer } from "effect"
import { AuditLog } from "../../../services/AuditLog.ts"
import { BadRequest } from "../../domain/Errors.ts"
import { Api } from "../Api.ts"

export const AdminAuditLive = HttpApiBuilder.group(Api, "adminAudit", (handlers) =>
  Effect.map(AuditLog, (audit) =>
    handlers.handle("list", ({ urlParams }) =>
      audit.list(urlParams).pipe(
        Effect.catchTags({ BadCursor: () => Effect.fail(new BadRequest({ error: "invalid_cursor", message: "cursor is not valid" })) })
      )))).pipe(Layer.provide(AuditLog.Default))
