// The checks a constructor runs on its options, written once for the producer and the metrics
// manager, so a bad option is refused at the call with one message shape:
// `Cannot create <what> as '<option>' must be <rule>: current value is <value>`. A number out
// of range is a RangeError; a value of the wrong type (NaN included) is a TypeError.
// `cli.ts` reads the producer's messages back in that shape to name its own flags.

import { describeValue } from "./_describe.ts";

/** What a `logger` option must have. */
export const LOGGER_METHODS: readonly string[] = ["debug", "info", "warn", "error"];

/** The numbers a number option accepts. */
export interface NumberRange {
  readonly min: number;
  /** @default {unbounded} */
  readonly max?: number;
  /** Whole numbers only. */
  readonly integer?: boolean;
}

/** Which methods an object option must have, and what the message calls such an object. */
export interface MethodsRule {
  readonly methods: readonly string[];
  /** @default {"an object"} */
  readonly kind?: string;
}

/** The checks for one constructor's options, its name in every message. */
export class OptionChecks {
  readonly #subject: string;

  /** `subject` completes "Cannot create ...", such as `"producer"`. */
  constructor(subject: string) {
    this.#subject = subject;
  }

  /** Throws the error that names `name`, its `rule`, and the value it got. */
  fail(name: string, rule: string, value: unknown): never {
    const shown = typeof value === "string" ? `'${value}'` : describeValue(value);
    const outOfRange = typeof value === "number" && !Number.isNaN(value);
    throw new (outOfRange ? RangeError : TypeError)(
      `Cannot create ${this.#subject} as '${name}' must be ${rule}: current value is ${shown}`,
    );
  }

  /** A number within `range`. */
  number(name: string, value: unknown, range: NumberRange): number {
    const { min, integer = false } = range;
    const max = range.max ?? (integer ? Number.MAX_SAFE_INTEGER : Infinity);
    const valid = typeof value === "number" &&
      (integer ? Number.isInteger(value) : !Number.isNaN(value));
    if (!valid || value < min || value > max) {
      const kind = integer ? "an integer" : "a number";
      const unbounded = integer ? Number.MAX_SAFE_INTEGER : Infinity;
      this.fail(
        name,
        max === unbounded ? `${kind} of at least ${min}` : `${kind} between ${min} and ${max}`,
        value,
      );
    }
    return value as number;
  }

  /** A finite number above zero. */
  positive(name: string, value: unknown): number {
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
      this.fail(name, "a positive number", value);
    }
    return value;
  }

  /** `true` or `false`. */
  boolean(name: string, value: unknown): boolean {
    if (typeof value !== "boolean") this.fail(name, "a boolean", value);
    return value;
  }

  /** One of the `allowed` strings. */
  oneOf<T extends string>(name: string, value: unknown, allowed: { readonly of: readonly T[] }): T {
    if (typeof value !== "string" || !allowed.of.includes(value as T)) {
      this.fail(name, `one of ${allowed.of.map((item) => `'${item}'`).join(", ")}`, value);
    }
    return value as T;
  }

  /** An object (or function) with every method the rule lists. */
  methods<T>(name: string, value: T, rule: MethodsRule): T {
    if (!hasMethods(value, rule.methods)) {
      const list = rule.methods.map((method) => `${method}()`);
      const last = list.pop();
      const listed = list.length === 0 ? last : `${list.join(", ")} and ${last}`;
      this.fail(name, `${rule.kind ?? "an object"} with ${listed}`, value);
    }
    return value;
  }
}

function hasMethods(value: unknown, methods: readonly string[]): boolean {
  if (typeof value !== "object" && typeof value !== "function") return false;
  if (value === null) return false;
  const record = value as Record<string, unknown>;
  return methods.every((method) => typeof record[method] === "function");
}
