/**
 * `onionmc directory init`: creates (or reads) the persistent onion key in hidden_service_dir and
 * prints the onion address and the `directory_nodes` line, before the first start (issue: a
 * directory node keeps one address without JoinMarket's run-once-and-read-the-log bootstrap).
 */
import { loadConfig } from '../config/config.js';
import { ConfigError } from '../errors.js';
import { loadOrCreateOnionKey } from '../tor/onion-key.js';
import { ONION_VIRTUAL_PORT } from '../wire/location.js';

/** Runs the command; `print` receives each output line. Returns the exit code. */
export async function runDirectoryInit(
  configFile: string,
  print: (line: string) => void,
): Promise<number> {
  // The first step of a directory node: its own address is not known yet, so directory_nodes may
  // be empty or missing.
  const config = await loadConfig(configFile, { requireDirectoryNodes: false });
  if (config.hiddenServiceDir === undefined) {
    throw new ConfigError([
      `${config.file}: [${config.section}] hidden_service_dir = "": a directory node needs a folder for its persistent onion key, e.g. hidden_service_dir = /var/lib/onionmc/directory`,
    ]);
  }
  const key = await loadOrCreateOnionKey(config.hiddenServiceDir);
  print(`${key.created ? 'created' : 'found'} onion key in ${config.hiddenServiceDir}`);
  print(`onion address: ${key.onionAddress}`);
  print("put this line in the [MESSAGING:onion] section of the directory node's config:");
  print(`directory_nodes = ${key.onionAddress}:${ONION_VIRTUAL_PORT}`);
  return 0;
}
