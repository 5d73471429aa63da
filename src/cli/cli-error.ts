/**
 * The command line's own failure and the root check every command that creates files makes
 * (`run`, `directory init`, `send`, `joinmarketd`).
 */
import { OnionmcError } from '../errors.js';
import { EXIT } from './exit-codes.js';

/** A command-line failure (code `ERR_CLI`) with its exit code and one line for stderr. */
export class CliError extends OnionmcError {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super('ERR_CLI', message);
  }
}

/** The environment variable that allows running as root, like `--allow-root`. */
export const ALLOW_ROOT_ENV = 'ONIONMC_ALLOW_ROOT';

/**
 * Refuses uid 0 unless allowed: a node needs no privilege, and what it creates (keys, sockets)
 * would belong to root.
 * @throws CliError exit 2 saying why and what to do.
 */
export function refuseRoot(allowRoot: boolean | undefined): void {
  if (process.getuid?.() !== 0) return;
  if (allowRoot === true || process.env[ALLOW_ROOT_ENV] === '1') return;
  throw new CliError(
    EXIT.USAGE,
    `refusing to run as root: onionmc needs no privileges and would create root-owned keys and sockets; run it as a dedicated user (adduser --system --group onionmc; the systemd units in systemd/ do), or pass --allow-root (or ${ALLOW_ROOT_ENV}=1) in a container or CI`,
  );
}
