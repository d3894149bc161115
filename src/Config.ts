import { Config, Schema } from "effect"

/** A JSON-valued environment variable decoded with a Schema; errors name the variable. */
export const jsonConfig = <A, I>(name: string, schema: Schema.Schema<A, I>) =>
  Schema.Config(name, Schema.parseJson(schema))

export const PortConfig = Config.port("PORT").pipe(Config.withDefault(8000))
