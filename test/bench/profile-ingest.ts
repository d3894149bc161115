import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { isolatedEnv, serve } from "../smoke/harness.ts"
import { ingest } from "./ingest.ts"

const entry = process.argv[2]
Effect.gen(function*() {
  const env = yield* isolatedEnv
  const s = yield* serve({ ...env, BILLING_ROLES: "api" }, ["--cpu-prof", "--cpu-prof-dir=/tmp/prof"], entry)
  const f = yield* ingest(s.baseUrl, s.pid, 50, 8)
  console.log(JSON.stringify(f))
}).pipe(Effect.scoped, NodeRuntime.runMain)
