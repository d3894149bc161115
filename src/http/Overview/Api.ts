import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { CryptoConfigUpdate, CryptoConfigView } from "../../domain/CryptoConfig.ts"
import { BadRequest } from "../../domain/Errors.ts"
import { FinanceOpsOnly } from "../Auth.ts"

export class OverviewApi extends HttpApiGroup.make("overview")
  .add(HttpApiEndpoint.get("cryptoConfig", "/v1/billing/overview/crypto-config").addSuccess(CryptoConfigView))
  .add(
    HttpApiEndpoint.post("updateCryptoConfig", "/v1/billing/overview/crypto-config")
      .setPayload(CryptoConfigUpdate)
      .addSuccess(CryptoConfigView)
      .addError(BadRequest)
      .annotate(OpenApi.Description, "Change RPC endpoints, confirmations or gas cap per network; live on every instance, audited.")
  )
  .middleware(FinanceOpsOnly)
{}
