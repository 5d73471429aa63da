/**
 * `onionmc config check`: loads the configuration as `run` would, prints the effective
 * `[MESSAGING:onion]` values (secrets hidden) and the role they give, and reports every problem.
 * Reads files only: it never creates a key, a folder or a socket, and never contacts tor.
 */
import { formatEndpoint } from '../tor/endpoint.js';
import type { OnionmcConfig } from '../config/config.js';
import { isDirectoryFor, testingModeLocation } from '../daemon/daemon.js';
import { loadOnionKey } from '../tor/onion-key.js';
import { ONION_VIRTUAL_PORT } from '../wire/location.js';
import { table, type Output } from './client-commands.js';

/** What `config check` found. */
export interface ConfigCheckResult {
  /** The role the configuration gives. */
  readonly role: string;
  /** Problems that make `run` fail or misbehave; empty when none. */
  readonly problems: readonly string[];
}

/**
 * Prints the effective values and the role; returns the problems found (an unused key, an
 * unreadable onion key, directory_nodes listing our own onion among others).
 */
export async function configCheck(
  config: OnionmcConfig,
  apiDefault: string,
  out: Output,
): Promise<ConfigCheckResult> {
  const problems: string[] = [];
  const values: [string, string][] = [
    ['file', config.file],
    ['section', `[${config.section}]`],
    ['network', `${config.blockchainNetwork} (handshake: ${config.network})`],
    ['directory_nodes', config.directoryNodes.join(', ')],
    ['regtest_count', config.regtestCount.join(',')],
    ['testing mode', config.testingMode ? 'yes (plain TCP on 127.0.0.1, no Tor)' : 'no'],
    ['socks5', formatEndpoint(config.socks5)],
    ['tor_control', formatEndpoint(config.torControl)],
    [
      'tor_control_password',
      config.torControlPassword === undefined ? '(not set)' : '(set, hidden)',
    ],
    ['onion_serving', `${config.onionServingHost}:${config.onionServingPort}`],
    ['hidden_service_dir', config.hiddenServiceDir ?? '(none: ephemeral onion)'],
    ['socks5_connect_timeout', `${config.socks5ConnectTimeoutMs / 1000} s`],
    [
      'pow_defenses',
      config.powDefenses.enabled
        ? `on (rate ${config.powDefenses.queueRate}, burst ${config.powDefenses.queueBurst})`
        : 'off',
    ],
    ['nick_auth_mode', config.nickAuth.mode],
    [
      'api',
      config.api === undefined
        ? `unix:${apiDefault} (datadir default)`
        : formatEndpoint(config.api),
    ],
    ['api_socket_mode', `0${config.apiSocketMode.toString(8)}`],
    ['api_socket_group', config.apiSocketGroup ?? '(our primary group)'],
  ];
  for (const key of config.ignoredKeys)
    problems.push(`${config.file}: [${config.section}] ${key}: not a key onionmc knows (a typo?)`);

  let role: string;
  if (config.testingMode) {
    role = isDirectoryFor(config, testingModeLocation(config))
      ? 'directory node (testing mode)'
      : 'maker with --maker, else taker (testing mode)';
  } else if (config.hiddenServiceDir !== undefined) {
    try {
      const key = await loadOnionKey(config.hiddenServiceDir);
      const own = `${key.onionAddress}:${ONION_VIRTUAL_PORT}`;
      values.push(['own onion', own]);
      if (isDirectoryFor(config, own)) role = 'directory node';
      else {
        role = 'maker with --maker (on the persistent onion), else taker';
        if (config.directoryNodes.includes(own))
          problems.push(
            `${config.file}: directory_nodes lists our own onion ${own} among others: a directory node lists only itself`,
          );
        else if (config.directoryNodes.length === 0)
          problems.push(
            `${config.file}: directory_nodes is empty: for a directory node put "directory_nodes = ${own}"`,
          );
      }
    } catch (err) {
      role = 'unknown (the onion key cannot be read)';
      problems.push(
        `${config.hiddenServiceDir}: ${err instanceof Error ? err.message : String(err)} (onionmc directory init creates it)`,
      );
    }
  } else {
    role = 'maker with --maker (ephemeral onion), else taker';
  }
  if (config.directoryNodes.length === 0 && !problems.some((p) => p.includes('directory_nodes')))
    problems.push(`${config.file}: directory_nodes is empty`);
  values.push(['role', role]);
  for (const line of table(['key', 'value'], values).slice(1)) out.line(line);
  return { role, problems };
}
