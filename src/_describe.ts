// How error messages show a value the caller got wrong: the one copy every module uses,
// so messages name a bad argument the same way everywhere.

/** `"null"` or the value's `typeof`: for "must be a string: got number". */
export function kindOf(value: unknown): string {
  return value === null ? "null" : typeof value;
}

/** Like {@linkcode kindOf}, but an object shows its class: for "got Array". */
export function typeName(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") return value.constructor?.name ?? "object";
  return typeof value;
}

/**
 * A short description of an option's value: a string quoted, another primitive as is, a
 * function or object by what it is (its contents could be large or secret).
 */
export function describeValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (value === null || typeof value !== "object" && typeof value !== "function") {
    return String(value);
  }
  return typeof value === "function" ? "a function" : "an object without the required methods";
}

/** An error as `Name: message`, anything else as a string. */
export function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
