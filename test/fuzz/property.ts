/**
 * Shared machinery of the fuzz properties (issue 12 item 4): a property is a fast-check property
 * with a full run count; `npm run fuzz` (test/fuzz/main.ts) runs every property with its full
 * count, `npm test` runs each one scaled down by {@link fuzzScale} (test/fuzz/*.test.ts).
 *
 * The invariant checked everywhere: a parser given bytes from outside either returns a value or
 * throws one of the project's typed errors (src/errors.ts) with an expected code; anything else
 * (TypeError, RangeError, a SyntaxError from JSON.parse, a hang) is a failure.
 */
import fc from 'fast-check';
import { OnionmcError, type ErrorCode } from '../../src/errors.js';

/** One fuzz property: its name, its full run count and how to check it. */
export interface FuzzProperty {
  /** `area: what is checked`, printed by the runner. */
  readonly name: string;
  /** Runs in `npm run fuzz`; scaled by {@link fuzzScale} in `npm test`. */
  readonly runs: number;
  /** Builds the fast-check property (sync or async); called once per check. */
  readonly property: () => fc.IRawProperty<never>;
  /** Set up before the checks and torn down after (loopback servers, daemons). */
  readonly around?: <T>(body: () => Promise<T>) => Promise<T>;
}

/** Declares a property; the generic keeps the arbitraries' types inside `property`. */
export function fuzzProperty<Ts>(p: {
  name: string;
  runs: number;
  property: () => fc.IRawProperty<Ts>;
  around?: <T>(body: () => Promise<T>) => Promise<T>;
}): FuzzProperty {
  return p as unknown as FuzzProperty;
}

/** Default share of the full run counts that `npm test` runs: keeps the whole share short. */
export const DEFAULT_CI_SCALE = 0.005;

/**
 * The scale factor of the run counts: env `FUZZ_SCALE` (a positive number; `1` gives the full
 * counts of `npm run fuzz`), else {@link DEFAULT_CI_SCALE}.
 */
export function fuzzScale(): number {
  const raw = process.env.FUZZ_SCALE;
  if (raw === undefined || raw === '') return DEFAULT_CI_SCALE;
  const scale = Number(raw);
  if (!(scale > 0)) throw new Error(`FUZZ_SCALE must be a positive number, got ${raw}`);
  return scale;
}

/**
 * Time, ms, that one property of the CI share (the vitest files of test/fuzz) may take: its runs
 * stop there, counted as run so far, and the property passes unless a case failed. The share is
 * bounded in time as well as in count, however slow the machine (the whole share ran in some
 * 10 s here, 20 s at most under load); vitest's 20 s per test stays far off.
 */
export const CI_PROPERTY_TIME_LIMIT_MS = 5_000;

/** Runs of `p` at `scale`: at least 10, so every property is exercised in CI. */
export function scaledRuns(p: FuzzProperty, scale: number): number {
  return Math.max(10, Math.round(p.runs * scale));
}

/**
 * Checks `p` with `numRuns` cases, or as many as `timeLimitMs` allows (fast-check's
 * `interruptAfterTimeLimit`: an interrupted run is not a failure). Resolves with the number of
 * cases run.
 * @throws Error with fast-check's report (seed, path, counterexample) when the property fails.
 */
export async function checkProperty(
  p: FuzzProperty,
  numRuns: number,
  seed?: number,
  timeLimitMs?: number,
): Promise<number> {
  const run = async (): Promise<number> => {
    const details = await fc.check(p.property(), {
      numRuns,
      ...(seed !== undefined ? { seed } : {}),
      ...(timeLimitMs !== undefined
        ? { interruptAfterTimeLimit: timeLimitMs, markInterruptAsFailure: false }
        : {}),
    });
    if (details.failed) {
      throw new Error(`fuzz property "${p.name}" failed\n${fc.defaultReportMessage(details)}`);
    }
    return details.numRuns;
  };
  return p.around !== undefined ? p.around(run) : run();
}

/** Thrown by {@link onlyTyped} when a parser threw something other than an allowed typed error. */
export class UnexpectedThrow extends Error {
  constructor(what: string, err: unknown) {
    const shown = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    super(`${what} threw ${shown}`, { cause: err });
  }
}

/**
 * Calls `fn`; returns `{ok: true, value}`, or `{ok: false, error}` when it threw an
 * {@link OnionmcError} whose code is in `codes`.
 * @throws UnexpectedThrow for any other throw.
 */
export function onlyTyped<T>(
  what: string,
  codes: readonly ErrorCode[],
  fn: () => T,
): { ok: true; value: T } | { ok: false; error: OnionmcError } {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    if (err instanceof OnionmcError && codes.includes(err.code)) return { ok: false, error: err };
    throw new UnexpectedThrow(what, err);
  }
}

/** Any UTF-16 string: lone surrogates included (peer text decoded from JSON can hold them). */
export function utf16String(constraints: { minLength?: number; maxLength?: number } = {}) {
  return fc.string({
    unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
    ...constraints,
  });
}

/** Well-formed Unicode text (no lone surrogates): what survives a UTF-8 round trip. */
export function unicodeString(constraints: { minLength?: number; maxLength?: number } = {}) {
  return fc.string({ unit: 'binary', ...constraints });
}

/** Splits `bytes` at the given cut points (any numbers; taken modulo the length, sorted). */
export function splitAt(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  if (bytes.length === 0) return [bytes];
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const p of points) {
    out.push(bytes.subarray(from, p));
    from = p;
  }
  out.push(bytes.subarray(from));
  return out;
}
