import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { CryptoConfigUpdate, CryptoConfigView } from "../../domain/CryptoConfig.ts"
import { BadRequest, Conflict } from "../../domain/Errors.ts"
import { Dashboard, Networks, PayoutsPage, PayoutsParams, UserPath } from "../../domain/Overview.ts"
import { FinanceOpsOnly } from "../Auth.ts"
import { HistoryPage, HistoryParams, Summary } from "../Me/Api.ts"

export class OverviewApi extends HttpApiGroup.make("overview")
  .add(HttpApiEndpoint.get("cryptoConfig", "/v1/billing/overview/crypto-config").addSuccess(CryptoConfigView))
  .add(
    HttpApiEndpoint.post("updateCryptoConfig", "/v1/billing/overview/crypto-config")
      .setPayload(CryptoConfigUpdate)
      .addSuccess(CryptoConfigView)
      .addError(BadRequest)
      .addError(Conflict)
      .annotate(
        OpenApi.Description,
        "Change RPC endpoints, confirmations or gas cap per network; live on every instance, audited. Every endpoint of a changed " +
          "network must pass the endpoint policy and answer eth_chainId with the network's chain id (400 invalid_rpc_endpoint); " +
          "a network's chain_id cannot change once it has payments (409 chain_id_frozen)."
      )
  )
  .add(
    HttpApiEndpoint.get("dashboard", "/v1/billing/overview/dashboard")
      .addSuccess(Dashboard)
      .annotate(OpenApi.Description, "MRR, ARPU, subscriptions, 30-day churn, revenue per day, confirmation times, counts per status.")
  )
  .add(
    HttpApiEndpoint.get("networks", "/v1/billing/overview/networks")
      .addSuccess(Networks)
      .annotate(OpenApi.Description, "Per configured network: chain, confirmations, RPC endpoint health, payments per status, volume.")
  )
  .add(
    HttpApiEndpoint.get("payouts", "/v1/billing/overview/payouts")
      .setUrlParams(PayoutsParams)
      .addSuccess(PayoutsPage)
      .addError(BadRequest)
      .annotate(OpenApi.Description, "Transactions newest first, filtered by status, network, token, contract and created_at range.")
  )
  .add(
    HttpApiEndpoint.get("userHistory", "/v1/billing/overview/users/:user_id/history")
      .setPath(UserPath)
      .setUrlParams(HistoryParams)
      .addSuccess(HistoryPage)
      .addError(BadRequest)
  )
  .add(HttpApiEndpoint.get("userSummary", "/v1/billing/overview/users/:user_id/summary").setPath(UserPath).addSuccess(Summary))
  .middleware(FinanceOpsOnly)
{}
