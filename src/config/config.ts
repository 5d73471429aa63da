/**
 * Configuration: reads JoinMarket's own `joinmarket.cfg` and returns one frozen, validated
 * {@link OnionmcConfig}. Owns the file syntax (Python configparser's, as JoinMarket reads it), the
 * choice of the onion `[MESSAGING:*]` section, JoinMarket's defaults for its keys, onionmc's own
 * additional keys, and the collection of every problem into one {@link ConfigError}.
 *
 * Nothing here reads `process.env`; the CLI passes the file path in.
 *
 * File syntax (R: src/jmclient/configure.py reads the file with `ConfigParser(strict=False)`):
 *
 * | construct                  | meaning (configparser defaults)                                         |
 * |----------------------------|-------------------------------------------------------------------------|
 * | `[name]`                   | section header; the name is case-sensitive, text after the last `]` is dropped |
 * | `key = value`, `key: value`| option; the first `=` or `:` splits; key lower-cased; both sides trimmed |
 * | `# ...`, `; ...`           | comment, only as a whole line (may be indented)                         |
 * | `key = a # b`              | the value is `a # b`: there are NO inline comments                      |
 * | deeper-indented line       | continues the previous value (joined with `\n`)                         |
 * | `%%`, `%(other)s`          | a literal `%`, the value of `other` (same section or `[DEFAULT]`)       |
 * | `[DEFAULT]`                | its keys are fallbacks for every section                                |
 * | repeated section / key     | sections merge, the last value of a key wins                            |
 *
 * The `ini` package (v6) parses differently on most of these rows: it cuts values at `#` and `;`,
 * does not know `key: value`, JSON-decodes quoted values, turns `true`/`false`/`null` into
 * non-strings, nests sections whose names contain `.`, and has no continuation lines. So
 * {@link readConfigparserText} applies configparser's line grammar first and hands `ini` a
 * normalised document (`[s<n>]` headers, JSON-quoted keys and values) that `ini` decodes
 * without loss. Remaining differences from configparser: a key literally named `__proto__` is
 * dropped; integers are ASCII digits only (Python's `int()` also takes `_`, signs on ports and
 * non-ASCII digits); a leading UTF-8 byte-order mark is skipped (configparser rejects the file).
 */
import { readFile } from 'node:fs/promises';
import ini from 'ini';
import { ConfigError } from '../errors.js';
import { isV3OnionHostname, parseLocation } from '../wire/location.js';
import { LIMIT_KEYS, readLimits, type LimitsConfig } from './limits-config.js';

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/**
 * Where to connect or listen: a TCP host and port, or a unix socket path (`unix:/path` in the
 * file, as JoinMarket accepts for `tor_control_host`; R: src/jmclient/configure.py).
 */
export type Endpoint =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string };

/**
 * The network name sent in every handshake (`network` of 793/795, docs/protocol.md §2.2, §2.3). A directory
 * rejects peers whose name differs from its own.
 */
export type HandshakeNetwork = 'mainnet' | 'testnet' | 'signet' | 'regtest';

/**
 * JMP-0005 nick authentication mode (docs/protocol.md §9.6; NG: jmcore/src/jmcore/nick_auth.py):
 * `prefer_verified` lets a verified registration displace an unverified owner of a nick,
 * `require_verified` admits only verified peers, `disabled` never negotiates it.
 */
export type NickAuthMode = 'prefer_verified' | 'require_verified' | 'disabled';

/** Tor onion-service proof-of-work defences (docs/protocol.md §8.5; NG: jmcore/src/jmcore/tor_control.py). */
export interface PowDefensesConfig {
  /** Ask tor for PoW defences on the onion service we create (when tor supports them). */
  readonly enabled: boolean;
  /** Tor's `PoWQueueRate`: introduction requests per second the queue drains. */
  readonly queueRate: number;
  /** Tor's `PoWQueueBurst`: introduction requests the queue may hold in a burst. */
  readonly queueBurst: number;
}

/** Nick authentication settings (docs/protocol.md §9.6). */
export interface NickAuthConfig {
  readonly mode: NickAuthMode;
  /**
   * The directory-id a directory node puts in its 803 challenge; a directory advertises
   * `nick_auth` only when this is set. Undefined: clients use the lower-cased `<onion>:<port>` of
   * the directory they dialed.
   */
  readonly directoryId: string | undefined;
  /**
   * onionmc `nick_auth_directory_ids`: per configured directory location (`host:port` as in
   * `directory_nodes`), the directory-id that directory node puts in its challenge when it is not
   * its own `<onion>:<port>` (an ng directory node with its own `nick_auth_directory_id`).
   * Clients only; empty by default.
   */
  readonly directoryIds: Readonly<Record<string, string>>;
}

/** Directory heartbeat timers in milliseconds (docs/protocol.md §4.7; NG: directory_server/.../heartbeat.py). */
export interface HeartbeatConfig {
  /** Interval between sweeps. */
  readonly sweepIntervalMs: number;
  /** A peer idle this long is probed (798 ping, or an orderbook request for old makers). */
  readonly probeIdleMs: number;
  /** How long a probed peer has to answer before it is evicted. */
  readonly pongTimeoutMs: number;
  /** A peer idle this long is evicted without a probe. */
  readonly evictIdleMs: number;
}

/**
 * The validated configuration, deeply frozen. JoinMarket keys come from the one `[MESSAGING:*]`
 * section whose `type` is `onion` (docs/protocol.md §2.2; R: src/jmclient/configure.py `get_mchannels`) and
 * from `[BLOCKCHAIN] network`; the keys marked "onionmc" are our own additions, documented in
 * `joinmarket.cfg.example`.
 */
export interface OnionmcConfig {
  /** The configuration file path, exactly as given to {@link parseConfig} / {@link loadConfig}. */
  readonly file: string;
  /** Name of the onion section, e.g. `MESSAGING:onion`. */
  readonly section: string;
  /**
   * Handshake network name (docs/protocol.md §2.2): `[BLOCKCHAIN] network` `mainnet`, `testnet` and `signet`
   * map to themselves, `regtest` maps to `testnet` (JoinMarket's own regtest setups configure
   * `testnet`); missing means `mainnet`. onionmc `handshake_network` overrides it (`regtest` to
   * meet ng's regtest nodes, which send and require `regtest`, docs/protocol.md §2.2, §8.4).
   */
  readonly network: HandshakeNetwork;
  /** The raw `[BLOCKCHAIN] network` value (`mainnet` when the key is missing). */
  readonly blockchainNetwork: string;
  /** Tor SOCKS5 proxy for outbound connections: `socks5_host`/`socks5_port`, default localhost:9050 (docs/protocol.md §8.3). `socks5_host = unix:/path` (onionmc) gives a unix endpoint. */
  readonly socks5: Endpoint;
  /** Tor control port: `tor_control_host`/`tor_control_port`, default localhost:9051; `unix:/path` ignores the port (docs/protocol.md §2.2, §8.1). */
  readonly torControl: Endpoint;
  /**
   * `tor_control_password`; undefined when missing or empty (then cookie or no authentication).
   * JoinMarket's daemon reads this name (R: src/jmdaemon/onionmc.py), its default file does not
   * list it. The property is NOT enumerable, so logging or `JSON.stringify` of the config never
   * prints the password; read it by name.
   */
  readonly torControlPassword: string | undefined;
  /** Local listener behind the onion service: `onion_serving_host`, default 127.0.0.1 (docs/protocol.md §2.1). */
  readonly onionServingHost: string;
  /** `onion_serving_port`, default 8080 (docs/protocol.md §2.1, §8.1); the advertised port in testing mode (§8.4). */
  readonly onionServingPort: number;
  /** `hidden_service_dir`: persistent onion key directory (directory nodes, docs/protocol.md §8.2); empty means undefined (an ephemeral onion, §8.1). */
  readonly hiddenServiceDir: string | undefined;
  /** `directory_nodes`: location strings `host:port`, trimmed, empties dropped, order kept, duplicates removed (docs/protocol.md §2.1, §2.2). Never empty, except when parsed with `requireDirectoryNodes: false`. */
  readonly directoryNodes: readonly string[];
  /** `regtest_count` `s,e`, default `0,0` (docs/protocol.md §8.4). */
  readonly regtestCount: readonly [number, number];
  /** Testing mode: `regtest_count` is not `0,0`; plain TCP on 127.0.0.1, no Tor (docs/protocol.md §8.4). */
  readonly testingMode: boolean;
  /** onionmc `socks5_connect_timeout` (seconds in the file), default 120 s (docs/protocol.md §8.5). */
  readonly socks5ConnectTimeoutMs: number;
  /** onionmc `pow_defenses`, `pow_queue_rate`, `pow_queue_burst`; defaults true, 25, 250 (docs/protocol.md §8.5). */
  readonly powDefenses: PowDefensesConfig;
  /** onionmc `directory_motd`: the `motd` of our 795 replies; default the reference motd (docs/protocol.md §2.4). */
  readonly directoryMotd: string;
  /** onionmc `nick_auth_mode` (default prefer_verified) and `nick_auth_directory_id` (docs/protocol.md §9.6). */
  readonly nickAuth: NickAuthConfig;
  /**
   * onionmc `features`: extra features a maker or taker advertises in its 793 (docs/protocol.md
   * §9.1), e.g. `neutrino_compat` when the application's wallet can serve a Neutrino taker.
   * Names are `[a-z0-9_]`, comma separated; empty by default.
   */
  readonly clientFeatures: readonly string[];
  /**
   * onionmc `answer_orderbook` (default true): a maker answers `!orderbook` itself. False leaves
   * the answer to the application (`orderbookRequest` event, `POST /v1/orderbook/answer`), which
   * can then add a `!tbond` proof made for the requesting taker.
   */
  readonly answerOrderbook: boolean;
  /** onionmc `heartbeat_*` (seconds in the file), defaults 60/600/30/1500 s (docs/protocol.md §4.7). */
  readonly heartbeat: HeartbeatConfig;
  /**
   * onionmc `api`: local HTTP API endpoint (`unix:/path` or loopback `host:port`); undefined: not
   * set (the CLI then serves `<datadir>/onionmc.sock`).
   */
  readonly api: Endpoint | undefined;
  /** onionmc `api_socket_mode`: permission bits of the API unix socket (octal in the file), default 0660. */
  readonly apiSocketMode: number;
  /**
   * onionmc `api_socket_group`: a group name or numeric gid the API unix socket is given, so that
   * a wallet running as another user in that group can connect; undefined: our primary group.
   */
  readonly apiSocketGroup: string | undefined;
  /** Keys of the onion section that onionmc does not use (not errors; the CLI warns about them). */
  readonly ignoredKeys: readonly string[];
  /** onionmc `limit_*`, `max_*`, `handshake_timeout`, `listen_backlog`, `api_event_buffer_bytes` (docs/limits.md). */
  readonly limits: LimitsConfig;
}

// ---------------------------------------------------------------------------------------------
// Defaults and limits
// ---------------------------------------------------------------------------------------------

/** The reference directory's 795 motd (docs/protocol.md §2.4; R: src/jmdaemon/onionmc.py `server_handshake_json`). */
export const REFERENCE_DIRECTORY_MOTD = 'Default MOTD, replace with information for the directory.';

/**
 * Defaults applied when a key is missing. JoinMarket values from its default config text
 * (R: src/jmclient/configure.py `defaultconfig`); onionmc values from the spec sections named.
 */
export const CONFIG_DEFAULTS = Object.freeze({
  blockchainNetwork: 'mainnet',
  socks5Host: 'localhost',
  socks5Port: 9050,
  torControlHost: 'localhost',
  torControlPort: 9051,
  onionServingHost: '127.0.0.1',
  onionServingPort: 8080,
  regtestCount: Object.freeze([0, 0] as const),
  /** §8.5: ng raised its SOCKS timeout from 30 s to 120 s so that solving PoW fits. */
  socks5ConnectTimeoutMs: 120_000,
  /** §8.5: ng's ADD_ONION PoW parameters. */
  powDefensesEnabled: true,
  powQueueRate: 25,
  powQueueBurst: 250,
  directoryMotd: REFERENCE_DIRECTORY_MOTD,
  nickAuthMode: 'prefer_verified',
  /** §4.7: ng directory heartbeat. */
  heartbeatSweepIntervalMs: 60_000,
  heartbeatProbeIdleMs: 600_000,
  heartbeatPongTimeoutMs: 30_000,
  heartbeatEvictIdleMs: 1_500_000,
  /** Owner and group may connect; others not (as tor's and oxend's group-shared control sockets). */
  apiSocketMode: 0o660,
});

/** Longest duration a `*_timeout` / `heartbeat_*` key may hold: one day, well inside Node's timer range. */
const MAX_DURATION_SECONDS = 86_400;
/** Largest PoW queue rate / burst we accept (ours: a signed 32-bit bound). */
const MAX_POW_QUEUE_VALUE = 2_147_483_647;
/** configparser's `MAX_INTERPOLATION_DEPTH`. */
const MAX_INTERPOLATION_DEPTH = 10;

const ONION_TYPE = 'onion';
const MESSAGING_PREFIX = 'MESSAGING:';
const DEFAULT_SECTION = 'DEFAULT';

/** Keys of the onion section that JoinMarket reads (docs/protocol.md §2.2), plus the password slot of its daemon. */
const JOINMARKET_KEYS = [
  'type',
  'directory_nodes',
  'regtest_count',
  'socks5_host',
  'socks5_port',
  'tor_control_host',
  'tor_control_port',
  'tor_control_password',
  'onion_serving_host',
  'onion_serving_port',
  'hidden_service_dir',
] as const;

/** onionmc's own keys in the onion section. */
const ONIONMC_KEYS = [
  'socks5_connect_timeout',
  'pow_defenses',
  'pow_queue_rate',
  'pow_queue_burst',
  'directory_motd',
  'nick_auth_mode',
  'nick_auth_directory_id',
  'nick_auth_directory_ids',
  'features',
  'answer_orderbook',
  'handshake_network',
  'heartbeat_sweep_interval',
  'heartbeat_probe_idle',
  'heartbeat_pong_timeout',
  'heartbeat_evict_idle',
  'api',
  'api_socket_mode',
  'api_socket_group',
] as const;

/** Every key onionmc reads in the onion section: JoinMarket's, onionmc's and the limits. */
export const KNOWN_KEYS: ReadonlySet<string> = new Set<string>([
  ...JOINMARKET_KEYS,
  ...ONIONMC_KEYS,
  ...LIMIT_KEYS, // limits: limits-config.ts
]);

const NETWORK_MAP: ReadonlyMap<string, HandshakeNetwork> = new Map([
  ['mainnet', 'mainnet'],
  ['testnet', 'testnet'],
  ['signet', 'signet'],
  ['regtest', 'testnet'],
]);

const NICK_AUTH_MODES: readonly NickAuthMode[] = [
  'prefer_verified',
  'require_verified',
  'disabled',
];

/** configparser's `BOOLEAN_STATES` (compared lower-cased). */
const BOOLEAN_STATES: ReadonlyMap<string, boolean> = new Map([
  ['1', true],
  ['yes', true],
  ['true', true],
  ['on', true],
  ['0', false],
  ['no', false],
  ['false', false],
  ['off', false],
]);

const UNSIGNED_INT_RE = /^\d+$/;
const SIGNED_INT_RE = /^[+-]?\d+$/;
const SECONDS_RE = /^\d+(?:\.\d+)?$/;

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

/**
 * Reads and validates the configuration file at `file`.
 *
 * @param file path of `joinmarket.cfg`; kept as given in {@link OnionmcConfig.file} and messages.
 * @returns the frozen configuration.
 * @throws ConfigError (`ERR_CONFIG`) naming the file when it cannot be read, or listing every
 *   problem {@link parseConfig} finds.
 */
export async function loadConfig(
  file: string,
  options: ParseConfigOptions = {},
): Promise<OnionmcConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new ConfigError([`${file}: cannot read the configuration file: ${reason}`]);
  }
  return parseConfig(text, file, options);
}

/** Options of {@link parseConfig} and {@link loadConfig}. */
export interface ParseConfigOptions {
  /**
   * When false, an empty or missing `directory_nodes` is accepted (an empty list): `onionmc
   * directory init` runs before the directory node knows its own address. Default true.
   */
  readonly requireDirectoryNodes?: boolean;
}

/**
 * Parses and validates configuration text in JoinMarket's `joinmarket.cfg` format.
 *
 * Reads `[BLOCKCHAIN] network` and the one `[MESSAGING:*]` section whose `type` is `onion`
 * (compared case-insensitively, as JoinMarket does); every other section is ignored. Missing keys
 * take the defaults in {@link CONFIG_DEFAULTS}; `directory_nodes` is required.
 *
 * @param text the file contents.
 * @param file the path, used only in {@link OnionmcConfig.file} and in problem messages.
 * @returns the deeply frozen configuration.
 * @throws ConfigError (`ERR_CONFIG`) whose `problems` list every problem found, one line each, of
 *   the form `<file>: [<section>] <key> = "<value>": <what is allowed>` (syntax problems name the
 *   line: `<file>:<line>: ...`).
 */
export function parseConfig(
  text: string,
  file: string,
  options: ParseConfigOptions = {},
): OnionmcConfig {
  const problems = new ProblemList(file);
  const doc = readConfigparserText(text, problems);

  // [BLOCKCHAIN] network (docs/protocol.md §2.2).
  const blockchain = new SectionReader(
    'BLOCKCHAIN',
    doc.sections.get('BLOCKCHAIN'),
    doc.defaults,
    problems,
  );
  const networkRaw = blockchain.get('network');
  const blockchainNetwork =
    networkRaw.kind === 'ok' ? networkRaw.value : CONFIG_DEFAULTS.blockchainNetwork;
  let network: HandshakeNetwork = 'mainnet';
  if (networkRaw.kind === 'ok') {
    const mapped = NETWORK_MAP.get(networkRaw.value);
    if (mapped === undefined) {
      problems.value(
        'BLOCKCHAIN',
        'network',
        networkRaw.value,
        'must be one of mainnet, testnet, signet, regtest (regtest is sent as testnet)',
      );
    } else {
      network = mapped;
    }
  }

  const onion = findOnionSection(doc, problems);
  if (onion === undefined) throw new ConfigError(problems.list);
  const r = new SectionReader(onion, doc.sections.get(onion), doc.defaults, problems);

  // regtest_count first: testing mode relaxes the directory host check (docs/protocol.md §8.4).
  const regtest = readRegtestCount(r);
  const regtestCount = regtest ?? CONFIG_DEFAULTS.regtestCount;
  const testingMode = !(regtestCount[0] === 0 && regtestCount[1] === 0);

  const socks5 = r.endpoint(
    'socks5_host',
    'socks5_port',
    CONFIG_DEFAULTS.socks5Host,
    CONFIG_DEFAULTS.socks5Port,
  );
  const torControl = r.endpoint(
    'tor_control_host',
    'tor_control_port',
    CONFIG_DEFAULTS.torControlHost,
    CONFIG_DEFAULTS.torControlPort,
  );
  const torControlPassword = r.optionalString('tor_control_password');
  const onionServingHost = r.host('onion_serving_host', CONFIG_DEFAULTS.onionServingHost);
  const onionServingPort = r.port('onion_serving_port', CONFIG_DEFAULTS.onionServingPort);
  const hiddenServiceDir = readHiddenServiceDir(r);
  const directoryNodes = readDirectoryNodes(
    r,
    testingMode,
    regtest !== undefined,
    options.requireDirectoryNodes ?? true,
  );

  const socks5ConnectTimeoutMs = r.seconds(
    'socks5_connect_timeout',
    CONFIG_DEFAULTS.socks5ConnectTimeoutMs,
  );
  const powDefenses: PowDefensesConfig = {
    enabled: r.boolean('pow_defenses', CONFIG_DEFAULTS.powDefensesEnabled),
    queueRate: r.integer('pow_queue_rate', CONFIG_DEFAULTS.powQueueRate, 1, MAX_POW_QUEUE_VALUE),
    queueBurst: r.integer('pow_queue_burst', CONFIG_DEFAULTS.powQueueBurst, 1, MAX_POW_QUEUE_VALUE),
  };
  const directoryMotd = r.optionalString('directory_motd') ?? CONFIG_DEFAULTS.directoryMotd;
  const nickAuth: NickAuthConfig = {
    mode: r.choice('nick_auth_mode', CONFIG_DEFAULTS.nickAuthMode, NICK_AUTH_MODES),
    directoryId: readNickAuthDirectoryId(r),
    directoryIds: readNickAuthDirectoryIds(r, directoryNodes),
  };
  const clientFeatures = readClientFeatures(r);
  // onionmc `handshake_network`: the name sent instead of the one derived from [BLOCKCHAIN]
  // network, e.g. `regtest`, which ng's regtest nodes send and its directory nodes require.
  const handshakeNetwork = r.optionalString('handshake_network');
  if (handshakeNetwork !== undefined) {
    if ((['mainnet', 'testnet', 'signet', 'regtest'] as string[]).includes(handshakeNetwork))
      network = handshakeNetwork as HandshakeNetwork;
    else
      r.bad(
        'handshake_network',
        handshakeNetwork,
        'must be one of mainnet, testnet, signet, regtest',
      );
  }
  const answerOrderbook = r.boolean('answer_orderbook', true);
  const heartbeat = readHeartbeat(r);
  const api = readApi(r);
  const apiSocketMode = readSocketMode(r);
  const apiSocketGroup = readSocketGroup(r);
  const limits = readLimits(r);

  if (problems.list.length > 0) throw new ConfigError(problems.list);

  const ignoredKeys = [...(doc.sections.get(onion)?.keys() ?? [])].filter(
    (k) => !KNOWN_KEYS.has(k),
  );
  const config = {
    file,
    section: onion,
    network,
    blockchainNetwork,
    socks5,
    torControl,
    torControlPassword,
    onionServingHost,
    onionServingPort,
    hiddenServiceDir,
    directoryNodes,
    regtestCount: [regtestCount[0], regtestCount[1]] as const,
    testingMode,
    socks5ConnectTimeoutMs,
    powDefenses,
    directoryMotd,
    nickAuth,
    clientFeatures,
    answerOrderbook,
    heartbeat,
    api,
    apiSocketMode,
    apiSocketGroup,
    ignoredKeys,
    limits,
  };
  Object.defineProperty(config, 'torControlPassword', { enumerable: false });
  return deepFreeze(config);
}

// ---------------------------------------------------------------------------------------------
// Section choice and composite keys
// ---------------------------------------------------------------------------------------------

/**
 * Returns the name of the one `[MESSAGING:*]` section whose `type` is `onion`, or undefined after
 * recording a problem when there are none or several (docs/protocol.md §2.2; R: src/jmclient/configure.py
 * `get_mchannels` asserts fewer than two).
 */
function findOnionSection(doc: ConfigparserDocument, problems: ProblemList): string | undefined {
  const found: string[] = [];
  for (const name of doc.sections.keys()) {
    if (!name.startsWith(MESSAGING_PREFIX)) continue;
    const type = new SectionReader(name, doc.sections.get(name), doc.defaults, problems).get(
      'type',
    );
    if (type.kind === 'ok' && type.value.toLowerCase() === ONION_TYPE) found.push(name);
  }
  if (found.length === 1) return found[0];
  if (found.length === 0) {
    problems.general(
      'no [MESSAGING:<name>] section has type = onion: exactly one onion message channel section is required',
    );
  } else {
    problems.general(
      `${found.map((n) => `[${n}]`).join(', ')} all have type = onion: exactly one onion message channel section is allowed`,
    );
  }
  return undefined;
}

/** `regtest_count = s,e`: two integers (docs/protocol.md §8.4). Undefined when missing (default) or bad (problem recorded). */
function readRegtestCount(r: SectionReader): readonly [number, number] | undefined {
  const raw = r.get('regtest_count');
  if (raw.kind !== 'ok') return raw.kind === 'missing' ? CONFIG_DEFAULTS.regtestCount : undefined;
  const parts = raw.value.split(',').map((p) => p.trim());
  const [s, e] = parts;
  if (
    parts.length !== 2 ||
    s === undefined ||
    e === undefined ||
    !SIGNED_INT_RE.test(s) ||
    !SIGNED_INT_RE.test(e)
  ) {
    r.bad(
      'regtest_count',
      raw.value,
      'must be two integers "s,e" (0,0 outside developer regtest setups)',
    );
    return undefined;
  }
  return [Number(s), Number(e)];
}

/** `hidden_service_dir`: empty means an ephemeral onion; a quoted empty string is a mistake JoinMarket warns about. */
function readHiddenServiceDir(r: SectionReader): string | undefined {
  const value = r.optionalString('hidden_service_dir');
  if (value === '""' || value === "''") {
    r.bad(
      'hidden_service_dir',
      value,
      'leave it empty (nothing after "=") for no directory: quotes are taken literally, as a directory name',
    );
    return undefined;
  }
  return value;
}

/**
 * `directory_nodes`: comma-separated `host:port` location strings (docs/protocol.md §2.1), trimmed, empties
 * dropped, duplicates removed; each entry is checked with `parseLocation` (src/wire/location.ts).
 * Outside testing mode every host must also pass `isV3OnionHostname` (shape and checksum, §2.1).
 *
 * @param checkOnion false when `regtest_count` was invalid: testing mode is then unknown, and a
 *   host check would report noise.
 * @param required false to accept an empty or missing list (`directory init`).
 */
function readDirectoryNodes(
  r: SectionReader,
  testingMode: boolean,
  checkOnion: boolean,
  required: boolean,
): readonly string[] {
  const key = 'directory_nodes';
  const raw = r.get(key);
  if (raw.kind === 'missing') {
    if (!required) return [];
    r.missing(
      key,
      'must list at least one directory node as host:port (see joinmarket.cfg.example)',
    );
    return [];
  }
  if (raw.kind === 'invalid') return [];
  const entries = [...new Set(raw.value.split(',').map((e) => e.trim()))].filter((e) => e !== '');
  if (entries.length === 0) {
    if (!required) return [];
    r.bad(key, raw.value, 'must list at least one directory node as host:port');
    return [];
  }
  for (const entry of entries) {
    let host: string;
    try {
      const loc = parseLocation(entry);
      if (loc.kind !== 'hostport') throw new Error('a directory node must serve an onion');
      host = loc.host;
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      r.bad(key, entry, `${reason}: each entry must be host:port, e.g. <56 characters>.onion:5222`);
      continue;
    }
    if (checkOnion && !testingMode && !isV3OnionHostname(host)) {
      r.bad(
        key,
        entry,
        'host must be a v3 onion hostname (56 characters a-z2-7 + .onion, valid checksum); other hosts only in testing mode (regtest_count)',
      );
    }
  }
  return entries;
}

/** `nick_auth_directory_id`: no whitespace and no `|`, which separates the fields of the signed string (docs/protocol.md §9.6). */
function readNickAuthDirectoryId(r: SectionReader): string | undefined {
  const value = r.optionalString('nick_auth_directory_id');
  if (value !== undefined && /[\s|]/.test(value)) {
    r.bad(
      'nick_auth_directory_id',
      value,
      'must not contain whitespace or "|" (it is a field of the signed nick-auth string)',
    );
    return undefined;
  }
  return value;
}

/**
 * `nick_auth_directory_ids = <host:port>=<id>, …`: the directory-id of each listed directory node
 * (docs/protocol.md §9.6, §13.2). Each location must be one of `directory_nodes`; ids follow the
 * rules of `nick_auth_directory_id`.
 */
function readNickAuthDirectoryIds(
  r: SectionReader,
  directoryNodes: readonly string[],
): Readonly<Record<string, string>> {
  const value = r.optionalString('nick_auth_directory_ids');
  const ids: Record<string, string> = {};
  if (value === undefined) return ids;
  const known = new Set(directoryNodes.map((d) => d.toLowerCase()));
  for (const item of value
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '')) {
    const eq = item.indexOf('=');
    const location = eq < 0 ? '' : item.slice(0, eq).trim();
    const id = eq < 0 ? '' : item.slice(eq + 1).trim();
    if (location === '' || id === '' || /[\s|]/.test(id)) {
      r.bad(
        'nick_auth_directory_ids',
        value,
        `entry "${item}": each entry is <host:port>=<directory-id>, the id without whitespace or "|"`,
      );
      continue;
    }
    if (!known.has(location.toLowerCase())) {
      r.bad(
        'nick_auth_directory_ids',
        value,
        `entry "${item}": ${location} is not one of directory_nodes`,
      );
      continue;
    }
    ids[location.toLowerCase()] = id;
  }
  return ids;
}

/** `features = a, b`: extra 793 features of a maker or taker (docs/protocol.md §9.1). */
function readClientFeatures(r: SectionReader): string[] {
  const value = r.optionalString('features');
  if (value === undefined) return [];
  const names = value
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
  const bad = names.filter((n) => !/^[a-z0-9_]{1,64}$/.test(n));
  if (bad.length > 0) {
    r.bad(
      'features',
      value,
      'feature names are comma separated, each [a-z0-9_], at most 64 characters',
    );
    return [];
  }
  return [...new Set(names)];
}

/** `heartbeat_*` keys (seconds; docs/protocol.md §4.7); probing only makes sense before eviction. */
function readHeartbeat(r: SectionReader): HeartbeatConfig {
  const heartbeat: HeartbeatConfig = {
    sweepIntervalMs: r.seconds(
      'heartbeat_sweep_interval',
      CONFIG_DEFAULTS.heartbeatSweepIntervalMs,
    ),
    probeIdleMs: r.seconds('heartbeat_probe_idle', CONFIG_DEFAULTS.heartbeatProbeIdleMs),
    pongTimeoutMs: r.seconds('heartbeat_pong_timeout', CONFIG_DEFAULTS.heartbeatPongTimeoutMs),
    evictIdleMs: r.seconds('heartbeat_evict_idle', CONFIG_DEFAULTS.heartbeatEvictIdleMs),
  };
  if (heartbeat.probeIdleMs >= heartbeat.evictIdleMs) {
    const probe = r.get('heartbeat_probe_idle');
    r.bad(
      'heartbeat_probe_idle',
      probe.kind === 'ok' ? probe.value : String(heartbeat.probeIdleMs / 1000),
      `must be less than heartbeat_evict_idle (${heartbeat.evictIdleMs / 1000} s), or idle peers are evicted without a probe`,
    );
  }
  return heartbeat;
}

/**
 * `api`: `unix:/path` or a loopback `host:port` (the API has no authentication). Empty or missing:
 * undefined, and `onionmc run` serves the API on `<datadir>/onionmc.sock` (src/cli/datadir.ts).
 */
function readApi(r: SectionReader): Endpoint | undefined {
  const value = r.optionalString('api');
  if (value === undefined) return undefined;
  const parsed = parseApiEndpointValue(value);
  if (typeof parsed === 'string') {
    r.bad('api', value, parsed);
    return undefined;
  }
  return parsed;
}

/**
 * `api_socket_mode`: octal permission bits, e.g. `0660` or `660`; owner read+write required, and
 * nothing for others (the API has no authentication: the socket's permissions are its access
 * control).
 */
function readSocketMode(r: SectionReader): number {
  const value = r.optionalString('api_socket_mode');
  if (value === undefined) return CONFIG_DEFAULTS.apiSocketMode;
  const mode = /^0?[0-7]{3}$/.test(value) ? parseInt(value, 8) : NaN;
  if (Number.isNaN(mode) || (mode & 0o600) !== 0o600 || (mode & 0o007) !== 0) {
    r.bad(
      'api_socket_mode',
      value,
      'must be octal permission bits with owner read and write and nothing for others, e.g. 0660 or 0600',
    );
    return CONFIG_DEFAULTS.apiSocketMode;
  }
  return mode;
}

/** `api_socket_group`: a group name (letters, digits, `_`, `-`, `.`) or a numeric gid. */
function readSocketGroup(r: SectionReader): string | undefined {
  const value = r.optionalString('api_socket_group');
  if (value !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/.test(value)) {
    r.bad('api_socket_group', value, 'must be a group name or a numeric gid');
    return undefined;
  }
  return value;
}

/**
 * Parses a local API endpoint as the `api` key and the `--api` option take it: `unix:/path`, or
 * `host:port` with a loopback host (localhost, 127.x.x.x, ::1 written `[::1]`) and a port 1-65535:
 * the API has no authentication, so it is never offered beyond the host.
 * @returns the endpoint, or a sentence saying what is allowed.
 */
export function parseApiEndpointValue(value: string): Endpoint | string {
  const unix = unixEndpoint(value);
  if (unix !== undefined) return unix;
  if (value.startsWith('unix:')) return 'unix: must be followed by a socket path';
  const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\S+)$/.exec(value);
  const host = m?.[1] ?? m?.[2];
  const port = m?.[3];
  if (host === undefined || port === undefined)
    return 'must be unix:/path or host:port (IPv6 as [::1]:port)';
  if (!isPort(port)) return 'port must be an integer from 1 to 65535';
  if (!isLoopbackHost(host)) {
    return 'host must be loopback (localhost, 127.x.x.x or ::1): the local API has no authentication';
  }
  return { kind: 'tcp', host, port: Number(port) };
}

// ---------------------------------------------------------------------------------------------
// Typed key readers
// ---------------------------------------------------------------------------------------------

/** Result of reading one key: its interpolated value, absent, or unusable (problem recorded). */
type RawValue = { kind: 'ok'; value: string } | { kind: 'missing' } | { kind: 'invalid' };

/**
 * Reads keys of one section with configparser's lookup rules (the section, then `[DEFAULT]`,
 * then BasicInterpolation) and records a problem for every bad value.
 */
class SectionReader {
  readonly #name: string;
  readonly #own: ReadonlyMap<string, string>;
  readonly #defaults: ReadonlyMap<string, string>;
  readonly #problems: ProblemList;

  constructor(
    name: string,
    own: ReadonlyMap<string, string> | undefined,
    defaults: ReadonlyMap<string, string>,
    problems: ProblemList,
  ) {
    this.#name = name;
    this.#own = own ?? new Map<string, string>();
    this.#defaults = defaults;
    this.#problems = problems;
  }

  /** The value of `key` after interpolation. */
  get(key: string): RawValue {
    const raw = this.#lookup(key);
    if (raw === undefined) return { kind: 'missing' };
    const result = interpolate(raw, (name) => this.#lookup(name));
    if (result.ok) return { kind: 'ok', value: result.value };
    this.bad(key, raw, `${result.reason} (configparser interpolation: write %% for a literal %)`);
    return { kind: 'invalid' };
  }

  /** A present, non-empty value, or undefined when the key is missing, empty or invalid. */
  optionalString(key: string): string | undefined {
    const raw = this.get(key);
    return raw.kind === 'ok' && raw.value !== '' ? raw.value : undefined;
  }

  /** A hostname: non-empty, no whitespace. */
  host(key: string, fallback: string): string {
    const raw = this.get(key);
    if (raw.kind !== 'ok') return fallback;
    if (raw.value === '' || /\s/.test(raw.value)) {
      this.bad(key, raw.value, 'must be a hostname or IP address, without spaces');
      return fallback;
    }
    return raw.value;
  }

  /** A TCP port, 1..65535. */
  port(key: string, fallback: number): number {
    const raw = this.get(key);
    if (raw.kind !== 'ok') return fallback;
    if (!isPort(raw.value)) {
      this.bad(key, raw.value, 'must be a TCP port, an integer from 1 to 65535');
      return fallback;
    }
    return Number(raw.value);
  }

  /** `hostKey = unix:/path` (port key not read), or `hostKey` + `portKey` as TCP. */
  endpoint(hostKey: string, portKey: string, defaultHost: string, defaultPort: number): Endpoint {
    const raw = this.get(hostKey);
    if (raw.kind === 'ok' && raw.value.startsWith('unix:')) {
      const unix = unixEndpoint(raw.value);
      if (unix !== undefined) return unix;
      this.bad(
        hostKey,
        raw.value,
        'unix: must be followed by a socket path, e.g. unix:/var/run/tor/control',
      );
      return { kind: 'unix', path: '' };
    }
    return {
      kind: 'tcp',
      host: this.host(hostKey, defaultHost),
      port: this.port(portKey, defaultPort),
    };
  }

  /** An integer in [min, max]. */
  integer(key: string, fallback: number, min: number, max: number): number {
    const raw = this.get(key);
    if (raw.kind !== 'ok') return fallback;
    const n = UNSIGNED_INT_RE.test(raw.value) ? Number(raw.value) : NaN;
    if (!(n >= min && n <= max)) {
      this.bad(key, raw.value, `must be an integer from ${min} to ${max}`);
      return fallback;
    }
    return n;
  }

  /** Seconds in the file (decimals allowed), more than 0 and at most one day; returned in ms. */
  seconds(key: string, fallbackMs: number): number {
    const raw = this.get(key);
    if (raw.kind !== 'ok') return fallbackMs;
    const s = SECONDS_RE.test(raw.value) ? Number(raw.value) : NaN;
    if (!(s > 0 && s <= MAX_DURATION_SECONDS)) {
      this.bad(
        key,
        raw.value,
        `must be a number of seconds, more than 0 and at most ${MAX_DURATION_SECONDS}`,
      );
      return fallbackMs;
    }
    return Math.round(s * 1000);
  }

  /** A configparser boolean: 1/yes/true/on or 0/no/false/off, any case. */
  boolean(key: string, fallback: boolean): boolean {
    const raw = this.get(key);
    if (raw.kind !== 'ok') return fallback;
    const b = BOOLEAN_STATES.get(raw.value.toLowerCase());
    if (b === undefined) {
      this.bad(key, raw.value, 'must be true or false (also yes/no, on/off, 1/0)');
      return fallback;
    }
    return b;
  }

  /** One of `options`, exactly. */
  choice<T extends string>(key: string, fallback: T, options: readonly T[]): T {
    const raw = this.get(key);
    if (raw.kind !== 'ok') return fallback;
    const found = options.find((o) => o === raw.value);
    if (found === undefined) {
      this.bad(key, raw.value, `must be one of ${options.join(', ')}`);
      return fallback;
    }
    return found;
  }

  /** Records `<file>: [<section>] <key> = "<value>": <allowed>`. */
  bad(key: string, value: string, allowed: string): void {
    this.#problems.value(this.#name, key, value, allowed);
  }

  /** Records `<file>: [<section>] <key> is missing: <allowed>`. */
  missing(key: string, allowed: string): void {
    this.#problems.general(`[${this.#name}] ${key} is missing: ${allowed}`);
  }

  #lookup(key: string): string | undefined {
    return this.#own.get(key) ?? this.#defaults.get(key);
  }
}

/**
 * configparser's BasicInterpolation (Python `configparser.BasicInterpolation`): `%%` is `%`,
 * `%(name)s` is the value of `name` (lower-cased) in the same section or `[DEFAULT]`, expanded
 * recursively up to depth 10; any other `%` is an error.
 */
function interpolate(
  value: string,
  lookup: (key: string) => string | undefined,
  depth = 1,
): { ok: true; value: string } | { ok: false; reason: string } {
  if (depth > MAX_INTERPOLATION_DEPTH)
    return { ok: false, reason: '%(...)s references nest too deeply' };
  let out = '';
  let rest = value;
  while (rest !== '') {
    const p = rest.indexOf('%');
    if (p < 0) return { ok: true, value: out + rest };
    out += rest.slice(0, p);
    rest = rest.slice(p);
    const next = rest.charAt(1);
    if (next === '%') {
      out += '%';
      rest = rest.slice(2);
    } else if (next === '(') {
      const m = /^%\(([^)]+)\)s/.exec(rest);
      const name = m?.[1]?.toLowerCase();
      if (m === null || name === undefined)
        return { ok: false, reason: `bad reference ${JSON.stringify(rest)}` };
      rest = rest.slice(m[0].length);
      const v = lookup(name);
      if (v === undefined)
        return { ok: false, reason: `%(${name})s refers to a key that is not set` };
      if (v.includes('%')) {
        const inner = interpolate(v, lookup, depth + 1);
        if (!inner.ok) return inner;
        out += inner.value;
      } else {
        out += v;
      }
    } else {
      return { ok: false, reason: '"%" must be followed by "%" or "("' };
    }
  }
  return { ok: true, value: out };
}

// ---------------------------------------------------------------------------------------------
// File syntax: configparser's line grammar, then `ini` on a normalised document
// ---------------------------------------------------------------------------------------------

/** Sections (name → key → raw value) and the `[DEFAULT]` fallbacks, as configparser stores them. */
interface ConfigparserDocument {
  readonly sections: ReadonlyMap<string, ReadonlyMap<string, string>>;
  readonly defaults: ReadonlyMap<string, string>;
}

/**
 * Reads text the way Python's `ConfigParser(strict=False)` does (see the module header), records
 * syntax problems with their line numbers, and decodes the result through `ini`.
 *
 * Each option is written to the `ini` input as `"<key>" = "<value>"` (JSON strings, so `#`, `;`,
 * quotes and newlines survive) under a placeholder header `[s<n>]` per distinct section name (so
 * `.` and other characters in names survive). `ini` then merges repeated sections and keeps the
 * last of repeated keys.
 */
function readConfigparserText(text: string, problems: ProblemList): ConfigparserDocument {
  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/);
  const placeholders = new Map<string, string>(); // section name -> placeholder
  const out: string[] = [];
  let pending: { key: string; parts: string[] } | undefined; // the option continuation lines extend
  let inSection = false;
  let indentLevel = 0;

  const flush = (): void => {
    if (pending === undefined) return;
    out.push(`${jsonQuote(pending.key)} = ${jsonQuote(pending.parts.join('\n').trimEnd())}`);
    pending = undefined;
  };

  lines.forEach((line, index) => {
    const lineNo = index + 1;
    const value = line.trim();
    if (value.startsWith('#') || value.startsWith(';')) return; // whole-line comment
    if (value === '') {
      pending?.parts.push(''); // blank lines belong to a value if a continuation follows
      return;
    }
    const indent = line.search(/\S/);
    if (pending !== undefined && indent > indentLevel) {
      pending.parts.push(value); // continuation line
      return;
    }
    flush();
    indentLevel = indent;
    const header = /^\[([\s\S]+)\]/.exec(value);
    if (header?.[1] !== undefined) {
      const name = header[1];
      let placeholder = placeholders.get(name);
      if (placeholder === undefined) {
        placeholder = `s${placeholders.size}`;
        placeholders.set(name, placeholder);
      }
      out.push(`[${placeholder}]`);
      inSection = true;
      return;
    }
    if (!inSection) {
      problems.line(lineNo, line, 'comes before the first [section] header');
      return;
    }
    const option = /^([\s\S]*?)\s*[=:]\s*([\s\S]*)$/.exec(value);
    const key = option?.[1];
    if (key === undefined || key === '') {
      problems.line(lineNo, line, 'is not a [section] header, a comment or a "key = value" line');
      return;
    }
    pending = { key: key.toLowerCase(), parts: [option?.[2] ?? ''] };
  });
  flush();

  const decoded = ini.decode(out.join('\n'), { bracketedArray: false }) as Record<string, unknown>;
  const sections = new Map<string, Map<string, string>>();
  for (const [name, placeholder] of placeholders) {
    const entries = decoded[placeholder];
    const keys = new Map<string, string>();
    if (typeof entries === 'object' && entries !== null) {
      for (const [k, v] of Object.entries(entries)) keys.set(k, iniValueToString(v));
    }
    sections.set(name, keys);
  }
  const defaults = sections.get(DEFAULT_SECTION) ?? new Map<string, string>();
  sections.delete(DEFAULT_SECTION);
  return { sections, defaults };
}

/** JSON string that `ini` reads back exactly (U+2028/U+2029 escaped: `ini`'s line regex stops at them). */
function jsonQuote(s: string): string {
  return JSON.stringify(s)
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/**
 * Undoes `ini`'s conversions of a decoded value: `true`/`false`/`null` back to their text, and a
 * key seen more than once (`ini` collects those into an array) to its last value, as configparser
 * keeps.
 */
function iniValueToString(v: unknown): string {
  const last: unknown = Array.isArray(v) ? (v as unknown[])[v.length - 1] : v;
  if (typeof last === 'string') return last;
  if (last === null) return 'null';
  if (typeof last === 'boolean') return last ? 'true' : 'false';
  return '';
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/** Collects problem lines, each prefixed with the file name. */
class ProblemList {
  readonly list: string[] = [];
  readonly #file: string;

  constructor(file: string) {
    this.#file = file;
  }

  value(section: string, key: string, value: string, allowed: string): void {
    this.list.push(`${this.#file}: [${section}] ${key} = ${JSON.stringify(value)}: ${allowed}`);
  }

  line(lineNo: number, line: string, what: string): void {
    this.list.push(`${this.#file}:${lineNo}: ${JSON.stringify(line)} ${what}`);
  }

  general(message: string): void {
    this.list.push(`${this.#file}: ${message}`);
  }
}

function isPort(s: string): boolean {
  if (!UNSIGNED_INT_RE.test(s)) return false;
  const n = Number(s);
  return n >= 1 && n <= 65535;
}

/** `unix:/path` → unix endpoint; undefined when `value` is not `unix:` plus a non-empty path. */
function unixEndpoint(value: string): Endpoint | undefined {
  if (!value.startsWith('unix:')) return undefined;
  const path = value.slice('unix:'.length);
  return path === '' ? undefined : { kind: 'unix', path };
}

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(?:\.\d{1,3}){3}$/.test(host);
}

/** Freezes `value` and every object and array reachable from it. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const key of Reflect.ownKeys(value)) {
      deepFreeze((value as Record<PropertyKey, unknown>)[key]);
    }
    Object.freeze(value);
  }
  return value;
}
