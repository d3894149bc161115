import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import { Schema } from "effect"
import { ContractCreate, ContractUpdate, ContractView } from "../../domain/Contract.ts"
import { BadRequest, Conflict, NotFound } from "../../domain/Errors.ts"
import { GatewayCreate, GatewayUpdate, GatewayView } from "../../domain/Gateway.ts"
import { Slug } from "../../domain/Ids.ts"
import { PlanCreate, PlanUpdate, PlanView } from "../../domain/Plan.ts"
import { AdminOnly } from "../Auth.ts"

const BySlug = Schema.Struct({ slug: Slug })
const Deleted = Schema.Struct({ deleted: Schema.Literal(true), soft: Schema.Boolean })

/** list, get, create, update (PATCH), delete under one prefix. */
const crud = <Name extends string, C, CI, U, UI, V, VI>(
  name: Name,
  path: `/${string}`,
  schemas: { create: Schema.Schema<C, CI>; update: Schema.Schema<U, UI>; view: Schema.Schema<V, VI> }
) =>
  HttpApiGroup.make(name)
    .add(HttpApiEndpoint.get("list", path).addSuccess(Schema.Struct({ items: Schema.Array(schemas.view) })))
    .add(HttpApiEndpoint.get("get", `${path}/:slug`).setPath(BySlug).addSuccess(schemas.view).addError(NotFound))
    .add(
      HttpApiEndpoint.post("create", path).setPayload(schemas.create).addSuccess(schemas.view, { status: 201 })
        .addError(BadRequest).addError(Conflict).addError(NotFound)
    )
    .add(
      HttpApiEndpoint.patch("update", `${path}/:slug`).setPath(BySlug).setPayload(schemas.update).addSuccess(schemas.view)
        .addError(BadRequest).addError(Conflict).addError(NotFound)
    )
    .add(HttpApiEndpoint.del("remove", `${path}/:slug`).setPath(BySlug).addSuccess(Deleted).addError(NotFound).addError(Conflict))
    .middleware(AdminOnly)

export class AdminContractsApi extends crud("adminContracts", "/v1/billing/admin/contracts", {
  create: ContractCreate,
  update: ContractUpdate,
  view: ContractView
}) {}

export class AdminPlansApi extends crud("adminPlans", "/v1/billing/admin/plans", {
  create: PlanCreate,
  update: PlanUpdate,
  view: PlanView
}) {}

export class AdminGatewaysApi extends crud("adminGateways", "/v1/billing/admin/gateways", {
  create: GatewayCreate,
  update: GatewayUpdate,
  view: GatewayView
}) {}
