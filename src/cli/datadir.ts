/**
 * The data directory, as JoinMarket has it: `--datadir DIR` (default `~/.joinmarket`) holds
 * `joinmarket.cfg` and onionmc's own state, the API socket `onionmc.sock`. `--config FILE`
 * overrides the configuration file; `--api` or the config key `api` override the socket.
 */
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** JoinMarket's default data directory name, in the home folder. */
export const DEFAULT_DATADIR_NAME = '.joinmarket';
/** The configuration file name inside the data directory (JoinMarket's). */
export const CONFIG_FILE_NAME = 'joinmarket.cfg';
/** The API socket's name inside the data directory. */
export const API_SOCKET_NAME = 'onionmc.sock';

/** The data directory: `datadir` made absolute, or `~/.joinmarket`. */
export function resolveDatadir(datadir: string | undefined): string {
  return path.resolve(datadir ?? path.join(os.homedir(), DEFAULT_DATADIR_NAME));
}

/** The configuration file: `config` as given, or `<datadir>/joinmarket.cfg`. */
export function resolveConfigFile(datadir: string, config: string | undefined): string {
  return config ?? path.join(datadir, CONFIG_FILE_NAME);
}

/** `<datadir>/onionmc.sock`. */
export function defaultApiSocket(datadir: string): string {
  return path.join(datadir, API_SOCKET_NAME);
}

/** Creates the data directory (mode 0700, as JoinMarket's) when it is missing. */
export async function ensureDatadir(datadir: string): Promise<void> {
  await mkdir(datadir, { recursive: true, mode: 0o700 });
}
