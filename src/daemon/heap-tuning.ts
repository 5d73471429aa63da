/**
 * How the daemon's V8 heap grows (docs/performance.md, "Heap growth"): a fixed old-generation
 * growing factor instead of V8's dynamic one.
 *
 * V8 sets the next full collection's limit to the live old generation times a factor it derives
 * from how fast the program allocates in the old generation compared with how fast it marks. A
 * relay promotes almost nothing (a privmsg's objects die young), and the limit V8 chose was tight:
 * 63 MB for 39 MB live with 10,000 peers, measured with `--trace-incremental-marking`. That leaves
 * less headroom than the young generation can promote at once, so V8 started incremental marking
 * after every few scavenges: a mark-compact every 0.5-1 s of a privmsg flood that freed 1-3 MB of
 * the old generation, each 8-14 ms of pause plus some 70 ms of marking on a helper thread. Twice
 * the live heap as the limit leaves that headroom.
 */
import v8 from 'node:v8';

/** The V8 flag that fixes the growing factor at `1 + percent / 100`. */
export const HEAP_GROWING_FLAG = '--heap-growing-percent';

/** The factor the daemon asks for: the limit is twice the live old generation. */
export const HEAP_GROWING_PERCENT = 100;

/**
 * The V8 flag string the daemon sets at start (with `v8.setFlagsFromString`), or undefined when
 * the process was started with its own `--heap-growing-percent` (or its underscore spelling),
 * which wins.
 *
 * @param execArgv the Node flags the process was started with (`process.execArgv`).
 */
export function heapGrowingFlag(execArgv: readonly string[]): string | undefined {
  const own = execArgv.some((arg) => /^--heap[-_]growing[-_]percent(=|$)/.test(arg));
  return own ? undefined : `${HEAP_GROWING_FLAG}=${String(HEAP_GROWING_PERCENT)}`;
}

/**
 * Sets {@link heapGrowingFlag}'s flag for this process, unless its node command line gave one:
 * what `onionmc run` does at start, before any peer connects (V8 reads the flag whenever it sets
 * the next collection's limit), and the benchmark's onionmc process the same way.
 *
 * @returns the flag set, or undefined when the command line's own was left in place.
 */
export function applyHeapGrowingFlag(): string | undefined {
  const flag = heapGrowingFlag(process.execArgv);
  if (flag !== undefined) v8.setFlagsFromString(flag);
  return flag;
}
