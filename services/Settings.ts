import { Config, Duration } from "effect"

/** An integer setting with its default, refused at start outside [min, max] (a 0 or a typo never reaches a loop). */
export const intBetween = (name: string, fallback: number, min: number, max: number) =>
  Config.integer(name).pipe(
    Config.validate({ message: `${name} must be an integer from ${min} to ${max}`, validation: (n) => n >= min && n <= max }),
    Config.withDefault(fallback)
  )

/** A duration setting with its default, refused at start outside [min, max]. */
export const durationBetween = (name: string, fallback: Duration.DurationInput, min: Duration.DurationInput, max: Duration.DurationInput) =>
  Config.duration(name).pipe(
    Config.validate({
      message: `${name} must be from ${Duration.format(min)} to ${Duration.format(max)}`,
      validation: (d) => Duration.between(d, { minimum: min, maximum: max })
    }),
    Config.withDefault(Duration.decode(fallback))
  )
