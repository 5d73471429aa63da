import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  CONFIG_DEFAULTS,
  REFERENCE_DIRECTORY_MOTD,
  loadConfig,
  parseConfig,
  type OnionmcConfig,
} from '../../src/config/config.js';
import { DEFAULT_LIMITS_CONFIG, LIMIT_KEYS } from '../../src/config/limits-config.js';
import { ConfigError, hasCode } from '../../src/errors.js';

const FILE = 'joinmarket.cfg';
const EXAMPLE_PATH = fileURLToPath(new URL('../../joinmarket.cfg.example', import.meta.url));

/** Real v3 onions from JoinMarket's default mainnet list (R: src/jmclient/configure.py). */
const ONION_A = 'satoshi2vcg5e2ept7tjkzlkpomkobqmgtsjzegg6wipnoajadissead.onion';
const ONION_B = 'jmarketxf5wc4aldf3slm5u6726zsky52bqnfv6qyxe5hnafgly6yuyd.onion';

/** A minimal valid file: one onion section with one directory, plus `extra` lines in it. */
function onionFile(extra = '', head = ''): string {
  return `${head}[MESSAGING:onion]\ntype = onion\ndirectory_nodes = ${ONION_A}:5222\n${extra}`;
}

/** Runs `fn`, which must throw a ConfigError, and returns its problems. */
function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect(hasCode(err, 'ERR_CONFIG')).toBe(true);
    return (err as ConfigError).problems;
  }
  expect.unreachable('expected a ConfigError');
}

describe('limit keys (docs/limits.md)', () => {
  it('reads every limit key', () => {
    const config = parseConfig(
      onionFile(
        [
          'limit_message_rate = 100',
          'limit_message_burst = 200',
          'limit_read_rate = 300000',
          'limit_read_burst = 600000',
          'limit_fanout_rate = 1000',
          'limit_fanout_burst = 2000',
          'limit_orderbook_interval = 20',
          'limit_orderbook_burst = 2',
          'limit_getpeerlist_interval = 5',
          'limit_getpeerlist_burst = 4',
          'limit_node_fanout_rate = 5000',
          'limit_node_fanout_burst = 6000',
          'limit_offence_rate = 7',
          'limit_offence_burst = 70',
          'limit_ban = 60',
          'max_peers = 50',
          'max_pending_handshakes = 40',
          'handshake_timeout = 12',
          'max_queued_bytes = 262144',
          'listen_backlog = 1024',
          'api_event_buffer_bytes = 65536',
        ].join('\n'),
      ),
      FILE,
    );
    expect(config.limits).toEqual({
      policy: {
        messages: { ratePerSecond: 100, burst: 200 },
        readBytes: { ratePerSecond: 300_000, burst: 600_000 },
        deliveries: { ratePerSecond: 1000, burst: 2000 },
        orderbook: { ratePerSecond: 0.05, burst: 2 },
        getpeerlist: { ratePerSecond: 0.2, burst: 4 },
        globalDeliveries: { ratePerSecond: 5000, burst: 6000 },
        offences: { ratePerSecond: 7, burst: 70 },
        banMs: 60_000,
      },
      maxPeers: 50,
      maxPendingHandshakes: 40,
      handshakeTimeoutMs: 12_000,
      maxQueuedBytes: 262_144,
      listenBacklog: 1024,
      apiEventBufferBytes: 65_536,
    });
    expect(config.ignoredKeys).toEqual([]);
  });

  it('names every bad limit value', () => {
    const problems = problemsOf(() =>
      parseConfig(
        onionFile(
          'limit_message_rate = 0\nmax_peers = many\nmax_queued_bytes = 10\nlimit_ban = -1\n',
        ),
        FILE,
      ),
    );
    expect(problems).toHaveLength(4);
    for (const [i, key] of [
      'limit_message_rate',
      'limit_ban',
      'max_peers',
      'max_queued_bytes',
    ].entries())
      expect(problems[i]).toContain(`[MESSAGING:onion] ${key} = `);
  });
});

describe('parseConfig defaults', () => {
  it('fills every missing key with JoinMarket defaults and onionmc defaults', () => {
    const config = parseConfig(onionFile(), FILE);
    expect(config).toEqual({
      file: FILE,
      section: 'MESSAGING:onion',
      network: 'mainnet',
      blockchainNetwork: 'mainnet',
      socks5: { kind: 'tcp', host: 'localhost', port: 9050 },
      torControl: { kind: 'tcp', host: 'localhost', port: 9051 },
      onionServingHost: '127.0.0.1',
      onionServingPort: 8080,
      hiddenServiceDir: undefined,
      directoryNodes: [`${ONION_A}:5222`],
      regtestCount: [0, 0],
      testingMode: false,
      socks5ConnectTimeoutMs: 120_000,
      powDefenses: { enabled: true, queueRate: 25, queueBurst: 250 },
      directoryMotd: 'Default MOTD, replace with information for the directory.',
      nickAuth: { mode: 'prefer_verified', directoryId: undefined, directoryIds: {} },
      clientFeatures: [],
      answerOrderbook: true,
      heartbeat: {
        sweepIntervalMs: 60_000,
        probeIdleMs: 600_000,
        pongTimeoutMs: 30_000,
        evictIdleMs: 1_500_000,
      },
      api: undefined,
      apiSocketMode: 0o660,
      apiSocketGroup: undefined,
      ignoredKeys: [],
      limits: DEFAULT_LIMITS_CONFIG,
    });
    expect(config.torControlPassword).toBeUndefined();
  });

  it('returns a deeply frozen object', () => {
    const config = parseConfig(onionFile(), FILE);
    expect(Object.isFrozen(config)).toBe(true);
    for (const inner of [
      config.socks5,
      config.torControl,
      config.directoryNodes,
      config.regtestCount,
      config.powDefenses,
      config.nickAuth,
      config.heartbeat,
      config.ignoredKeys,
    ]) {
      expect(Object.isFrozen(inner)).toBe(true);
    }
    expect(Reflect.set(config, 'network', 'signet')).toBe(false);
    expect(Reflect.set(config.heartbeat, 'probeIdleMs', 1)).toBe(false);
  });

  it('reads explicit values of every key', () => {
    const config = parseConfig(
      onionFile(
        [
          'socks5_host = 10.0.0.2',
          'socks5_port = 9150',
          'tor_control_host = 127.0.0.1',
          'tor_control_port = 9151',
          'tor_control_password = hunter2',
          'onion_serving_host = 127.0.0.2',
          'onion_serving_port = 8081',
          'hidden_service_dir = /var/lib/onionmc/hs',
          'socks5_connect_timeout = 45.5',
          'pow_defenses = off',
          'pow_queue_rate = 5',
          'pow_queue_burst = 50',
          'directory_motd = Welcome',
          'nick_auth_mode = require_verified',
          `nick_auth_directory_id = ${ONION_A}:5222`,
          `nick_auth_directory_ids = ${ONION_A}:5222=dir-a.example:5222`,
          'features = neutrino_compat',
          'answer_orderbook = false',
          'handshake_network = regtest',
          'heartbeat_sweep_interval = 10',
          'heartbeat_probe_idle = 20',
          'heartbeat_pong_timeout = 5',
          'heartbeat_evict_idle = 40',
          'api = localhost:8090',
        ].join('\n'),
      ),
      FILE,
    );
    expect(config.socks5).toEqual({ kind: 'tcp', host: '10.0.0.2', port: 9150 });
    expect(config.torControl).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 9151 });
    expect(config.torControlPassword).toBe('hunter2');
    expect(config.onionServingHost).toBe('127.0.0.2');
    expect(config.onionServingPort).toBe(8081);
    expect(config.hiddenServiceDir).toBe('/var/lib/onionmc/hs');
    expect(config.socks5ConnectTimeoutMs).toBe(45_500);
    expect(config.powDefenses).toEqual({ enabled: false, queueRate: 5, queueBurst: 50 });
    expect(config.directoryMotd).toBe('Welcome');
    expect(config.nickAuth).toEqual({
      mode: 'require_verified',
      directoryId: `${ONION_A}:5222`,
      directoryIds: { [`${ONION_A}:5222`]: 'dir-a.example:5222' },
    });
    expect(config.clientFeatures).toEqual(['neutrino_compat']);
    expect(config.answerOrderbook).toBe(false);
    expect(config.network).toBe('regtest');
    expect(config.heartbeat).toEqual({
      sweepIntervalMs: 10_000,
      probeIdleMs: 20_000,
      pongTimeoutMs: 5_000,
      evictIdleMs: 40_000,
    });
    expect(config.api).toEqual({ kind: 'tcp', host: 'localhost', port: 8090 });
    expect(config.ignoredKeys).toEqual([]);
  });

  it('keeps the tor control password out of JSON and enumeration', () => {
    const config = parseConfig(onionFile('tor_control_password = hunter2\n'), FILE);
    expect(config.torControlPassword).toBe('hunter2');
    expect(JSON.stringify(config)).not.toContain('hunter2');
    expect(Object.keys(config)).not.toContain('torControlPassword');
  });

  it('treats empty values of optional keys as unset', () => {
    const config = parseConfig(
      onionFile('hidden_service_dir =\ntor_control_password =\napi =\nnick_auth_directory_id =\n'),
      FILE,
    );
    expect(config.hiddenServiceDir).toBeUndefined();
    expect(config.torControlPassword).toBeUndefined();
    expect(config.api).toBeUndefined();
    expect(config.nickAuth.directoryId).toBeUndefined();
  });

  it('exports the defaults it applies', () => {
    expect(CONFIG_DEFAULTS.socks5Port).toBe(9050);
    expect(CONFIG_DEFAULTS.heartbeatEvictIdleMs).toBe(1_500_000);
    expect(REFERENCE_DIRECTORY_MOTD).toBe(CONFIG_DEFAULTS.directoryMotd);
  });
});

describe('network mapping (docs/protocol.md §2.2)', () => {
  it.each([
    ['mainnet', 'mainnet'],
    ['testnet', 'testnet'],
    ['signet', 'signet'],
    ['regtest', 'testnet'],
  ] as const)('[BLOCKCHAIN] network = %s is sent as %s', (raw, sent) => {
    const config = parseConfig(onionFile('', `[BLOCKCHAIN]\nnetwork = ${raw}\n`), FILE);
    expect(config.network).toBe(sent);
    expect(config.blockchainNetwork).toBe(raw);
  });

  it('defaults to mainnet without a [BLOCKCHAIN] section or without its network key', () => {
    expect(parseConfig(onionFile(), FILE).network).toBe('mainnet');
    const config = parseConfig(onionFile('', '[BLOCKCHAIN]\nrpc_host = localhost\n'), FILE);
    expect(config.network).toBe('mainnet');
    expect(config.blockchainNetwork).toBe('mainnet');
  });

  it.each(['testnet4', 'Mainnet', 'bitcoin', ''])('rejects network = "%s"', (raw) => {
    const problems = problemsOf(() =>
      parseConfig(onionFile('', `[BLOCKCHAIN]\nnetwork = ${raw}\n`), FILE),
    );
    expect(problems).toEqual([
      `${FILE}: [BLOCKCHAIN] network = ${JSON.stringify(raw)}: must be one of mainnet, testnet, signet, regtest (regtest is sent as testnet)`,
    ]);
  });
});

describe('endpoints', () => {
  it('reads tor_control_host = unix:/path as a unix socket and ignores the port key', () => {
    const config = parseConfig(
      onionFile('tor_control_host = unix:/var/run/tor/control\ntor_control_port = not-a-port\n'),
      FILE,
    );
    expect(config.torControl).toEqual({ kind: 'unix', path: '/var/run/tor/control' });
    expect(config.ignoredKeys).toEqual([]);
  });

  it('reads socks5_host = unix:/path as a unix socket', () => {
    const config = parseConfig(onionFile('socks5_host = unix:/run/tor/socks\n'), FILE);
    expect(config.socks5).toEqual({ kind: 'unix', path: '/run/tor/socks' });
  });

  it('rejects unix: without a path', () => {
    const problems = problemsOf(() => parseConfig(onionFile('tor_control_host = unix:\n'), FILE));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('[MESSAGING:onion] tor_control_host = "unix:": ');
  });

  it.each([
    ['unix:/run/onionmc/api.sock', { kind: 'unix', path: '/run/onionmc/api.sock' }],
    ['127.0.0.1:8090', { kind: 'tcp', host: '127.0.0.1', port: 8090 }],
    ['[::1]:8090', { kind: 'tcp', host: '::1', port: 8090 }],
  ])('reads api = %s', (raw, expected) => {
    expect(parseConfig(onionFile(`api = ${raw}\n`), FILE).api).toEqual(expected);
  });

  it.each([
    ['0.0.0.0:8090', 'loopback'],
    ['localhost', 'unix:/path or host:port'],
    ['localhost:0', 'port'],
    ['unix:', 'socket path'],
  ])('rejects api = %s', (raw, why) => {
    const problems = problemsOf(() => parseConfig(onionFile(`api = ${raw}\n`), FILE));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(`[MESSAGING:onion] api = ${JSON.stringify(raw)}: `);
    expect(problems[0]).toContain(why);
  });
});

describe('testing mode (docs/protocol.md §8.4)', () => {
  it.each([
    ['0,0', [0, 0], false],
    [' 0 , 0 ', [0, 0], false],
    ['1, 1', [1, 1], true],
    ['1,5', [1, 5], true],
    ['0,1', [0, 1], true],
  ] as const)('regtest_count = "%s" gives %j, testing mode %s', (raw, counts, testing) => {
    const config = parseConfig(onionFile(`regtest_count = ${raw}\n`), FILE);
    expect(config.regtestCount).toEqual(counts);
    expect(config.testingMode).toBe(testing);
  });

  it('accepts non-onion directory hosts only in testing mode', () => {
    const file = (count: string): string =>
      `[MESSAGING:onion]\ntype = onion\ndirectory_nodes = 127.0.0.1:8081\nregtest_count = ${count}\n`;
    expect(parseConfig(file('1,1'), FILE).directoryNodes).toEqual(['127.0.0.1:8081']);
    const problems = problemsOf(() => parseConfig(file('0,0'), FILE));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(
      /^joinmarket\.cfg: \[MESSAGING:onion\] directory_nodes = "127\.0\.0\.1:8081": host must be a v3 onion hostname/,
    );
  });

  it.each(['1', 'a,b', '1,2,3', '1.5,2', ''])('rejects regtest_count = "%s"', (raw) => {
    const problems = problemsOf(() => parseConfig(onionFile(`regtest_count = ${raw}\n`), FILE));
    expect(problems).toEqual([
      `${FILE}: [MESSAGING:onion] regtest_count = ${JSON.stringify(raw)}: must be two integers "s,e" (0,0 outside developer regtest setups)`,
    ]);
  });
});

describe('directory_nodes', () => {
  it('trims entries, drops empty ones, removes duplicates and keeps the order', () => {
    const config = parseConfig(
      `[MESSAGING:onion]\ntype = onion\ndirectory_nodes =  ${ONION_B}:5222 , ,${ONION_A}:5222,${ONION_B}:5222,\n`,
      FILE,
    );
    expect(config.directoryNodes).toEqual([`${ONION_B}:5222`, `${ONION_A}:5222`]);
  });

  it('rejects a missing or empty list', () => {
    expect(problemsOf(() => parseConfig('[MESSAGING:onion]\ntype = onion\n', FILE))).toEqual([
      `${FILE}: [MESSAGING:onion] directory_nodes is missing: must list at least one directory node as host:port (see joinmarket.cfg.example)`,
    ]);
    expect(
      problemsOf(() =>
        parseConfig('[MESSAGING:onion]\ntype = onion\ndirectory_nodes = , ,\n', FILE),
      ),
    ).toEqual([
      `${FILE}: [MESSAGING:onion] directory_nodes = ", ,": must list at least one directory node as host:port`,
    ]);
  });

  it('rejects entries that are not host:port, bad ports, and onions with a wrong checksum', () => {
    // Same shape as ONION_A with its last base32 character changed: the checksum no longer matches.
    const badChecksum = `${ONION_A.slice(0, 55)}a.onion`;
    const problems = problemsOf(() =>
      parseConfig(
        `[MESSAGING:onion]\ntype = onion\ndirectory_nodes = ${ONION_A},${ONION_B}:99999,NOT-SERVING-ONION,${badChecksum}:5222\n`,
        FILE,
      ),
    );
    expect(problems).toHaveLength(4);
    expect(problems[0]).toContain(`directory_nodes = "${ONION_A}": `);
    expect(problems[1]).toContain(`directory_nodes = "${ONION_B}:99999": `);
    expect(problems[2]).toContain('directory_nodes = "NOT-SERVING-ONION": ');
    expect(problems[3]).toContain(
      `directory_nodes = "${badChecksum}:5222": host must be a v3 onion`,
    );
  });
});

describe('the example file', () => {
  it('parses, with the mainnet directory list and every default', async () => {
    const config = await loadConfig(EXAMPLE_PATH);
    const defaults = parseConfig(onionFile(), FILE);
    expect(config.file).toBe(EXAMPLE_PATH);
    expect(config.network).toBe('mainnet');
    expect(config.directoryNodes).toHaveLength(5);
    expect(config.directoryNodes[0]).toBe(`${ONION_A}:5222`);
    expect(config.ignoredKeys).toEqual([]);
    expect({ ...config, file: FILE, directoryNodes: [] }).toEqual({
      ...defaults,
      directoryNodes: [],
    });
  });

  it('documents the real default of every onionmc addition', async () => {
    const text = await readFile(EXAMPLE_PATH, 'utf8');
    const start = text.indexOf('# onionmc additions');
    expect(start).toBeGreaterThan(0);
    // Uncomment every "# key = value" line of the additions block.
    const additions = text.slice(start).replace(/^# ([a-z0-9_]+ =.*)$/gm, '$1');
    const uncommented = text.slice(0, start) + additions;
    const config = parseConfig(uncommented, FILE);
    expect(config.ignoredKeys).toEqual([]);
    const keys = [...additions.matchAll(/^([a-z0-9_]+) =/gm)].map((m) => m[1]);
    expect(keys).toEqual([
      'tor_control_password',
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
      ...LIMIT_KEYS,
    ]);
    expect({ ...config, file: FILE }).toEqual({ ...(await loadConfig(EXAMPLE_PATH)), file: FILE });
  });

  it('carries a signet directory list that parses when switched on', async () => {
    const text = await readFile(EXAMPLE_PATH, 'utf8');
    const signet = text
      .replace('network = mainnet', 'network = signet')
      .replace(/^directory_nodes = .*$/m, '')
      .replace(/^# (directory_nodes = .*)$/m, '$1');
    const config = parseConfig(signet, FILE);
    expect(config.network).toBe('signet');
    expect(config.directoryNodes).toHaveLength(3);
    expect(config.directoryNodes.every((d) => /^[a-z2-7]{56}\.onion:5222$/.test(d))).toBe(true);
  });
});

describe('problem reporting', () => {
  it('reports five different mistakes at once, each naming file, section, key and value', () => {
    const text = onionFile(
      [
        'socks5_port = 90x50',
        'onion_serving_port = 0',
        'pow_defenses = maybe',
        'heartbeat_pong_timeout = -5',
        'nick_auth_mode = always',
      ].join('\n'),
    );
    const problems = problemsOf(() => parseConfig(text, FILE));
    expect(problems).toHaveLength(5);
    expect(problems[0]).toBe(
      'joinmarket.cfg: [MESSAGING:onion] socks5_port = "90x50": must be a TCP port, an integer from 1 to 65535',
    );
    const expected = [
      ['socks5_port', '90x50'],
      ['onion_serving_port', '0'],
      ['pow_defenses', 'maybe'],
      ['heartbeat_pong_timeout', '-5'],
      ['nick_auth_mode', 'always'],
    ];
    for (const [key, value] of expected) {
      const prefix = `${FILE}: [MESSAGING:onion] ${key ?? ''} = "${value ?? ''}": `;
      expect(problems.filter((p) => p.startsWith(prefix))).toHaveLength(1);
    }
    // The ConfigError message carries every problem, one per line.
    try {
      parseConfig(text, FILE);
    } catch (err) {
      expect((err as Error).message.split('\n')).toEqual(problems);
    }
  });

  it('reports problems in [BLOCKCHAIN] and the onion section together', () => {
    const problems = problemsOf(() =>
      parseConfig(onionFile('socks5_port = 0\n', '[BLOCKCHAIN]\nnetwork = testnet4\n'), FILE),
    );
    expect(problems).toHaveLength(2);
    expect(problems[0]).toContain('[BLOCKCHAIN] network = "testnet4"');
    expect(problems[1]).toContain('[MESSAGING:onion] socks5_port = "0"');
  });

  it('reports syntax errors with their line numbers', () => {
    const problems = problemsOf(() =>
      parseConfig(`stray = 1\n${onionFile('just some words\n= no key\n')}`, FILE),
    );
    expect(problems).toEqual([
      `${FILE}:1: "stray = 1" comes before the first [section] header`,
      `${FILE}:5: "just some words" is not a [section] header, a comment or a "key = value" line`,
      `${FILE}:6: "= no key" is not a [section] header, a comment or a "key = value" line`,
    ]);
  });

  it('rejects a quoted empty hidden_service_dir, which JoinMarket would take literally', () => {
    const problems = problemsOf(() => parseConfig(onionFile('hidden_service_dir = ""\n'), FILE));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(
      '[MESSAGING:onion] hidden_service_dir = "\\"\\"": leave it empty',
    );
  });

  it('rejects a probe interval that is not below the eviction interval', () => {
    const problems = problemsOf(() =>
      parseConfig(onionFile('heartbeat_probe_idle = 900\nheartbeat_evict_idle = 900\n'), FILE),
    );
    expect(problems).toEqual([
      `${FILE}: [MESSAGING:onion] heartbeat_probe_idle = "900": must be less than heartbeat_evict_idle (900 s), or idle peers are evicted without a probe`,
    ]);
  });

  it.each([
    ['socks5_connect_timeout', '0'],
    ['socks5_connect_timeout', '86401'],
    ['socks5_connect_timeout', '1e3'],
    ['pow_queue_rate', '0'],
    ['pow_queue_burst', '2.5'],
    ['nick_auth_directory_id', 'a|b'],
    ['nick_auth_directory_ids', 'no-equals-sign'],
    ['nick_auth_directory_ids', 'elsewhere.example:5222=dir-a'],
    ['features', 'Neutrino Compat'],
    ['answer_orderbook', 'maybe'],
    ['handshake_network', 'regnet'],
    ['onion_serving_host', 'two words'],
    ['tor_control_port', '65536'],
  ])('rejects %s = %s', (key, value) => {
    const problems = problemsOf(() => parseConfig(onionFile(`${key} = ${value}\n`), FILE));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(`${FILE}: [MESSAGING:onion] ${key} = ${JSON.stringify(value)}: `);
  });
});

describe('the onion section', () => {
  it('is the [MESSAGING:*] section whose type is onion, whatever its name; other sections are ignored', () => {
    const text = [
      '[MESSAGING:server1]',
      'channel = joinmarket-pit',
      'socks5_port = not-read',
      '[MESSAGING:hackint]',
      'type = irc',
      'port = 6667',
      '[MESSAGING:tor.v3]',
      'type = Onion',
      `directory_nodes = ${ONION_A}:5222`,
      '[POLICY]',
      'tx_fees = 3',
      '[DAEMON]',
      'socks5_port = not-read-either',
    ].join('\n');
    const config = parseConfig(text, FILE);
    expect(config.section).toBe('MESSAGING:tor.v3');
    expect(config.socks5).toEqual({ kind: 'tcp', host: 'localhost', port: 9050 });
  });

  it('is required', () => {
    expect(problemsOf(() => parseConfig('[MESSAGING:server1]\ntype = irc\n', FILE))).toEqual([
      `${FILE}: no [MESSAGING:<name>] section has type = onion: exactly one onion message channel section is required`,
    ]);
  });

  it('must be unique', () => {
    const text = `${onionFile()}[MESSAGING:second]\ntype = onion\ndirectory_nodes = ${ONION_B}:5222\n`;
    expect(problemsOf(() => parseConfig(text, FILE))).toEqual([
      `${FILE}: [MESSAGING:onion], [MESSAGING:second] all have type = onion: exactly one onion message channel section is allowed`,
    ]);
  });

  it('merges a repeated section header, as configparser does', () => {
    const text = `${onionFile()}[POLICY]\ntx_fees = 3\n[MESSAGING:onion]\nsocks5_port = 9150\n`;
    const config = parseConfig(text, FILE);
    expect(config.socks5).toEqual({ kind: 'tcp', host: 'localhost', port: 9150 });
    expect(config.directoryNodes).toEqual([`${ONION_A}:5222`]);
  });

  it('lists unknown keys, lower-cased, in ignoredKeys', () => {
    const config = parseConfig(
      onionFile('foo = bar\nChannel = joinmarket-pit\nsocks5_port = 9050\n'),
      FILE,
    );
    expect(config.ignoredKeys).toEqual(['foo', 'channel']);
  });

  it('falls back to [DEFAULT] for missing keys, as configparser does', () => {
    const config = parseConfig(onionFile('', '[DEFAULT]\nsocks5_port = 9150\n'), FILE);
    expect(config.socks5).toEqual({ kind: 'tcp', host: 'localhost', port: 9150 });
    expect(config.ignoredKeys).toEqual([]);
  });
});

describe('file syntax matches Python configparser', () => {
  // Expected values are what Python 3.11's ConfigParser(strict=False) returns for
  // get('MESSAGING:onion', 'directory_motd') on the same text (checked on this machine).
  it.each([
    ['no inline # comments', 'directory_motd = a # b\n', 'a # b'],
    ['no inline ; comments', 'directory_motd = a ; b\n', 'a ; b'],
    ['key: value lines', 'directory_motd: hello = world\n', 'hello = world'],
    ['the first delimiter splits', 'directory_motd = x: y\n', 'x: y'],
    ['quotes are kept', 'directory_motd = "quoted"\n', '"quoted"'],
    ['true stays text', 'directory_motd = true\n', 'true'],
    ['backslashes are literal', 'directory_motd = a\\;b\\#c\\\\d\n', 'a\\;b\\#c\\\\d'],
    ['keys are case-insensitive', 'DIRECTORY_MOTD = Upper\n', 'Upper'],
    ['the last repeated key wins', 'directory_motd = first\ndirectory_motd = second\n', 'second'],
    ['indented comment lines', '   ; indented comment\ndirectory_motd = x\n', 'x'],
    ['CRLF line ends', 'directory_motd = crlf\r\nsocks5_port = 9050\r\n', 'crlf'],
    ['values and keys are trimmed', 'directory_motd   =    padded value   \n', 'padded value'],
    [
      'continuation lines',
      'directory_motd = line one\n   line two\n# comment inside\n\n  line three\n\nsocks5_port = 9050\n',
      'line one\nline two\n\nline three',
    ],
    ['trailing blank lines', 'directory_motd = only\n\n\n', 'only'],
    ['interpolation', 'directory_motd = 100%% sure, %(type)s\n', '100% sure, onion'],
  ])('%s', (_name, lines, motd) => {
    expect(parseConfig(onionFile(lines), FILE).directoryMotd).toBe(motd);
  });

  it('keeps # and ; inside values of JoinMarket keys too', () => {
    const config = parseConfig(onionFile('tor_control_password = pa#ss;word\n'), FILE);
    expect(config.torControlPassword).toBe('pa#ss;word');
  });

  it('reports a lone % as configparser does', () => {
    const problems = problemsOf(() => parseConfig(onionFile('directory_motd = 50% off\n'), FILE));
    expect(problems).toEqual([
      `${FILE}: [MESSAGING:onion] directory_motd = "50% off": "%" must be followed by "%" or "(" (configparser interpolation: write %% for a literal %)`,
    ]);
  });

  it('ignores text after the closing ] of a section header', () => {
    const text = `[MESSAGING:onion] trailing words\ntype = onion\ndirectory_nodes = ${ONION_A}:5222\n`;
    expect(parseConfig(text, FILE).section).toBe('MESSAGING:onion');
  });
});

describe('loadConfig', () => {
  it('names the file when it cannot be read', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'onionmc-config-'));
    try {
      const missing = join(dir, 'nope.cfg');
      const err: unknown = await loadConfig(missing).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConfigError);
      const problems = (err as ConfigError).problems;
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(
        new RegExp(`^${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot read`),
      );
      expect(problems[0]).toContain('ENOENT');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reads a file and keeps the path as given', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'onionmc-config-'));
    try {
      const path = join(dir, 'joinmarket.cfg');
      await writeFile(path, `\uFEFF${onionFile('socks5_port = 9150\n')}`);
      const config: OnionmcConfig = await loadConfig(path);
      expect(config.file).toBe(path);
      expect(config.socks5).toEqual({ kind: 'tcp', host: 'localhost', port: 9150 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('directory_nodes for `directory init` and the API socket keys', () => {
  const text = (lines: string[]): string =>
    [
      '[MESSAGING:onion]',
      'type = onion',
      'hidden_service_dir = /var/lib/onionmc/directory',
      ...lines,
    ].join('\n');

  it('accepts an empty or missing directory_nodes only with requireDirectoryNodes: false', () => {
    for (const lines of [[], ['directory_nodes =']]) {
      expect(() => parseConfig(text(lines), 'f.cfg')).toThrow(ConfigError);
      expect(
        parseConfig(text(lines), 'f.cfg', { requireDirectoryNodes: false }).directoryNodes,
      ).toEqual([]);
    }
  });

  it('reads api_socket_mode (octal, owner rw, nothing for others) and api_socket_group', () => {
    const base = [
      'directory_nodes = satoshi2vcg5e2ept7tjkzlkpomkobqmgtsjzegg6wipnoajadissead.onion:5222',
    ];
    const config = parseConfig(
      text([...base, 'api_socket_mode = 0600', 'api_socket_group = wallets']),
      'f.cfg',
    );
    expect(config.apiSocketMode).toBe(0o600);
    expect(config.apiSocketGroup).toBe('wallets');
    for (const bad of ['0666', '0400', '999', 'rw']) {
      expect(() => parseConfig(text([...base, `api_socket_mode = ${bad}`]), 'f.cfg')).toThrow(
        /api_socket_mode/,
      );
    }
    expect(() => parseConfig(text([...base, 'api_socket_group = a b']), 'f.cfg')).toThrow(
      /api_socket_group/,
    );
  });
});
