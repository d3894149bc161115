import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as OpenApi from "@effect/platform/OpenApi"
import { CryptoConfigUpdate, CryptoConfigView } from "../../domain/CryptoConfig.ts"
import { BadRequest, Conflict, NotFound } from "../../domain/Errors.ts"
import { Dashboard, Networks, PayoutsPage, PayoutsParams, UserPath } from "../../domain/Overview.ts"
import { CreditsPage, CreditsParams, PaymentPath, RefundRequest, RefundView, ResolveRequest, ResolveView } from "../../domain/Refund.ts"
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
  .add(
    HttpApiEndpoint.post("refund", "/v1/billing/overview/payments/:id/refund")
      .setPath(PaymentPath)
      .setPayload(RefundRequest)
      .addSuccess(RefundView)
      .addError(BadRequest)
      .addError(NotFound)
      .addError(Conflict)
      .annotate(
        OpenApi.Description,
        "Record a refund paid on chain: the transaction must be final and move exactly the payment's paid amount of its token " +
          "from the contract's treasury to the payer (400 refund_unverified). Posts a refund ledger transaction, moves the " +
          "payment to refunded and takes back what it bought; audited, payer and finance_ops notified. Repeating it answers " +
          "the same; a transaction already used for another payment is 409 refund_tx_used."
      )
  )
  .add(
    HttpApiEndpoint.post("resolve", "/v1/billing/overview/payments/:id/resolve")
      .setPath(PaymentPath)
      .setPayload(ResolveRequest)
      .addSuccess(ResolveView)
      .addError(BadRequest)
      .addError(NotFound)
      .annotate(
        OpenApi.Description,
        "Re-check one payment against the chain and apply what the chain says (confirm, back to pending, reverse once final, " +
          "or nothing); never a status set by hand. Reason required; audited; payer and finance_ops notified."
      )
  )
  .add(
    HttpApiEndpoint.get("credits", "/v1/billing/overview/credits")
      .setUrlParams(CreditsParams)
      .addSuccess(CreditsPage)
      .annotate(OpenApi.Description, "Customer credit held per user and asset (user order, after `after`), and the totals per asset.")
  )
  .middleware(FinanceOpsOnly)
{}
