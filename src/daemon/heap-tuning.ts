/**
 * How the daemon's V8 heap grows and shrinks (docs/performance.md, "Heap growth" and "After a
 * burst"): V8 flags `onionmc run` sets for its own process when it starts, each unless the node
 * command line gave that flag itself.
 *
 * A fixed old-generation growing factor instead of V8's dynamic one. V8 sets the next full
 * collection's limit to the live old generation times a factor it derives from how fast the
 * program allocates in the old generation compared with how fast it marks. A relay promotes almost
 * nothing (a privmsg's objects die young), and the limit V8 chose was tight: 63 MB for 39 MB live
 * with 10,000 peers, measured with `--trace-incremental-marking`. That leaves less headroom than
 * the young generation can promote at once, so V8 started incremental marking after every few
 * scavenges: a mark-compact every 0.5-1 s of a privmsg flood that freed 1-3 MB of the old
 * generation, each 8-14 ms of pause plus some 70 ms of marking on a helper thread. Twice the live
 * heap as the limit leaves that headroom.
 *
 * One collection, not up to three, when V8's memory reducer shrinks the heap after a burst. Some
 * 8 s after the allocation rate falls (a flood ended, a reconnect storm was answered), the reducer
 * runs full collections that give memory back; with 300 peers each paused the node 5-33 ms
 * (`--trace-gc`, "Mark-Compact (reduce)"), and every peer's messages waited that long. The first
 * gives back nearly everything: in the adversarial suite the later ones gave back 0-1.8 MB more
 * per case (once 8.3 MB), for pauses of 5-18 ms each.
 */
import v8 from 'node:v8';

/** The V8 flag that fixes the growing factor at `1 + percent / 100`. */
export const HEAP_GROWING_FLAG = '--heap-growing-percent';

/** The factor the daemon asks for: the limit is twice the live old generation. */
export const HEAP_GROWING_PERCENT = 100;

/** The V8 flag that makes the memory reducer run a single full collection. */
export const MEMORY_REDUCER_SINGLE_GC_FLAG = '--memory-reducer-single-gc';

/**
 * The heap growing flag string the daemon sets at start (with `v8.setFlagsFromString`), or
 * undefined when the process was started with its own `--heap-growing-percent` (or its underscore
 * spelling), which wins.
 *
 * @param execArgv the Node flags the process was started with (`process.execArgv`).
 */
export function heapGrowingFlag(execArgv: readonly string[]): string | undefined {
  const own = execArgv.some((arg) => /^--heap[-_]growing[-_]percent(=|$)/.test(arg));
  return own ? undefined : `${HEAP_GROWING_FLAG}=${String(HEAP_GROWING_PERCENT)}`;
}

/**
 * {@link MEMORY_REDUCER_SINGLE_GC_FLAG}, or undefined when the process was started with that flag
 * or its negation (`--no-memory-reducer-single-gc`, `--nomemory_reducer_single_gc`, ...), which
 * wins.
 *
 * @param execArgv the Node flags the process was started with (`process.execArgv`).
 */
export function memoryReducerFlag(execArgv: readonly string[]): string | undefined {
  const own = execArgv.some((arg) => /^--(no-?)?memory[-_]reducer[-_]single[-_]gc(=|$)/.test(arg));
  return own ? undefined : MEMORY_REDUCER_SINGLE_GC_FLAG;
}

/**
 * The V8 flags {@link applyDaemonV8Flags} sets: {@link heapGrowingFlag} and
 * {@link memoryReducerFlag}, those the command line did not give.
 *
 * @param execArgv the Node flags the process was started with (`process.execArgv`).
 */
export function daemonV8Flags(execArgv: readonly string[]): string[] {
  return [heapGrowingFlag(execArgv), memoryReducerFlag(execArgv)].filter(
    (flag): flag is string => flag !== undefined,
  );
}

/**
 * Sets {@link daemonV8Flags} for this process: what `onionmc run` does at start, before any peer
 * connects (V8 reads both whenever it uses them: the growing factor when it sets the next
 * collection's limit, the reducer's count when it plans its collections), and the benchmark's
 * onionmc process the same way.
 *
 * @returns the flags set; those the command line gave are left in place.
 */
export function applyDaemonV8Flags(): string[] {
  const flags = daemonV8Flags(process.execArgv);
  for (const flag of flags) v8.setFlagsFromString(flag);
  return flags;
}
