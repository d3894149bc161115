import { Config } from "effect"

/** An integer setting with its default, refused at start outside [min, max] (a 0 or a typo never reaches a loop). */
export const intBetween = (name: string, fallback: number, min: number, max: number) =>
  Config.integer(name).pipe(
    Config.validate({ message: `${name} must be an integer from ${min} to ${max}`, validation: (n) => n >= min && n <= max }),
    Config.withDefault(fallback)
  )
