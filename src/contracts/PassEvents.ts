import { Option } from "effect"
import { type Abi, decodeEventLog, type Log } from "viem"

/** The two contract events billing acts on, decoded with the registered contract's ABI. */
export type PassEvent =
  | { readonly eventName: "Minted"; readonly args: { orderId: `0x${string}`; payer: string; token: string; amount: bigint; passId: bigint } }
  | { readonly eventName: "Burned"; readonly args: { passId: bigint; orderId: `0x${string}`; holder: string } }

export const decodePassEvent = (abi: ReadonlyArray<unknown>, log: Pick<Log, "data" | "topics">): Option.Option<PassEvent> => {
  try {
    const decoded = decodeEventLog({ abi: abi as Abi, data: log.data, topics: log.topics })
    return decoded.eventName === "Minted" || decoded.eventName === "Burned"
      ? Option.some(decoded as unknown as PassEvent)
      : Option.none()
  } catch {
    return Option.none()
  }
}
