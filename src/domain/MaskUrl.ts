/**
 * RPC URLs often carry API keys (in user info, the query or a path segment): shown masked, never in full.
 */
const looksLikeKey = (segment: string) => segment.length >= 16 && /[0-9]/.test(segment) && /[a-zA-Z]/.test(segment)

export const maskUrl = (raw: string): string => {
  try {
    const url = new URL(raw)
    if (url.username !== "") url.username = "***"
    if (url.password !== "") url.password = "***"
    url.pathname = url.pathname.split("/").map((s) => (looksLikeKey(s) ? "***" : s)).join("/")
    for (const key of [...url.searchParams.keys()]) url.searchParams.set(key, "***")
    return url.toString().replace(/%2A%2A%2A/g, "***")
  } catch {
    return "***"
  }
}
