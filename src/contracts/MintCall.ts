import { Option, Schema } from "effect"
import { type Abi, decodeFunctionData, type Hex } from "viem"
import { OrderId } from "../domain/Ids.ts"

const decodeOrderId = Schema.decodeUnknownOption(OrderId)

/**
 * The order a transaction's calldata pays for: a call of the registered contract's `mint_method`, whose first
 * argument is the order id (the reference contract's convention). None for any other calldata.
 */
export const mintOrderId = (abi: ReadonlyArray<unknown>, mintMethod: string, input: Hex): Option.Option<string> => {
  try {
    const call = decodeFunctionData({ abi: abi as Abi, data: input })
    return call.functionName === mintMethod ? decodeOrderId(call.args?.[0]) : Option.none()
  } catch {
    // viem throws when the selector is not in the ABI or the arguments do not decode: not a mint.
    return Option.none()
  }
}
