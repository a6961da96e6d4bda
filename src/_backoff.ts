// Exponential backoff with "equal jitter" (half of the wait fixed, half random), the one
// copy the retrier, the limiter and the vendor sinks use: clients that failed together
// spread out instead of retrying together.

/** How a wait grows with consecutive failures. */
export interface BackoffPolicy {
  /** The ceiling after the first failure, in milliseconds. */
  readonly firstMs: number;
  /** The largest ceiling, in milliseconds. */
  readonly maxMs: number;
  /** How much the ceiling grows per failure. */
  readonly factor: number;
}

/** The wait ceiling after `failures` (1 or more) failures in a row. */
export function backoffCeiling(policy: BackoffPolicy, failures: number): number {
  // The exponent is capped so that a long run of failures cannot overflow to Infinity.
  const grown = policy.firstMs * policy.factor ** Math.min(Math.max(0, failures - 1), 64);
  return Math.min(policy.maxMs, grown);
}

/** A wait between half of `ceiling` and all of it: half fixed, half from `random` in [0, 1). */
export function equalJitter(ceiling: number, random: () => number): number {
  return ceiling / 2 + (ceiling / 2) * random();
}

/** The jittered wait after `failures` failures in a row. */
export function backoff(policy: BackoffPolicy, failures: number, random: () => number): number {
  return equalJitter(backoffCeiling(policy, failures), random);
}
