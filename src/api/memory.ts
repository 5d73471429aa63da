/**
 * The process's memory as the local API reports it (`GET /v1/info` `memory`, `POST /v1/gc`): what
 * `process.memoryUsage()` says, in bytes, and a full garbage collection when node exposes one
 * (`node --expose-gc`, or `NODE_OPTIONS=--expose-gc`). The heap after a full collection is the
 * figure that shows whether anything per connection is left behind after churn (issue: connection
 * caps; docs/limits.md "Memory bound"); RSS alone does not, since the allocator keeps freed pages.
 */
import { HttpError } from '../errors.js';

/** The process's memory, bytes (`process.memoryUsage()`). */
export interface MemoryFigures {
  /** Resident set size: what the system counts, allocator caches included. */
  readonly rssBytes: number;
  /** V8 heap reserved. */
  readonly heapTotalBytes: number;
  /** V8 heap in use (live objects plus garbage not collected yet). */
  readonly heapUsedBytes: number;
  /** Memory of C++ objects bound to JavaScript objects (Buffers included). */
  readonly externalBytes: number;
  /** ArrayBuffers and Buffers (part of `externalBytes`). */
  readonly arrayBuffersBytes: number;
}

/** The process's memory now. */
export function memoryFigures(): MemoryFigures {
  const m = process.memoryUsage();
  return {
    rssBytes: m.rss,
    heapTotalBytes: m.heapTotal,
    heapUsedBytes: m.heapUsed,
    externalBytes: m.external,
    arrayBuffersBytes: m.arrayBuffers,
  };
}

/** What a full collection did: memory before and after, and how long it took. */
export interface GcResult {
  readonly before: MemoryFigures;
  readonly after: MemoryFigures;
  /** Wall time of the collections, ms (the event loop is blocked that long). */
  readonly durationMs: number;
}

/**
 * The collector node exposes with `--expose-gc` (`globalThis.gc`), read at each call so that a
 * process given the flag later (`v8.setFlagsFromString` in tests) is seen; undefined without it.
 */
function exposedGc(): (() => void) | undefined {
  const gc = (globalThis as { gc?: unknown }).gc;
  return typeof gc === 'function' ? (gc as () => void) : undefined;
}

/** True when {@link fullGc} can run (node was started with `--expose-gc`). */
export function gcExposed(): boolean {
  return exposedGc() !== undefined;
}

/**
 * Runs two full (mark-compact) collections, the second for what the first only made unreachable
 * (weak references, finalizers), and reports memory before and after. Blocks the event loop for
 * the collections (a few ms for a heap of tens of MB).
 * @throws HttpError 501 `ERR_API` when node was not started with `--expose-gc`.
 */
export function fullGc(): GcResult {
  const gc = exposedGc();
  if (gc === undefined)
    throw new HttpError(
      501,
      'ERR_API',
      'garbage collection is not exposed: start node with --expose-gc (or NODE_OPTIONS=--expose-gc)',
    );
  const before = memoryFigures();
  const started = performance.now();
  gc();
  gc();
  const durationMs = performance.now() - started;
  return { before, after: memoryFigures(), durationMs };
}
