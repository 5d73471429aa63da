/**
 * Command-line options of the benchmark commands (bench/relay.ts, bench/table.ts, bench/verify.ts):
 * `node:util` `parseArgs` plus `--help`, which prints the command's usage, and a bad option
 * reported in one line with exit code 2 instead of a stack trace.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** The `options` part of a `parseArgs` configuration. */
export type BenchOptions = NonNullable<ParseArgsConfig['options']>;

/**
 * Parses `process.argv` against `options` (strict: unknown options and stray arguments are
 * errors). With `--help` (or `-h`) prints `usage` and exits 0; on a parse error prints one line
 * naming the error and the way to `--help`, and exits 2.
 *
 * @param command - the npm script, e.g. `npm run bench`, for the messages.
 * @param usage - the usage text, printed as it is.
 * @returns the parsed values, as `parseArgs` returns them.
 */
export function benchOptions<T extends BenchOptions>(
  command: string,
  usage: string,
  options: T,
): ReturnType<typeof parseArgs<{ options: T }>>['values'] {
  if (process.argv.slice(2).some((arg) => arg === '--help' || arg === '-h')) {
    process.stdout.write(`${usage.trim()}\n`);
    process.exit(0);
  }
  try {
    return parseArgs({ options }).values;
  } catch (err) {
    process.stderr.write(
      `${command}: ${err instanceof Error ? err.message : String(err)} (--help lists the options)\n`,
    );
    process.exit(2);
  }
}
