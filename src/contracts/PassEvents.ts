import { Option } from "effect"
import { type Abi, decodeEventLog, type Log, toEventSelector } from "viem"

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

// One ABI word each: what a non-indexed argument of a pass event may be for the shape check to stand in for decoding.
const ONE_WORD = /^(address|bool|bytes([1-9]|[12]\d|3[0-2])|u?int\d*)$/

/**
 * Which pass event a log is, without decoding its arguments: the event its first topic names in `abi`, with that
 * event's topics and data words at least, which is what decoding checks. Built once per ABI; an event with
 * arguments wider than a word is decoded in full. For the listener, which publishes only the name.
 */
export const passEventNamer = (abi: ReadonlyArray<unknown>) => {
  const shapes = new Map<string, { readonly name: PassEvent["eventName"]; readonly topics: number; readonly words: number } | "decode">()
  for (const item of abi as Abi) {
    if (item.type !== "event" || item.anonymous === true || (item.name !== "Minted" && item.name !== "Burned")) continue
    const data = item.inputs.filter((i) => i.indexed !== true)
    shapes.set(
      toEventSelector(item),
      data.every((i) => ONE_WORD.test(i.type))
        ? { name: item.name, topics: 1 + item.inputs.length - data.length, words: data.length }
        : "decode"
    )
  }
  return (log: Pick<Log, "data" | "topics">): Option.Option<PassEvent["eventName"]> => {
    const shape = log.topics[0] === undefined ? undefined : shapes.get(log.topics[0])
    if (shape === undefined) return Option.none()
    if (shape === "decode") return Option.map(decodePassEvent(abi, log), (e) => e.eventName)
    return log.topics.length >= shape.topics && log.data.length >= 2 + 64 * shape.words ? Option.some(shape.name) : Option.none()
  }
}
