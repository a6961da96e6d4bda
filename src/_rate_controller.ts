// The adaptive send rate of one shard, as a share of Kinesis' per-shard limits (1 = 1000
// records/s and 1 MiB/s). Pure: it reads no clock and arms no timer; the limiter passes the
// time and what it knows of the stream with each observation. docs/fleet.md explains the
// scheme, the simulations behind its constants, and what they cost.
//
// - Cut: a throttle of a request sent after the previous cut lowers the rate by
//   CUT_BASE + CUT_PER_RATE × rate + CUT_PER_PRESSURE × pressure (jittered ±25%, at most
//   MAX_CUT), from the rate the shard actually used when that was lower (a rate nobody
//   used says nothing). `pressure` is the stream's recent share of throttled outcomes: a
//   fleet far over capacity cuts deep and converges in a second or two, a fleet near
//   capacity cuts gently. The rate-proportional part cuts a producer with a larger share
//   more, which pulls shares together. A throttle of a request sent before the previous
//   cut is the same congestion, already answered.
// - Growth: while records wait for tokens and Kinesis stores them, the rate grows per second
//   by GROWTH_BASE × rate + q² × (GROWTH_ACCEL × rate + PROBE_ACCEL), q being the seconds
//   since Kinesis last throttled any shard of the stream. Right after a throttle growth is
//   slow, so a crowded stream probes gently whatever the fleet's size; when the throttles
//   stop (peers left) it speeds up with q², so the survivors find the free capacity within
//   seconds. The additive PROBE_ACCEL part is the same for every producer, so a smaller
//   share gains on a larger one (the additive-increase argument of Chiu and Jain, 1989).
// - The rate stays between RATE_FLOOR (every shard keeps moving) and the ceiling
//   (`rateLimit`); until the first throttle it is the ceiling.

/** The lowest rate: 1% of the shard limits, 10 records/s and about 10 KiB/s. */
export const RATE_FLOOR = 0.01;
/** Growth per second in proportion to the rate, right after a throttle of the stream. */
export const GROWTH_BASE = 0.01;
/** Growth per second in proportion to the rate, per squared second of the stream's quiet. */
export const GROWTH_ACCEL = 0.2;
/** Growth per second in shares of the shard limit, per squared second of quiet. */
export const PROBE_ACCEL = 0.1;
/** The cut's parts: a base, one in proportion to the rate, one to the stream's pressure. */
export const CUT_BASE = 0.1;
export const CUT_PER_RATE = 0.1;
export const CUT_PER_PRESSURE = 0.5;
/** The cut's jitter: ±2.5 points, enough to keep producers out of step. */
export const CUT_JITTER = 0.05;
/** The deepest cut. */
export const MAX_CUT = 0.5;
/** Successes further apart than this count as this much time: an idle shard grows no faster. */
export const MAX_GROWTH_STEP_MS = 1000;
/** Quiet longer than this grows no faster. */
const MAX_QUIET_MS = 10_000;

/** What a throttle did to the rate. */
export type ThrottleVerdict = "cut" | "stale";

/** What the limiter knows when Kinesis throttles a shard. */
export interface ThrottleContext {
  /** When the throttled request was sent. */
  sentAt: number;
  /** The stream's recent share of throttled outcomes, 0 to 1. */
  pressure: number;
  /** The share of the shard limits the shard used lately; `Infinity` when unknown. */
  used: number;
}

/** What the limiter knows when Kinesis stores a record of a shard. */
export interface SuccessContext {
  /** Milliseconds since Kinesis last throttled any shard of the stream. */
  quietMs: number;
  /** Whether records of the shard are waiting for tokens (the rate is what limits it). */
  limited: boolean;
}

export class RateController {
  readonly #ceiling: number;
  readonly #floor: number;
  readonly #random: () => number;
  #rate: number;
  #lastCutAt = -Infinity;
  #grownAt = -Infinity;

  /**
   * @param ceiling The highest rate, `rateLimit / 100`.
   * @param random Jitter source in [0, 1).
   */
  constructor(ceiling: number, random: () => number) {
    this.#ceiling = ceiling;
    this.#floor = Math.min(RATE_FLOOR, ceiling);
    this.#random = random;
    this.#rate = ceiling;
  }

  /** The current rate, as a share of the shard limits. */
  get rate(): number {
    return this.#rate;
  }

  /**
   * Kinesis throttled a request to this shard.
   *
   * @param now Clock time.
   * @param context When the request left, the stream's pressure, the rate used.
   * @returns `"cut"` when the rate was lowered, `"stale"` when the request left before the
   *   previous cut.
   */
  throttled(now: number, context: ThrottleContext): ThrottleVerdict {
    if (context.sentAt < this.#lastCutAt) return "stale";
    const rate = Math.min(this.#rate, Math.max(context.used, this.#floor));
    const depth = CUT_BASE + CUT_PER_RATE * Math.min(rate, 1) +
      CUT_PER_PRESSURE * context.pressure;
    const cut = Math.min(MAX_CUT, depth + CUT_JITTER * (this.#random() - 0.5));
    this.#rate = Math.max(this.#floor, rate * (1 - cut));
    this.#lastCutAt = now;
    this.#grownAt = now;
    return "cut";
  }

  /**
   * Kinesis stored a record sent to this shard: the rate grows with the time passed.
   *
   * @param now Clock time.
   * @param context The stream's quiet time and whether the shard is rate-limited.
   */
  succeeded(now: number, context: SuccessContext): void {
    const elapsed = Math.min(MAX_GROWTH_STEP_MS, now - this.#grownAt);
    if (!(elapsed > 0)) return;
    this.#grownAt = now;
    const rate = this.#rate;
    if (rate >= this.#ceiling || !context.limited) return;
    const q = Math.min(context.quietMs, MAX_QUIET_MS) / 1000;
    const perSecond = GROWTH_BASE * rate + q * q * (GROWTH_ACCEL * rate + PROBE_ACCEL);
    this.#rate = Math.min(this.#ceiling, rate + (perSecond * elapsed) / 1000);
  }
}
