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
// - A cut never goes below ACCEPTED_FLOOR × what the shard got stored at the last reading:
//   with capacity throttles that is our share of the shard, and a deeper cut gives it away.
// - Throttles the rate does not cause: a cut is a bet that our rate is more than the shard
//   takes. Kinesis (a token bucket) then throttles a smaller share of our records at a lower
//   rate; a fault injector or a chaos proxy that throttles a share of entries at random does
//   not. So a reading (the throttled share of the shard's records over enough of them) is
//   compared with the highest one since the last comparison once we send TEST_RATIO of it or
//   less: when the share stayed (neither fell towards what a full shard predicts nor rose),
//   the cuts bought nothing, the rate goes back to the ceiling and the shard tolerates
//   throttles at about that share, paused like a fixed-rate shard but not slowed, until two
//   readings in a row rise clearly above it. Shares above MAX_TOLERATED are never tolerated.
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
/** A cut goes no lower than this share of what the shard accepted at the last reading. */
export const ACCEPTED_FLOOR = 0.9;
/** Sending at most this share of the previous reading is a test of the cuts. */
export const TEST_RATIO = 0.8;
/**
 * A reference share below this tells nothing: a shard that throttled next to nothing
 * before the cuts would, full or not, throttle next to nothing after them.
 */
export const MIN_TESTED = 0.03;
/** A throttled share above this is a full (or hot) shard, never tolerated. */
export const MAX_TOLERATED = 0.3;
/** A tolerated shard cuts again once its throttled share exceeds this × the tolerated one. */
export const TOLERANCE_FACTOR = 1.5;
/** ... plus this. */
export const TOLERANCE_MARGIN = 0.02;
/** Calls in a row that throttled the shard and stored nothing of it end a tolerance. */
export const FULL_IN_ROW = 3;
/** A reading above this × the ceiling spent a burst: no basis for a test. */
const BURST_READING = 1.05;
/** After a wrong tolerance, the next test waits this long, doubling on each wrong one. */
export const TEST_WAIT_MS = 4000;
export const MAX_TEST_WAIT_MS = 60_000;
/** Quiet longer than this grows no faster. */
const MAX_QUIET_MS = 10_000;

/** What a throttle did to the rate. */
export type ThrottleVerdict = "cut" | "stale" | "tolerated";

/** What the limiter knows when Kinesis throttles a shard. */
export interface ThrottleContext {
  /** When the throttled request was sent. */
  sentAt: number;
  /** The stream's recent share of throttled outcomes, 0 to 1. */
  pressure: number;
  /** The share of the shard limits the shard used lately; `Infinity` when unknown. */
  used: number;
  /** Calls in a row, this one included, that throttled the shard and stored none of it. */
  inRow?: number;
  /** The share of the shard limits Kinesis stored over the same span; 0 when unknown. */
  accepted?: number;
  /**
   * The throttled share of the shard's Kinesis records since the last reading that had
   * one, 0 to 1; `NaN` when too few outcomes tell.
   */
  throttledShare?: number;
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
  /** The last measured throttle: what the shard used and its throttled share then. */
  #measured: { used: number; share: number } | null = null;
  /** Whether the last reading while tolerating was above the tolerated share. */
  #highOnce = false;
  /** When the shard began to tolerate throttles. */
  #toleratedAt = -Infinity;
  /** No test before this time, and how long the next wait after a wrong test is. */
  #testAfter = -Infinity;
  #testWaitMs = TEST_WAIT_MS;
  /** The lowest rate a cut may reach: a share of what the shard accepted at the last reading. */
  #accepted = 0;
  /** The throttled share this shard tolerates, or `NaN` while it tolerates none. */
  #tolerated = NaN;

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

  /** The throttled share this shard tolerates as not caused by its rate; `NaN` if none. */
  get tolerated(): number {
    return this.#tolerated;
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
   *   previous cut, `"tolerated"` when the throttle is not one the rate causes.
   */
  throttled(now: number, context: ThrottleContext): ThrottleVerdict {
    if (context.sentAt < this.#lastCutAt) return "stale";
    const { used } = context;
    const share = context.throttledShare ?? NaN;
    const measured = !Number.isNaN(share);
    // What the shard accepted lately bounds every cut until the next reading; a reading
    // too thin to tell leaves no bound (an old one may no longer hold).
    if (Number.isFinite(used)) this.#accepted = ACCEPTED_FLOOR * (context.accepted ?? 0);
    if (this.#tolerates(now, share, used, context.inRow ?? 1)) return "tolerated";
    // The test compares with the highest reading since the last test, so it judges the
    // cuts between them together. A reading above the ceiling spent the burst of a full
    // bucket (the shard's, and often Kinesis' too): not a steady state to compare with.
    const reference = this.#measured;
    if (
      measured && used <= BURST_READING * this.#ceiling &&
      (reference === null || used >= reference.used)
    ) {
      this.#measured = { used, share };
    }
    const rate = Math.min(this.#rate, Math.max(used, this.#floor));
    const depth = CUT_BASE + CUT_PER_RATE * Math.min(rate, 1) +
      CUT_PER_PRESSURE * context.pressure;
    const cut = Math.min(MAX_CUT, depth + CUT_JITTER * (this.#random() - 0.5));
    this.#rate = Math.min(
      this.#ceiling,
      Math.max(this.#floor, this.#accepted, rate * (1 - cut)),
    );
    this.#lastCutAt = now;
    this.#grownAt = now;
    return "cut";
  }

  /**
   * Whether a throttle is one the rate does not cause: either the shard already tolerates
   * throttles at about this share, or this reading shows that the cuts since the previous
   * one did not lower the share. Then the rate goes back to the ceiling, as a fixed rate.
   */
  #tolerates(now: number, share: number, used: number, inRow: number): boolean {
    const tolerated = this.#tolerated;
    // Calls in a row in which the shard stored nothing of ours: a full shard, not a share of
    // records throttled at random (which leaves some stored in nearly every call).
    if (!Number.isNaN(tolerated) && inRow >= FULL_IN_ROW) return this.#endTolerance(now);
    if (!Number.isNaN(tolerated)) {
      // The tolerated share stays what the test measured: following higher shares would let
      // a shard that is full after all creep up to MAX_TOLERATED.
      if (Number.isNaN(share)) return true;
      // One high reading may be the lag of a rising rate (stored records are counted a
      // round trip after they were sent): it takes two in a row.
      if (share <= tolerated * TOLERANCE_FACTOR + TOLERANCE_MARGIN || !this.#highOnce) {
        this.#highOnce = share > tolerated * TOLERANCE_FACTOR + TOLERANCE_MARGIN;
        return true;
      }
      return this.#endTolerance(now);
    }
    const before = this.#measured;
    if (
      before === null || now < this.#testAfter || !(share <= MAX_TOLERATED) ||
      before.share < MIN_TESTED ||
      !(used <= TEST_RATIO * before.used)
    ) {
      return false;
    }
    // A full shard takes what it took before: at `used` instead of `before.used` its
    // throttled share falls to `full`. Throttles at random keep their share.
    const full = Math.max(0, 1 - (1 - before.share) * (before.used / used));
    // Throttles at random keep their share: up to the band a tolerating shard allows. A
    // share that rose while the rate fell says the shard got fuller (peers came).
    if (share > before.share * TOLERANCE_FACTOR + TOLERANCE_MARGIN) return false;
    if (share < (before.share + full) / 2) {
      // The cuts did lower the share: the shard is full, and this is the next reference.
      this.#measured = { used, share };
      return false;
    }
    this.#tolerated = Math.min(share, before.share);
    this.#toleratedAt = now;
    this.#measured = null;
    this.#rate = this.#ceiling;
    return true;
  }

  /**
   * Ends a tolerance that proved wrong: the next test waits twice as long, unless this
   * tolerance held for longer than its wait (then it was probably right, and the shard
   * changed since).
   *
   * @returns `false`, the throttle is one to cut for.
   */
  #endTolerance(now: number): false {
    this.#highOnce = false;
    const held = now - this.#toleratedAt;
    this.#testWaitMs = held >= this.#testWaitMs
      ? Math.max(TEST_WAIT_MS, this.#testWaitMs / 2)
      : Math.min(MAX_TEST_WAIT_MS, this.#testWaitMs * 2);
    this.#testAfter = now + this.#testWaitMs;
    this.#tolerated = NaN;
    this.#measured = null;
    return false;
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
    // Tolerated throttles are no congestion: a tolerating shard grows as if quiet since then.
    const quietMs = Number.isNaN(this.#tolerated)
      ? context.quietMs
      : Math.max(context.quietMs, now - this.#toleratedAt);
    const q = Math.min(quietMs, MAX_QUIET_MS) / 1000;
    const perSecond = GROWTH_BASE * rate + q * q * (GROWTH_ACCEL * rate + PROBE_ACCEL);
    this.#rate = Math.min(this.#ceiling, rate + (perSecond * elapsed) / 1000);
  }
}
