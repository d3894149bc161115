import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as OpenApi from "@effect/platform/OpenApi"
import { Effect } from "effect"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"

const require = createRequire(import.meta.url)

/**
 * Scalar's standalone script as @effect/platform ships it (pinned): 6 MB that `HttpApiScalar` keeps in memory twice
 * (module source and string) from start, so here it is loaded by the first request for it.
 */
const loadScalar = Effect.sync(() => {
  const file = join(dirname(require.resolve("@effect/platform/HttpApiScalar")), "internal", "httpApiScalar.js")
  const loaded: unknown = require(file)
  if (typeof loaded !== "object" || loaded === null || !("javascript" in loaded) || typeof loaded.javascript !== "string") {
    return Effect.dieMessage(`no Scalar script in ${file}`)
  }
  return Effect.succeed(loaded.javascript)
}).pipe(Effect.flatten)

/** JSON inside a <script> block: nothing in it may close the block or end a JS string. */
const scriptJson = (value: unknown) =>
  JSON.stringify(value).replace(/</g, "\\u003c").replace(/[\u2028\u2029]/g, (c) => (c === "\u2028" ? "\\u2028" : "\\u2029"))
const escapeHtml = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

/** `GET /docs`: the API reference (Scalar) over the OpenAPI document of the HttpApi; its script at `/docs/scalar.js`. */
export const DocsLive = HttpApiBuilder.Router.use((router) =>
  Effect.gen(function*() {
    const { api } = yield* HttpApi.Api
    const spec = OpenApi.fromApi(api)
    const page = HttpServerResponse.html(`<!doctype html>
<html>
  <head>
    <meta charset="utf-8" />
    <title>${escapeHtml(spec.info.title)}</title>
    <meta name="viewport" content="width=device-width, initial-scale=1" />
  </head>
  <body>
    <script id="api-reference" type="application/json">${scriptJson(spec)}</script>
    <script>document.getElementById('api-reference').dataset.configuration = JSON.stringify({ "_integration": "html" })</script>
    <script src="/docs/scalar.js"></script>
  </body>
</html>`)
    const script = yield* Effect.cached(loadScalar)
    yield* router.get("/docs", Effect.succeed(page))
    yield* router.get(
      "/docs/scalar.js",
      Effect.map(script, (js) => HttpServerResponse.text(js, { contentType: "application/javascript; charset=utf-8" }))
    )
  })
)
