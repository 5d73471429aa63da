/**
 * Prerequisites of the real-Tor suites: root (to create network namespaces with `ip netns`) and
 * the `tor`, `tor-gencert` and `ip` programs (Debian packages `tor` and `iproute2`).
 *
 * Outside CI a missing prerequisite skips the suite with the reason in its name; with
 * `CI=true` it fails, so a CI image that lost tor cannot pass silently.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { describe, it } from 'vitest';

/** Programs the private Tor network needs, looked up in PATH and the sbin directories. */
const REQUIRED_PROGRAMS: readonly string[] = ['tor', 'tor-gencert', 'ip'];

/** Directories searched besides PATH: root's tools live in sbin, which PATH may lack. */
const EXTRA_PROGRAM_DIRS: readonly string[] = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];

/** Result of {@link requireRootAndTor}: `ok`, or the reason the real-Tor suite cannot run. */
export type TorPrerequisites = { ok: true } | { ok: false; reason: string };

/** True when CI is set to `true` (missing prerequisites then fail instead of skipping). */
function isCi(): boolean {
  return process.env.CI === 'true';
}

/** Absolute path of an executable named `program`, or undefined. */
export function findProgram(program: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), ...EXTRA_PROGRAM_DIRS];
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = join(dir, program);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here: try the next directory
    }
  }
  return undefined;
}

/** Checks root and the programs without throwing. */
function checkRootAndTor(): TorPrerequisites {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push('not root (network namespaces need root)');
  const missing = REQUIRED_PROGRAMS.filter((program) => findProgram(program) === undefined);
  if (missing.length > 0) {
    problems.push(`missing ${missing.join(', ')} (apt-get install tor iproute2)`);
  }
  return problems.length === 0 ? { ok: true } : { ok: false, reason: problems.join('; ') };
}

/**
 * Checks that the real-Tor suite can run: root and `tor`, `tor-gencert`, `ip` installed.
 *
 * @returns `{ ok: true }`, or `{ ok: false, reason }` to skip with (outside CI).
 * @throws {Error} when a prerequisite is missing and `process.env.CI === 'true'`.
 */
export function requireRootAndTor(): TorPrerequisites {
  const result = checkRootAndTor();
  if (!result.ok && isCi()) {
    throw new Error(`real-Tor tests cannot run in CI: ${result.reason}`);
  }
  return result;
}

/**
 * `describe` for suites that need root and tor. When a prerequisite is missing the suite is
 * skipped and its name says why (`name [skipped: not root ...]`); with `CI=true` it is replaced
 * by one failing test that gives the reason.
 */
export function describeWithTor(name: string, fn: () => void): void {
  const result = checkRootAndTor();
  if (result.ok) {
    describe(name, fn);
    return;
  }
  if (isCi()) {
    describe(name, () => {
      it('has its prerequisites (root, tor, tor-gencert, ip)', () => {
        throw new Error(`real-Tor tests cannot run in CI: ${result.reason}`);
      });
    });
    return;
  }
  console.warn(`skipping "${name}": ${result.reason}`);
  describe.skipIf(true)(`${name} [skipped: ${result.reason}]`, fn);
}
