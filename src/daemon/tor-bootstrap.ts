/**
 * Waits for tor to finish bootstrapping before an onion service is asked for, so that a slow tor
 * start is visible (the percentage in `/v1/info` and in the logs) instead of a silent wait for the
 * descriptor upload. Reads `GETINFO status/bootstrap-phase` (Tor control-spec §3.9, "status/
 * bootstrap-phase": `NOTICE BOOTSTRAP PROGRESS=45 TAG=... SUMMARY="..."`).
 */
import type { Endpoint } from '../config/config.js';
import { OnionmcError } from '../errors.js';
import type { Logger } from '../log.js';
import { TorControlClient } from '../tor/control-client.js';

/** How often the bootstrap phase is asked for while tor is below 100 %, ms. Our choice. */
export const BOOTSTRAP_POLL_MS = 1_000;

/** One reading of tor's bootstrap phase. */
export interface BootstrapPhase {
  /** 0..100. */
  readonly progress: number;
  /** Tor's own words, e.g. `Loading relay descriptors`; '' when absent. */
  readonly summary: string;
}

/**
 * Parses a `status/bootstrap-phase` value.
 * @returns the phase, or undefined when the text carries no `PROGRESS=<n>`.
 */
export function parseBootstrapPhase(text: string): BootstrapPhase | undefined {
  const progress = /\bPROGRESS=(\d{1,3})\b/.exec(text)?.[1];
  if (progress === undefined) return undefined;
  const summary = /\bSUMMARY="((?:[^"\\]|\\.)*)"/.exec(text)?.[1] ?? '';
  return { progress: Math.min(100, Number(progress)), summary };
}

/** Options of {@link waitForTorBootstrap}. */
export interface WaitForTorBootstrapOptions {
  readonly control: Endpoint;
  readonly password: string | undefined;
  readonly logger: Logger;
  /** Aborts the wait (the daemon stopping): rejects with the signal's reason. */
  readonly signal: AbortSignal;
  /** Called with every reading, including the last (100 %). */
  readonly onPhase: (phase: BootstrapPhase) => void;
  /** Called with tor's version as soon as it is known. */
  readonly onVersion?: (version: string) => void;
  /** Poll interval, ms; default {@link BOOTSTRAP_POLL_MS}. */
  readonly pollMs?: number;
}

/**
 * Connects to tor's control port, authenticates, and polls the bootstrap phase until 100 %.
 * @returns tor's version (`GETINFO version`).
 * @throws TorControlError as {@link TorControlClient.connect} and `authenticate` throw them
 *   (unreachable control port, refused authentication); the signal's reason when aborted.
 */
export async function waitForTorBootstrap(options: WaitForTorBootstrapOptions): Promise<string> {
  const { signal } = options;
  const client = await TorControlClient.connect(options.control, {
    logger: options.logger,
    signal,
  });
  const onAbort = (): void => {
    client.destroy();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    await client.authenticate(options.password !== undefined ? { password: options.password } : {});
    const version = await client.getVersion();
    options.onVersion?.(version);
    for (;;) {
      signal.throwIfAborted();
      const phase = parseBootstrapPhase(await client.getInfo('status/bootstrap-phase'));
      if (phase === undefined)
        throw new OnionmcError(
          'ERR_TOR_CONTROL',
          'tor answered status/bootstrap-phase without PROGRESS',
        );
      options.onPhase(phase);
      if (phase.progress >= 100) return version;
      await delay(options.pollMs ?? BOOTSTRAP_POLL_MS, signal);
    }
  } catch (err) {
    signal.throwIfAborted();
    throw err;
  } finally {
    signal.removeEventListener('abort', onAbort);
    await client.close();
  }
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
