/**
 * Audit actors: people are their token's subject; the service's own fibers write as `system:<name>`. That prefix is
 * reserved, so no token can act (or appear in the audit trail) as the payment processor or the scheduler.
 */
export const SERVICE_ACTOR_PREFIX = "system:"

/** The actor id a service fiber writes audit rows with. */
export const serviceActor = (name: string) => `${SERVICE_ACTOR_PREFIX}${name}`

/**
 * Whether `id` reads as a service actor: compared case-insensitively after NFKC folding, so `SYSTEM:` or full-width
 * look-alikes cannot pass for one in the trail either.
 */
export const isServiceActor = (id: string) => id.normalize("NFKC").toLowerCase().startsWith(SERVICE_ACTOR_PREFIX)
