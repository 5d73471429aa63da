/**
 * Waiting for a condition that is only visible by asking (a node's API coming up, a peer showing
 * in a listing), with a deadline. Used by the demo program and the tests.
 */
import { OnionmcError } from '../errors.js';

/**
 * Polls `check` until it returns a value other than undefined, or throws `ERR_TIMEOUT` naming
 * `what` after `timeoutMs` (ms); `intervalMs` between checks.
 * @throws OnionmcError `ERR_TIMEOUT`, with the last error `check` threw, if any.
 */
export async function pollUntil<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const detail = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new OnionmcError(
        'ERR_TIMEOUT',
        `timed out after ${timeoutMs} ms waiting for ${what}${detail}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
