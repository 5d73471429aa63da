/**
 * Reads JMInit's `chan_configs`: the jmclient's own `[MESSAGING:*]` sections as JSON objects
 * (jmclient/configure.py `get_mchannels`; the onion keys plus `serving`, `passive`, `btcnet`,
 * `section-name`, see test/fixtures/joinmarketd-amp-transcript.txt). onionmc serves the onion
 * message channel only: a section of another type (IRC; jmdaemon reads a section without `type`
 * as IRC) is refused, never ignored. Pure.
 */
import type { JsonValue } from '../amp/arguments.js';
import { ConfigError } from '../errors.js';
import type { OnionChannelConfig } from './core.js';

/** Why `chan_configs` cannot be served (code `ERR_CONFIG`); `problems` has one line each. */
export class ChanConfigError extends ConfigError {}

/**
 * Directory nodes a jmclient's `directory_nodes` may list at most: each is a link the node dials
 * and keeps (JoinMarket's default lists fewer than ten). Duplicates count once: one link per
 * location, as onionmc's own `directory_nodes` (src/config/config.ts).
 */
export const MAX_CHAN_DIRECTORY_NODES = 32;

function asRecord(value: JsonValue | undefined): Record<string, JsonValue> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : undefined;
}

/**
 * A value for a problem line: a scalar as JSON, a list or object by its kind only (it may nest as
 * deep as the client made it, and printing it would recurse that deep).
 */
function shown(value: JsonValue | undefined): string {
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object' && value !== null) return 'an object';
  return value === undefined ? 'nothing' : JSON.stringify(value);
}

function port(
  section: Record<string, JsonValue>,
  key: string,
  name: string,
  problems: string[],
  fallback: number,
): number {
  const value = section[key];
  if (value === undefined) return fallback;
  const n = typeof value === 'string' && /^[0-9]{1,5}$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65_535) {
    problems.push(`${name}: ${key} must be a port number 0-65535, got ${shown(value)}`);
    return 0;
  }
  return n;
}

function text(
  section: Record<string, JsonValue>,
  key: string,
  name: string,
  problems: string[],
  fallback?: string,
): string {
  const value = section[key];
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'string') {
    problems.push(`${name}: ${key} must be a string, got ${shown(value)}`);
    return '';
  }
  return value;
}

function flag(
  section: Record<string, JsonValue>,
  key: string,
  name: string,
  problems: string[],
): boolean {
  const value = section[key];
  if (typeof value === 'boolean') return value;
  if (value === undefined) return false;
  if (typeof value === 'string' && /^(true|false)$/i.test(value)) return /^true$/i.test(value);
  problems.push(`${name}: ${key} must be true or false, got ${shown(value)}`);
  return false;
}

/**
 * Validates `chan_configs` and returns its one onion section. Missing ports take JoinMarket's
 * defaults (socks5 9050, control port 9051, onion serving 8080).
 * @throws ChanConfigError listing every problem: not a list, a section of another type (IRC),
 *   more than one onion section, or keys with wrong types.
 */
export function parseChanConfigs(chanConfigs: JsonValue): OnionChannelConfig {
  if (!Array.isArray(chanConfigs) || chanConfigs.length === 0)
    throw new ChanConfigError(['chan_configs must be a non-empty list of [MESSAGING:*] sections']);
  const problems: string[] = [];
  const onion: Record<string, JsonValue>[] = [];
  chanConfigs.forEach((entry, index) => {
    const section = asRecord(entry);
    if (section === undefined) {
      problems.push(`chan_configs[${index}] is not an object`);
      return;
    }
    const name =
      typeof section['section-name'] === 'string' ? section['section-name'] : `#${index}`;
    const type = section.type;
    if (type !== 'onion') {
      problems.push(
        `section [${name}] is of type ${typeof type === 'string' ? type : 'irc (no type key)'}: ` +
          'onionmc joinmarketd serves only the onion message channel; remove that section from ' +
          'joinmarket.cfg or run jmdaemon for it',
      );
      return;
    }
    onion.push(section);
  });
  if (onion.length > 1)
    problems.push(
      `${onion.length} onion sections: onionmc joinmarketd serves one [MESSAGING:onion] section`,
    );
  const section = onion[0];
  if (section === undefined || problems.length > 0) {
    if (problems.length === 0) problems.push('chan_configs holds no onion section');
    throw new ChanConfigError(problems);
  }
  const name = typeof section['section-name'] === 'string' ? section['section-name'] : 'onion';
  const directoryText = text(section, 'directory_nodes', name, problems);
  const directoryNodes = [
    ...new Set(
      directoryText
        .split(',')
        .map((d) => d.trim())
        .filter((d) => d !== ''),
    ),
  ];
  if (directoryText !== '' && directoryNodes.length === 0)
    problems.push(`${name}: directory_nodes lists no directory node`);
  if (directoryNodes.length > MAX_CHAN_DIRECTORY_NODES)
    problems.push(
      `${name}: directory_nodes lists ${directoryNodes.length} directory nodes, at most ${MAX_CHAN_DIRECTORY_NODES}`,
    );
  if (directoryText === '' && problems.length === 0)
    problems.push(`${name}: directory_nodes is empty`);
  const regtest = section.regtest_count;
  const config: OnionChannelConfig = {
    sectionName: name,
    directoryNodes,
    socks5Host: text(section, 'socks5_host', name, problems, 'localhost'),
    socks5Port: port(section, 'socks5_port', name, problems, 9050),
    torControlHost: text(section, 'tor_control_host', name, problems, 'localhost'),
    torControlPort: port(section, 'tor_control_port', name, problems, 9051),
    onionServingHost: text(section, 'onion_serving_host', name, problems, '127.0.0.1'),
    onionServingPort: port(section, 'onion_serving_port', name, problems, 8080),
    hiddenServiceDir: text(section, 'hidden_service_dir', name, problems, ''),
    serving: flag(section, 'serving', name, problems),
    passive: flag(section, 'passive', name, problems),
    btcnet: text(section, 'btcnet', name, problems, 'mainnet'),
    regtestCount: typeof regtest === 'string' ? regtest : undefined,
    raw: section,
  };
  if (problems.length > 0) throw new ChanConfigError(problems);
  return config;
}
