/**
 * One timer for a whole producer. Stages own {@linkcode Deadline} objects and move them
 * around instead of arming a timer per record or per add; the scheduler keeps them in a
 * min-heap and arms a single clock timer for the earliest.
 *
 * @module
 */

import type { Clock, TimerHandle } from "./clock.ts";

/** Something that runs when its time comes. */
export interface DeadlineTask {
  /**
   * Called once each time the deadline passes.
   *
   * @param now The clock's time when the deadline ran.
   */
  onDeadline(now: number): void;
}

/**
 * A reusable slot in the scheduler. A stage allocates one per thing that needs waking
 * (a shard buffer, a retry timer, a request timeout) and re-schedules it as often as it
 * likes; scheduling never allocates.
 */
export class Deadline {
  /** When the task should run (clock milliseconds); `Infinity` when not scheduled. */
  at: number = Infinity;
  /** @internal Position in the heap, or -1. */
  index = -1;
  /** @internal Tie-breaker, so equal times run in the order they were scheduled. */
  order = 0;
  /** What runs. */
  readonly task: DeadlineTask;

  /**
   * Creates an unscheduled deadline.
   *
   * @param task What runs when the deadline passes.
   */
  constructor(task: DeadlineTask) {
    this.task = task;
  }

  /** Whether the deadline is waiting in a scheduler. */
  get scheduled(): boolean {
    return this.index >= 0;
  }
}

/** Runs {@linkcode Deadline}s from one clock timer. */
export class Scheduler {
  readonly #clock: Clock;
  readonly #heap: Deadline[] = [];
  #order = 0;
  #timer: TimerHandle | undefined;
  #timerAt = Infinity;
  #persistent = false;
  #running = false;
  #closed = false;
  readonly #fire = (): void => this.#onTimer();

  /**
   * Creates a scheduler on `clock`.
   *
   * @param clock The clock that gives time and timers.
   */
  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** The clock this scheduler runs on. */
  get clock(): Clock {
    return this.#clock;
  }

  /** How many deadlines are waiting. */
  get size(): number {
    return this.#heap.length;
  }

  /**
   * Whether the armed timer keeps the process alive. The producer sets it while records
   * are outstanding, so an idle producer never holds a process open.
   */
  get persistent(): boolean {
    return this.#persistent;
  }

  set persistent(value: boolean) {
    if (value === this.#persistent) return;
    this.#persistent = value;
    if (this.#timer !== undefined) this.#clock.setPersistent(this.#timer, value);
  }

  /**
   * Schedules `deadline` to run at `at`, moving it if it was already scheduled.
   *
   * @param deadline The slot to schedule.
   * @param at Clock time in milliseconds.
   */
  schedule(deadline: Deadline, at: number): void {
    if (this.#closed) return;
    deadline.order = this.#order++;
    if (deadline.index >= 0) {
      const earlier = at < deadline.at;
      deadline.at = at;
      if (earlier) this.#up(deadline.index);
      else this.#down(deadline.index);
    } else {
      deadline.at = at;
      deadline.index = this.#heap.length;
      this.#heap.push(deadline);
      this.#up(deadline.index);
    }
    this.#arm();
  }

  /**
   * Schedules `deadline` at `at` unless it is already scheduled earlier.
   *
   * @param deadline The slot to schedule.
   * @param at Clock time in milliseconds.
   */
  scheduleNoLaterThan(deadline: Deadline, at: number): void {
    if (deadline.index < 0 || at < deadline.at) this.schedule(deadline, at);
  }

  /**
   * Removes `deadline` from the scheduler; an unscheduled deadline is ignored.
   *
   * @param deadline The slot to remove.
   */
  cancel(deadline: Deadline): void {
    const index = deadline.index;
    if (index < 0) return;
    const last = this.#heap.pop()!;
    deadline.index = -1;
    deadline.at = Infinity;
    if (last !== deadline) {
      this.#heap[index] = last;
      last.index = index;
      this.#down(index);
      this.#up(last.index);
    }
    // An empty heap keeps its armed timer: it fires once with nothing to do, which is far
    // cheaper than clearing and re-arming a timer every time one record comes and goes.
  }

  /**
   * Runs every deadline that is due now. Used by the fake clock in tests and by callers
   * that want due work done before they continue.
   */
  runDue(): void {
    if (this.#running) return;
    this.#running = true;
    try {
      const now = this.#clock.now();
      // A task may schedule more work for "now"; those run too, but a bounded number of
      // rounds keeps a task that always re-schedules itself at `now` from spinning.
      for (let round = 0; round < 64; round++) {
        const top = this.#heap[0];
        if (top === undefined || top.at > now) break;
        const due: Deadline[] = [];
        let next = this.#heap[0];
        while (next !== undefined && next.at <= now) {
          this.cancel(next);
          due.push(next);
          next = this.#heap[0];
        }
        for (const deadline of due) deadline.task.onDeadline(now);
      }
    } finally {
      this.#running = false;
      this.#arm();
    }
  }

  /** Cancels every deadline and disarms the timer; later calls to schedule are ignored. */
  close(): void {
    this.#closed = true;
    for (const deadline of this.#heap) {
      deadline.index = -1;
      deadline.at = Infinity;
    }
    this.#heap.length = 0;
    this.#disarm();
  }

  #onTimer(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    this.runDue();
  }

  #arm(): void {
    if (this.#running) return;
    const top = this.#heap[0];
    if (top === undefined) return;
    if (this.#timer !== undefined && this.#timerAt <= top.at) return;
    this.#disarm();
    const delay = Math.max(0, top.at - this.#clock.now());
    this.#timerAt = top.at;
    this.#timer = this.#clock.setTimer(this.#fire, delay);
    if (!this.#persistent) this.#clock.setPersistent(this.#timer, false);
  }

  #disarm(): void {
    if (this.#timer === undefined) return;
    this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  #less(a: Deadline, b: Deadline): boolean {
    return a.at < b.at || (a.at === b.at && a.order < b.order);
  }

  #up(index: number): void {
    const heap = this.#heap;
    const item = heap[index]!;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = heap[parentIndex]!;
      if (!this.#less(item, parent)) break;
      heap[index] = parent;
      parent.index = index;
      index = parentIndex;
    }
    heap[index] = item;
    item.index = index;
  }

  #down(index: number): void {
    const heap = this.#heap;
    const length = heap.length;
    const item = heap[index]!;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= length) break;
      const right = left + 1;
      let child = left;
      if (right < length && this.#less(heap[right]!, heap[left]!)) child = right;
      if (!this.#less(heap[child]!, item)) break;
      heap[index] = heap[child]!;
      heap[index]!.index = index;
      index = child;
    }
    heap[index] = item;
    item.index = index;
  }
}
