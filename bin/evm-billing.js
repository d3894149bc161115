#!/usr/bin/env node
// Loads the TypeScript entry point in this process through tsx, so signals reach the program directly.
import { register } from "tsx/esm/api"

register()
await import("../src/main.ts")
