// The one place in the core that knows how runtimes differ: Deno exposes
// `Deno.refTimer`/`Deno.unrefTimer` for numeric timer ids, while Bun and Node return
// timer objects with `ref()`/`unref()`. Web APIs have no way to say that a timer should
// not keep the process alive, so we feature-detect both shapes and do nothing elsewhere.

interface RefableTimer {
  ref(): unknown;
  unref(): unknown;
}

interface DenoTimerApi {
  refTimer(id: number): void;
  unrefTimer(id: number): void;
}

const denoApi: DenoTimerApi | undefined = (() => {
  const candidate = (globalThis as { Deno?: Partial<DenoTimerApi> }).Deno;
  return typeof candidate?.unrefTimer === "function" && typeof candidate.refTimer === "function"
    ? candidate as DenoTimerApi
    : undefined;
})();

function isRefable(handle: unknown): handle is RefableTimer {
  return typeof handle === "object" && handle !== null &&
    typeof (handle as RefableTimer).unref === "function";
}

/** Lets the process exit while `handle` is pending. */
export function unrefTimer(handle: unknown): void {
  if (isRefable(handle)) handle.unref();
  else if (denoApi !== undefined && typeof handle === "number") denoApi.unrefTimer(handle);
}

/** Keeps the process alive until `handle` fires. */
export function refTimer(handle: unknown): void {
  if (isRefable(handle)) handle.ref();
  else if (denoApi !== undefined && typeof handle === "number") denoApi.refTimer(handle);
}
