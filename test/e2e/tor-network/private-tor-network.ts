/**
 * A private Tor network on this machine for the real-Tor end-to-end suite: 3 directory
 * authorities, 3 relays (non-exit, HSDir) and one client tor per name, all on 127.0.0.1 inside a
 * fresh network namespace whose only interface is `lo`, so no tor can reach anything else.
 *
 * Every tor runs with `--defaults-torrc /dev/null -f <torrc>` (never a default configuration) as
 * a daemon (`RunAsDaemon 1`) and is stopped by the PID from its `PidFile`. The clients' unix
 * sockets (`socks.sock`, `control.sock`) live in their data directories and are reachable from
 * outside the namespace, so onionmc can run outside it; {@link PrivateTorNetwork.exec} runs a
 * command inside it.
 *
 * Source of every torrc option, the key procedure and the timings: docs/tor-test-network.md
 * (verified with tor 0.4.9.11 on these machines). Test code: no test framework in here.
 */
import {
  execFile,
  execFileSync,
  spawn,
  type ChildProcess,
  type SpawnOptions,
} from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import {
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A client tor of the network and how to reach it. */
export interface TorClientHandle {
  /** The name given to {@link startPrivateTorNetwork} or `addClient`. */
  name: string;
  /** Its DataDirectory (mode 0700); also holds `notice.log`, `pid` and the unix sockets. */
  dataDir: string;
  /** `SocksPort 127.0.0.1:<socksPort> ExtendedErrors`: reachable inside the namespace only. */
  socksPort: number;
  /** `SocksPort unix:<socksSocket> ExtendedErrors`: reachable from any namespace. */
  socksSocket: string;
  /** `ControlPort 127.0.0.1:<controlPort>`: reachable inside the namespace only. */
  controlPort: number;
  /** `ControlSocket <controlSocket>`: reachable from any namespace. */
  controlSocket: string;
  /** The 32-byte control auth cookie (`CookieAuthentication 1`); rewritten at each start. */
  cookieFile: string;
  /** PID of the running tor daemon (from its PidFile). */
  pid: number;
}

/** A running private Tor network; see {@link startPrivateTorNetwork}. */
export interface PrivateTorNetwork {
  /** Name of the network namespace (`onionmc-<pid>-<hex>`), as listed by `ip netns list`. */
  namespace: string;
  /** Directory holding every tor's DataDirectory and torrc. */
  baseDir: string;
  /** The running clients, in start order (a stopped client leaves the list until restarted). */
  clients: TorClientHandle[];
  /** Spawns `args` inside the namespace (`ip netns exec <namespace> ...args`). */
  exec(args: string[], options?: SpawnOptions): ChildProcess;
  /** Starts one more client tor and resolves once it logged `Bootstrapped 100%`. */
  addClient(name: string): Promise<TorClientHandle>;
  /** Stops a client tor (SIGTERM by PID) and waits for it to exit; its data is kept. */
  stopClient(name: string): Promise<void>;
  /**
   * Kills a client tor with SIGKILL by PID (a crash: no clean close of its circuits or control
   * connections) and waits for it to be gone; its data is kept, `restartClient` starts it again.
   */
  killClient(name: string): Promise<void>;
  /** Stops the client if running, starts it again on the same ports and data, waits for 100%. */
  restartClient(name: string): Promise<TorClientHandle>;
  /** Kills every tor by PID, waits for them, deletes the namespace and the temp dir. Idempotent. */
  stop(): Promise<void>;
}

/** Options of {@link startPrivateTorNetwork}. */
export interface PrivateTorNetworkOptions {
  /** One client tor per name: 1-19 ASCII letters or digits (a tor nickname), unique. */
  clients: string[];
  /**
   * Directory for the tors' data: must be new or empty; created if missing and kept by `stop()`
   * (the caller owns it, e.g. to read logs). Only `[A-Za-z0-9._/-]`, and short enough for the
   * unix socket paths (107 bytes). Default: a fresh `onionmc-tornet-*` under the OS temp dir,
   * deleted by `stop()`.
   */
  baseDir?: string;
  /** Where authority keys are cached between runs. Default: `<repo>/.tor-cache/`. */
  keyCacheDir?: string;
  /** Deadline for the whole start, in ms. Default {@link DEFAULT_START_TIMEOUT_MS}. */
  timeoutMs?: number;
  /** Progress lines (timings, cache use). Default: silent. */
  logger?: (msg: string) => void;
}

/** Default deadline of a start: a missed first voting slot costs about one more minute. */
export const DEFAULT_START_TIMEOUT_MS = 120_000;
/** Directory authorities in the network. */
const AUTHORITY_COUNT = 3;
/** Non-exit HSDir relays in the network. */
const RELAY_COUNT = 3;
/** How often readiness conditions are re-checked. */
const POLL_INTERVAL_MS = 100;
/** How long a SIGTERMed tor may take to exit before it gets SIGKILL (ShutdownWaitLength is 0). */
const STOP_GRACE_MS = 10_000;
/** How long a started tor may take to write its PidFile after its launcher exited. */
const PIDFILE_TIMEOUT_MS = 10_000;
/** How long to wait for a SIGKILLed tor to disappear. */
const KILL_WAIT_MS = 5_000;
/** Lifetime of a generated authority certificate (`tor-gencert -m`), in months. */
const AUTHORITY_CERT_MONTHS = 12;
/** A cached authority certificate expiring sooner than this is regenerated. */
const AUTHORITY_CERT_MIN_REMAINING_MS = 30 * 24 * 3600 * 1000;
/** Lines of each notice.log quoted in a start-up error. */
const LOG_TAIL_LINES = 12;
/** Lowest and highest first port of a run; every node takes the next free ones. */
const PORT_BASE_MIN = 20_000;
const PORT_BASE_MAX = 60_000;
/** `sun_path` is 108 bytes on Linux, including the terminating NUL. */
const MAX_UNIX_SOCKET_PATH_BYTES = 107;
/** Layout version of the key cache; bump when its content changes. */
const KEY_CACHE_SUBDIR = 'private-tor-network-v1';
/** Files of a cached authority, relative to its cache dir. */
const CACHED_AUTHORITY_FILES = [
  'authority_identity_key',
  'authority_signing_key',
  'authority_certificate',
  'keys/secret_id_key',
  'keys/ed25519_master_id_secret_key',
  'keys/ed25519_master_id_public_key',
  'fingerprint',
  'v3ident',
] as const;
/** Files copied from the cache into an authority's `DataDirectory/keys/` (never the identity key). */
const AUTHORITY_KEY_FILES_TO_INSTALL: readonly (readonly [string, string])[] = [
  ['authority_signing_key', 'authority_signing_key'],
  ['authority_certificate', 'authority_certificate'],
  ['keys/secret_id_key', 'secret_id_key'],
  ['keys/ed25519_master_id_secret_key', 'ed25519_master_id_secret_key'],
  ['keys/ed25519_master_id_public_key', 'ed25519_master_id_public_key'],
];

type Role = 'authority' | 'relay' | 'client';

/** Subdirectory of baseDir holding the data directories of each role. */
const ROLE_DIRS: Readonly<Record<Role, string>> = {
  authority: 'authorities',
  relay: 'relays',
  client: 'clients',
};

/** One tor of the network. */
interface TorNode {
  role: Role;
  name: string;
  dataDir: string;
  torrcPath: string;
  /** PID of the running daemon, undefined when not running. */
  pid: number | undefined;
  /** Size of notice.log when the current run started: earlier lines belong to older runs. */
  logOffset: number;
  /** Authority ports. */
  orPort?: number;
  dirPort?: number;
  /** Client handle (ports and paths), without the pid. */
  client?: Omit<TorClientHandle, 'pid'>;
}

/** An authority's identity as the DirAuthority lines need it. */
interface AuthorityIdentity {
  /** Cache directory holding its keys. */
  cacheDir: string;
  /** Relay RSA identity fingerprint, 40 hex digits. */
  fingerprint: string;
  /** v3 authority identity (fingerprint line of the certificate), 40 hex digits. */
  v3ident: string;
}

/** Result of running a program to completion. */
interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `file args` to completion; never rejects on a non-zero exit (see `code`). */
function run(file: string, args: readonly string[], input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err !== null && typeof err.code !== 'number') {
        reject(new Error(`cannot run ${file}: ${err.message}`, { cause: err }));
        return;
      }
      resolve({ code: err === null ? 0 : (err.code as number), stdout, stderr });
    });
    // A program that exits without reading its stdin must not crash us with EPIPE.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input ?? '');
  });
}

/** Runs `file args` and throws with its output when it exits non-zero. */
async function runOrThrow(file: string, args: readonly string[], input?: string): Promise<string> {
  const result = await run(file, args, input);
  if (result.code !== 0) {
    throw new Error(
      `${file} ${args.join(' ')} exited with ${String(result.code)}:\n${result.stdout}${result.stderr}`,
    );
  }
  return result.stdout;
}

/**
 * Arguments of `ip` that run tor inside `namespace` with only `torrc` as configuration: the one
 * way this file starts tor (`--defaults-torrc /dev/null`: never a default configuration).
 */
function torInNamespaceArgs(namespace: string, torrc: string, ...extra: string[]): string[] {
  return [
    'netns',
    'exec',
    namespace,
    'tor',
    '--defaults-torrc',
    '/dev/null',
    '-f',
    torrc,
    ...extra,
  ];
}

/** Resolves after `ms` milliseconds (the poll interval of the readiness loops). */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Root of the repository (this file is test/e2e/tor-network/private-tor-network.ts). */
function repoRoot(): string {
  return fileURLToPath(new URL('../../../', import.meta.url));
}

/** Whether `pid` is a live (not zombie) process named `tor`: never signal anything else. */
function isTorAlive(pid: number): boolean {
  try {
    const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    if (comm !== 'tor') return false;
    const statLine = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = statLine.slice(statLine.lastIndexOf(')') + 2, statLine.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Sends `signal` to `pid` if it is still a live tor. */
function signalTor(pid: number, signal: NodeJS.Signals): void {
  if (!isTorAlive(pid)) return;
  try {
    process.kill(pid, signal);
  } catch {
    // exited in between
  }
}

/** Polls until every pid is gone or the deadline passes; returns the pids still alive. */
async function waitForExit(pids: readonly number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const alive = pids.filter(isTorAlive);
    if (alive.length === 0 || Date.now() >= deadline) return alive;
    await delay(POLL_INTERVAL_MS / 2);
  }
}

/** SIGTERM, wait, SIGKILL the stragglers, wait. Throws if a tor survives SIGKILL. */
async function killTors(pids: readonly number[]): Promise<void> {
  for (const pid of pids) signalTor(pid, 'SIGTERM');
  const stubborn = await waitForExit(pids, STOP_GRACE_MS);
  for (const pid of stubborn) signalTor(pid, 'SIGKILL');
  const survivors = await waitForExit(stubborn, KILL_WAIT_MS);
  if (survivors.length > 0)
    throw new Error(`tor processes survived SIGKILL: ${survivors.join(', ')}`);
}

/** Last `lines` lines of a file, or a note that it is missing. */
function tailOf(path: string, lines = LOG_TAIL_LINES): string {
  try {
    const all = readFileSync(path, 'utf8').trimEnd().split('\n');
    return all.slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Size of a file in bytes, 0 when missing. */
async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/** The part of a file after `offset` bytes ('' when missing). */
async function readFrom(path: string, offset: number): Promise<string> {
  try {
    return (await readFile(path)).subarray(offset).toString('utf8');
  } catch {
    return '';
  }
}

/** Nickname -> flags of every router in a consensus document (`r` then `s` lines, dir-spec). */
export function parseConsensusFlags(consensus: string): Map<string, Set<string>> {
  const flags = new Map<string, Set<string>>();
  let current: string | undefined;
  for (const line of consensus.split('\n')) {
    if (line.startsWith('r ')) {
      current = line.split(' ')[1];
    } else if (line.startsWith('s ') && current !== undefined) {
      flags.set(current, new Set(line.slice(2).trim().split(' ')));
      current = undefined;
    }
  }
  return flags;
}

/** Unix time of `dir-key-expires` in an authority certificate, or undefined. */
function certificateExpiry(certificate: string): number | undefined {
  const match = /^dir-key-expires (\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)$/m.exec(certificate);
  if (match === null) return undefined;
  return Date.parse(`${match[1]}T${match[2]}Z`);
}

/** Reads a cached authority if complete and valid for long enough, else undefined. */
async function readCachedAuthority(cacheDir: string): Promise<AuthorityIdentity | undefined> {
  try {
    for (const file of CACHED_AUTHORITY_FILES) await stat(join(cacheDir, file));
    const certificate = await readFile(join(cacheDir, 'authority_certificate'), 'utf8');
    const expiry = certificateExpiry(certificate);
    if (expiry === undefined || expiry - Date.now() < AUTHORITY_CERT_MIN_REMAINING_MS)
      return undefined;
    const fingerprint = (await readFile(join(cacheDir, 'fingerprint'), 'utf8')).trim();
    const v3ident = (await readFile(join(cacheDir, 'v3ident'), 'utf8')).trim();
    if (!/^[0-9A-F]{40}$/.test(fingerprint) || !/^[0-9A-F]{40}$/.test(v3ident)) return undefined;
    return { cacheDir, fingerprint, v3ident };
  } catch {
    return undefined;
  }
}

/**
 * Generates the keys of authority `index` into a temp dir under `cacheRoot`: the v3 authority
 * identity, signing key and certificate with tor-gencert (no `-a`: the DirPort changes each run
 * and only the DirAuthority lines carry it), then the relay identity keys and fingerprint with
 * `tor --list-fingerprint` run inside the namespace (private-network.md "Authority keys").
 */
async function generateAuthority(
  cacheRoot: string,
  index: number,
  namespace: string,
): Promise<string> {
  const dir = await mkdtemp(join(cacheRoot, `.new-auth${index}-`));
  await runOrThrow(
    'tor-gencert',
    [
      '--create-identity-key',
      '--passphrase-fd',
      '0',
      '-i',
      join(dir, 'authority_identity_key'),
      '-s',
      join(dir, 'authority_signing_key'),
      '-c',
      join(dir, 'authority_certificate'),
      '-m',
      String(AUTHORITY_CERT_MONTHS),
    ],
    '\n',
  );
  const certificate = await readFile(join(dir, 'authority_certificate'), 'utf8');
  const v3ident = /^fingerprint ([0-9A-F]{40})$/m.exec(certificate)?.[1];
  if (v3ident === undefined) throw new Error(`no fingerprint line in ${dir}/authority_certificate`);

  const dataDir = join(dir, 'data');
  await mkdir(dataDir, { mode: 0o700 });
  const torrc = join(dir, 'fingerprint.torrc');
  await writeFile(
    torrc,
    [
      `DataDirectory ${dataDir}`,
      `Nickname auth${index}`,
      // Required to be a relay; --list-fingerprint binds nothing.
      'ORPort 127.0.0.1:1',
      'SocksPort 0',
      'GeoIPFile ""',
      'GeoIPv6File ""',
      `Log notice file ${join(dir, 'fingerprint.log')}`,
      '',
    ].join('\n'),
  );
  await runOrThrow('ip', torInNamespaceArgs(namespace, torrc, '--list-fingerprint'));
  const fingerprintLine = await readFile(join(dataDir, 'fingerprint'), 'utf8');
  const fingerprint = fingerprintLine.trim().split(' ')[1];
  if (fingerprint === undefined || !/^[0-9A-F]{40}$/.test(fingerprint)) {
    throw new Error(`unexpected fingerprint file from tor --list-fingerprint: ${fingerprintLine}`);
  }
  await mkdir(join(dir, 'keys'), { mode: 0o700 });
  for (const file of [
    'secret_id_key',
    'ed25519_master_id_secret_key',
    'ed25519_master_id_public_key',
  ]) {
    await rename(join(dataDir, 'keys', file), join(dir, 'keys', file));
  }
  await rm(dataDir, { recursive: true, force: true });
  await writeFile(join(dir, 'fingerprint'), `${fingerprint}\n`);
  await writeFile(join(dir, 'v3ident'), `${v3ident}\n`);
  return dir;
}

/**
 * The identity of authority `index`, from the cache when valid, else generated and published
 * into the cache by an atomic rename (parallel runs may race: the first rename wins and the
 * others use its keys).
 */
async function ensureAuthority(
  cacheRoot: string,
  index: number,
  namespace: string,
  log: (msg: string) => void,
): Promise<AuthorityIdentity> {
  const cacheDir = join(cacheRoot, `auth${index}`);
  const cached = await readCachedAuthority(cacheDir);
  if (cached !== undefined) return cached;
  const startedAt = Date.now();
  const fresh = await generateAuthority(cacheRoot, index, namespace);
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      await rename(fresh, cacheDir);
      break;
    } catch {
      const winner = await readCachedAuthority(cacheDir);
      if (winner !== undefined) {
        await rm(fresh, { recursive: true, force: true });
        return winner;
      }
      // A stale or partial entry: replace it.
      await rm(cacheDir, { recursive: true, force: true });
    }
  }
  const result = await readCachedAuthority(cacheDir);
  if (result === undefined) throw new Error(`could not publish authority keys into ${cacheDir}`);
  log(`generated keys of auth${index} in ${Date.now() - startedAt} ms (cached in ${cacheDir})`);
  return result;
}

/** Networks not yet stopped, for the process exit and signal handlers. */
const liveNetworks = new Set<Network>();
let areExitHandlersInstalled = false;

/** Synchronous last-resort cleanup when the process exits with networks still running. */
function cleanupOnExit(): void {
  for (const network of liveNetworks) network.stopSync();
}

/** SIGINT/SIGTERM: clean up, then let the signal do what it would have done. */
function cleanupOnSignal(signal: NodeJS.Signals): void {
  cleanupOnExit();
  uninstallExitHandlers();
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}
const onSigint = (): void => {
  cleanupOnSignal('SIGINT');
};
const onSigterm = (): void => {
  cleanupOnSignal('SIGTERM');
};

function installExitHandlers(): void {
  if (areExitHandlersInstalled) return;
  areExitHandlersInstalled = true;
  process.on('exit', cleanupOnExit);
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
}

function uninstallExitHandlers(): void {
  if (!areExitHandlersInstalled) return;
  areExitHandlersInstalled = false;
  process.removeListener('exit', cleanupOnExit);
  process.removeListener('SIGINT', onSigint);
  process.removeListener('SIGTERM', onSigterm);
}

/** Blocks the thread for `ms` (only in the synchronous exit path). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Validates a client name: it becomes a tor nickname and a directory name. */
function checkClientName(name: string): void {
  if (!/^[A-Za-z0-9]{1,19}$/.test(name)) {
    throw new Error(`client name ${JSON.stringify(name)} must be 1-19 ASCII letters or digits`);
  }
}

class Network implements PrivateTorNetwork {
  readonly namespace: string;
  readonly baseDir: string;
  readonly clients: TorClientHandle[] = [];
  private readonly ownsBaseDir: boolean;
  private readonly log: (msg: string) => void;
  private readonly timeoutMs: number;
  private readonly nodes = new Map<string, TorNode>();
  private authorities: AuthorityIdentity[] = [];
  private nextPort: number;
  private isNamespaceCreated = false;
  private stopPromise: Promise<void> | undefined;

  constructor(init: {
    namespace: string;
    baseDir: string;
    ownsBaseDir: boolean;
    log: (msg: string) => void;
    timeoutMs: number;
  }) {
    this.namespace = init.namespace;
    this.baseDir = init.baseDir;
    this.ownsBaseDir = init.ownsBaseDir;
    this.log = init.log;
    this.timeoutMs = init.timeoutMs;
    this.nextPort = randomInt(PORT_BASE_MIN, PORT_BASE_MAX);
  }

  private allocatePort(): number {
    const port = this.nextPort;
    this.nextPort += 1;
    return port;
  }

  private get isStopped(): boolean {
    return this.stopPromise !== undefined;
  }

  /** Creates the namespace, brings lo up, turns off delayed ACKs, checks there is no way out. */
  async createNamespace(): Promise<void> {
    // Set first: if this process dies during `ip netns add`, the exit handler still deletes it.
    this.isNamespaceCreated = true;
    await runOrThrow('ip', ['netns', 'add', this.namespace]);
    const ipn = (...args: string[]): Promise<string> =>
      runOrThrow('ip', ['-n', this.namespace, ...args]);
    await ipn('link', 'set', 'lo', 'up');
    // Delayed ACKs stalled ~3 circuits in 10 at ~88 ms per round trip (private-network.md).
    for (const dst of ['127.0.0.0/8', '127.0.0.1']) {
      const route = `route replace table local local ${dst} dev lo proto kernel scope host`;
      await ipn(...`${route} src 127.0.0.1 quickack 1`.split(' '));
    }
    const links = (await ipn('-o', 'link', 'show')).trim().split('\n');
    const names = links.map((line) => line.split(':')[1]?.trim().split('@')[0]);
    if (names.length !== 1 || names[0] !== 'lo') {
      throw new Error(
        `namespace ${this.namespace} has interfaces other than lo: ${names.join(', ')}`,
      );
    }
    const route = await run('ip', ['-n', this.namespace, 'route', 'get', '1.1.1.1']);
    if (route.code === 0) {
      throw new Error(`namespace ${this.namespace} has a route out: ${route.stdout.trim()}`);
    }
  }

  /** Loads or generates the three authorities' keys. */
  async prepareAuthorities(keyCacheDir: string): Promise<void> {
    const cacheRoot = join(keyCacheDir, KEY_CACHE_SUBDIR);
    await mkdir(cacheRoot, { recursive: true, mode: 0o700 });
    const startedAt = Date.now();
    const indexes = Array.from({ length: AUTHORITY_COUNT }, (_, i) => i + 1);
    this.authorities = await Promise.all(
      indexes.map((index) => ensureAuthority(cacheRoot, index, this.namespace, this.log)),
    );
    this.log(`authority keys ready in ${Date.now() - startedAt} ms (${cacheRoot})`);
  }

  /** Options every tor of the network carries (private-network.md "Options common to every node"). */
  private commonLines(nickname: string, dataDir: string): string[] {
    const lines = [
      'TestingTorNetwork 1',
      `DataDirectory ${dataDir}`,
      `PidFile ${join(dataDir, 'pid')}`,
      'RunAsDaemon 1',
      `Nickname ${nickname}`,
      `Log notice file ${join(dataDir, 'notice.log')}`,
      'ClientUseIPv6 0',
      'Sandbox 0',
      'ShutdownWaitLength 0',
      // KIST adds ~15-100 ms per onion round trip on loopback; Vanilla ~1.5 ms.
      'Schedulers Vanilla',
      // Saves ~0.8 s of CPU per start.
      'GeoIPFile ""',
      'GeoIPv6File ""',
      'PathsNeededToBuildCircuits 0.67',
      'TestingDirAuthVoteHSDir *',
      'TestingMinExitFlagThreshold 0',
      'V3AuthNIntervalsValid 2',
    ];
    this.authorities.forEach((authority, i) => {
      const node = this.nodes.get(`authority:auth${i + 1}`);
      if (node?.orPort === undefined || node.dirPort === undefined) {
        throw new Error(`authority auth${i + 1} has no ports`);
      }
      lines.push(
        `DirAuthority auth${i + 1} orport=${node.orPort} no-v2 v3ident=${authority.v3ident} ` +
          `127.0.0.1:${node.dirPort} ${authority.fingerprint}`,
      );
    });
    return lines;
  }

  /** DataDirectory of a node: `<baseDir>/<authorities|relays|clients>/<name>`. */
  private dataDirOf(role: Role, name: string): string {
    return join(this.baseDir, ROLE_DIRS[role], name);
  }

  /** Registers a node and creates its DataDirectory (0700: tor refuses laxer modes). */
  private async createNode(
    role: Role,
    name: string,
    extra: Partial<TorNode> = {},
  ): Promise<TorNode> {
    const dataDir = this.dataDirOf(role, name);
    await mkdir(join(this.baseDir, ROLE_DIRS[role]), { recursive: true, mode: 0o700 });
    await mkdir(dataDir, { mode: 0o700 });
    await chmod(dataDir, 0o700);
    const node: TorNode = {
      role,
      name,
      dataDir,
      torrcPath: join(dataDir, 'torrc'),
      pid: undefined,
      logOffset: 0,
      ...extra,
    };
    this.nodes.set(`${role}:${name}`, node);
    return node;
  }

  /** Creates the authorities and relays with their ports, data dirs and keys (no torrc yet). */
  async createInfrastructureNodes(): Promise<void> {
    for (let i = 1; i <= AUTHORITY_COUNT; i += 1) {
      const node = await this.createNode('authority', `auth${i}`, {
        orPort: this.allocatePort(),
        dirPort: this.allocatePort(),
      });
      const keysDir = join(node.dataDir, 'keys');
      await mkdir(keysDir, { mode: 0o700 });
      const authority = this.authorities[i - 1];
      if (authority === undefined) throw new Error(`keys of auth${i} missing`);
      for (const [from, to] of AUTHORITY_KEY_FILES_TO_INSTALL) {
        await copyFile(join(authority.cacheDir, from), join(keysDir, to));
        await chmod(join(keysDir, to), 0o600);
      }
    }
    for (let i = 1; i <= RELAY_COUNT; i += 1) {
      await this.createNode('relay', `relay${i}`, { orPort: this.allocatePort() });
    }
  }

  /** Writes every authority's and relay's torrc (private-network.md "Shape that works"). */
  async writeInfrastructureTorrcs(): Promise<void> {
    // The first 8-second voting slot should start ~7 s after launch, when every relay has
    // uploaded its descriptor; otherwise the first consensus misses relays and costs a minute.
    const votingStartOffsetSec = (Math.floor(Date.now() / 1000) + 1 + 7) % 8;
    const guards = this.authorities.map((authority) => `$${authority.fingerprint}`).join(',');
    for (const node of this.nodes.values()) {
      if (node.role === 'authority') {
        const lines = [
          ...this.commonLines(node.name, node.dataDir),
          'SocksPort 0',
          'Address 127.0.0.1',
          `ORPort 127.0.0.1:${String(node.orPort)} IPv4Only`,
          `DirPort 127.0.0.1:${String(node.dirPort)}`,
          'AuthoritativeDirectory 1',
          'V3AuthoritativeDirectory 1',
          'ExitRelay 0',
          'ExitPolicy reject *:*',
          'AssumeReachable 1',
          'AuthDirTestReachability 0',
          'AuthDirVoteStableGuaranteeMinUptime 0',
          // Only the authorities get Guard: a relay used as directory guard before it has
          // microdescriptors makes clients wait tor's fixed 10 s retry.
          `TestingDirAuthVoteGuard ${guards}`,
          'TestingDirAuthVoteGuardIsStrict 1',
          'TestingV3AuthInitialVotingInterval 8',
          'TestingV3AuthInitialVoteDelay 2',
          'TestingV3AuthInitialDistDelay 2',
          'V3AuthVotingInterval 10',
          'V3AuthVoteDelay 2',
          'V3AuthDistDelay 2',
          `TestingV3AuthVotingStartOffset ${votingStartOffsetSec}`,
        ];
        await writeFile(node.torrcPath, `${lines.join('\n')}\n`);
      } else if (node.role === 'relay') {
        const lines = [
          ...this.commonLines(node.name, node.dataDir),
          'SocksPort 0',
          'Address 127.0.0.1',
          `ORPort 127.0.0.1:${String(node.orPort)} IPv4Only`,
          'ExitRelay 0',
          'ExitPolicy reject *:*',
          'AssumeReachable 1',
        ];
        await writeFile(node.torrcPath, `${lines.join('\n')}\n`);
      }
    }
  }

  /** Creates a client node and writes its torrc. */
  async createClientNode(name: string): Promise<TorNode> {
    checkClientName(name);
    if (this.nodes.has(`client:${name}`)) throw new Error(`client ${name} already exists`);
    const dataDir = this.dataDirOf('client', name);
    const client: Omit<TorClientHandle, 'pid'> = {
      name,
      dataDir,
      socksPort: this.allocatePort(),
      socksSocket: join(dataDir, 'socks.sock'),
      controlPort: this.allocatePort(),
      controlSocket: join(dataDir, 'control.sock'),
      cookieFile: join(dataDir, 'control_auth_cookie'),
    };
    for (const path of [client.socksSocket, client.controlSocket]) {
      if (Buffer.byteLength(path) > MAX_UNIX_SOCKET_PATH_BYTES) {
        throw new Error(
          `unix socket path too long (max ${MAX_UNIX_SOCKET_PATH_BYTES} bytes): ${path}`,
        );
      }
    }
    const node = await this.createNode('client', name, { client });
    const lines = [
      ...this.commonLines(name, dataDir),
      `SocksPort 127.0.0.1:${client.socksPort} ExtendedErrors`,
      // ExtendedErrors here too: the dialer reports tor's onion errors (0xF0-0xF7) by name.
      `SocksPort unix:${client.socksSocket} ExtendedErrors`,
      `ControlPort 127.0.0.1:${client.controlPort}`,
      `ControlSocket ${client.controlSocket}`,
      'CookieAuthentication 1',
      'SocksTimeout 30',
    ];
    await writeFile(node.torrcPath, `${lines.join('\n')}\n`);
    return node;
  }

  /** Starts one tor daemon in the namespace and records its PID from the PidFile. */
  private async launch(node: TorNode): Promise<void> {
    const pidFile = join(node.dataDir, 'pid');
    await rm(pidFile, { force: true });
    if (node.client !== undefined) {
      for (const path of [node.client.socksSocket, node.client.controlSocket]) {
        await unlink(path).catch(() => undefined);
      }
    }
    node.logOffset = await sizeOf(join(node.dataDir, 'notice.log'));
    const result = await run('ip', torInNamespaceArgs(this.namespace, node.torrcPath));
    if (result.code !== 0) {
      throw new Error(
        `tor ${node.name} failed to start (exit ${String(result.code)}):\n${result.stdout}${result.stderr}\n` +
          `notice.log:\n${tailOf(join(node.dataDir, 'notice.log'))}`,
      );
    }
    // RunAsDaemon: the launcher exits once the daemon is up; the PidFile names the daemon.
    const deadline = Date.now() + PIDFILE_TIMEOUT_MS;
    for (;;) {
      const text = await readFile(pidFile, 'utf8').catch(() => '');
      const pid = Number.parseInt(text.trim(), 10);
      if (Number.isInteger(pid) && pid > 0) {
        node.pid = pid;
        return;
      }
      if (Date.now() >= deadline) throw new Error(`tor ${node.name} wrote no PidFile ${pidFile}`);
      await delay(POLL_INTERVAL_MS / 4);
    }
  }

  /** Starts every node of the given roles that is not running, in parallel. */
  async launchAll(roles: readonly Role[]): Promise<void> {
    const startedAt = Date.now();
    const pending = [...this.nodes.values()].filter(
      (node) => node.pid === undefined && roles.includes(node.role),
    );
    const results = await Promise.allSettled(pending.map((node) => this.launch(node)));
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure !== undefined) throw failure.reason;
    this.log(
      `${pending.length} tors (${roles.join(', ')}) launched in ${Date.now() - startedAt} ms`,
    );
  }

  /** Why the consensus is not complete yet, or undefined when every relay is Running+Stable+HSDir. */
  private async consensusProblem(): Promise<string | undefined> {
    const relays = [...this.nodes.values()].filter((node) => node.role === 'relay');
    let best = 'no authority has a consensus yet';
    for (const node of this.nodes.values()) {
      if (node.role !== 'authority') continue;
      // The document the authority serves at /tor/status-vote/current/consensus-microdesc.
      const text = await readFile(join(node.dataDir, 'cached-microdesc-consensus'), 'utf8').catch(
        () => undefined,
      );
      if (text === undefined) continue;
      const flags = parseConsensusFlags(text);
      const missing = relays
        .filter((relay) => {
          const relayFlags = flags.get(relay.name);
          return !['Running', 'Stable', 'HSDir'].every((flag) => relayFlags?.has(flag) === true);
        })
        .map((relay) => relay.name);
      if (missing.length === 0) return undefined;
      best = `consensus of ${node.name} lacks Running+Stable+HSDir for ${missing.join(', ')}`;
    }
    return best;
  }

  /** Names of the given clients that have not logged `Bootstrapped 100%` in their current run. */
  private async unbootstrapped(nodes: readonly TorNode[]): Promise<string[]> {
    const pending: string[] = [];
    for (const node of nodes) {
      const log = await readFrom(join(node.dataDir, 'notice.log'), node.logOffset);
      if (!log.includes('Bootstrapped 100%')) pending.push(node.name);
    }
    return pending;
  }

  /** Throws with the log tail of any node that was started and has died. */
  private checkAlive(nodes: readonly TorNode[]): void {
    for (const node of nodes) {
      if (node.pid !== undefined && !isTorAlive(node.pid)) {
        throw new Error(
          `tor ${node.name} (pid ${node.pid}) exited unexpectedly; notice.log:\n` +
            tailOf(join(node.dataDir, 'notice.log')),
        );
      }
    }
  }

  /** The log tails of the nodes, for a timeout error. */
  private tails(nodes: readonly TorNode[]): string {
    return nodes
      .map(
        (node) =>
          `--- ${node.name} (${node.dataDir}/notice.log):\n${tailOf(join(node.dataDir, 'notice.log'))}`,
      )
      .join('\n');
  }

  /**
   * Polls until `isDone` returns undefined (it returns what is still missing otherwise) while
   * every node in `watched` stays alive; throws at `deadline` with their notice.log tails.
   */
  private async pollUntil(
    what: string,
    watched: readonly TorNode[],
    deadline: number,
    isDone: () => Promise<string | undefined>,
  ): Promise<void> {
    const startedAt = Date.now();
    for (;;) {
      this.checkAlive(watched);
      const missing = await isDone();
      if (missing === undefined) {
        this.log(`${what} after ${Date.now() - startedAt} ms of waiting`);
        return;
      }
      if (Date.now() >= deadline) {
        throw new Error(
          `private Tor network ${this.namespace}: no ${what} within the ${this.timeoutMs} ms ` +
            `deadline (${missing})\n${this.tails([...this.nodes.values()])}`,
        );
      }
      await delay(POLL_INTERVAL_MS);
    }
  }

  /** Waits until an authority's consensus lists every relay Running+Stable+HSDir. */
  async waitForConsensus(deadline: number): Promise<void> {
    const infrastructure = [...this.nodes.values()].filter((node) => node.role !== 'client');
    await this.pollUntil('complete consensus', infrastructure, deadline, () =>
      this.consensusProblem(),
    );
  }

  /** Waits until every node in `clients` logged `Bootstrapped 100%` in its current run. */
  async waitForBootstrap(clients: readonly TorNode[], deadline: number): Promise<void> {
    await this.pollUntil('client bootstrap', clients, deadline, async () => {
      const pending = await this.unbootstrapped(clients);
      return pending.length === 0 ? undefined : `not bootstrapped: ${pending.join(', ')}`;
    });
  }

  /** The handle of a running client node. */
  private handleOf(node: TorNode): TorClientHandle {
    if (node.client === undefined || node.pid === undefined) {
      throw new Error(`client ${node.name} is not running`);
    }
    return { ...node.client, pid: node.pid };
  }

  /** Registers the running clients' handles (after start or restart). */
  publishClients(nodes: readonly TorNode[]): TorClientHandle[] {
    return nodes.map((node) => {
      const handle = this.handleOf(node);
      this.clients.push(handle);
      return handle;
    });
  }

  exec(args: string[], options: SpawnOptions = {}): ChildProcess {
    if (this.isStopped) throw new Error(`private Tor network ${this.namespace} is stopped`);
    return spawn('ip', ['netns', 'exec', this.namespace, ...args], options);
  }

  async addClient(name: string): Promise<TorClientHandle> {
    if (this.isStopped) throw new Error(`private Tor network ${this.namespace} is stopped`);
    const node = await this.createClientNode(name);
    await this.launch(node);
    await this.waitForBootstrap([node], Date.now() + this.timeoutMs);
    const [handle] = this.publishClients([node]);
    return handle!;
  }

  private clientNode(name: string): TorNode {
    const node = this.nodes.get(`client:${name}`);
    if (node === undefined) throw new Error(`no client named ${JSON.stringify(name)}`);
    return node;
  }

  async stopClient(name: string): Promise<void> {
    const node = this.clientNode(name);
    if (node.pid === undefined) return;
    await killTors([node.pid]);
    node.pid = undefined;
    const index = this.clients.findIndex((handle) => handle.name === name);
    if (index >= 0) this.clients.splice(index, 1);
  }

  async killClient(name: string): Promise<void> {
    const node = this.clientNode(name);
    if (node.pid === undefined) return;
    signalTor(node.pid, 'SIGKILL');
    const survivors = await waitForExit([node.pid], KILL_WAIT_MS);
    if (survivors.length > 0) throw new Error(`tor ${name} survived SIGKILL: ${node.pid}`);
    node.pid = undefined;
    const index = this.clients.findIndex((handle) => handle.name === name);
    if (index >= 0) this.clients.splice(index, 1);
  }

  async restartClient(name: string): Promise<TorClientHandle> {
    if (this.isStopped) throw new Error(`private Tor network ${this.namespace} is stopped`);
    const node = this.clientNode(name);
    await this.stopClient(name);
    await this.launch(node);
    await this.waitForBootstrap([node], Date.now() + this.timeoutMs);
    const [handle] = this.publishClients([node]);
    return handle!;
  }

  stop(): Promise<void> {
    this.stopPromise ??= this.doStop();
    return this.stopPromise;
  }

  private async doStop(): Promise<void> {
    // Every step runs even if an earlier one failed; the first failure is rethrown at the end.
    const failures: unknown[] = [];
    const step = async (action: () => Promise<unknown>): Promise<void> => {
      try {
        await action();
      } catch (err) {
        failures.push(err);
      }
    };
    await step(async () => {
      const pids = [...this.nodes.values()].flatMap((node) =>
        node.pid === undefined ? [] : [node.pid],
      );
      await killTors(pids);
      for (const node of this.nodes.values()) node.pid = undefined;
      this.clients.splice(0, this.clients.length);
    });
    if (this.isNamespaceCreated) {
      await step(async () => {
        const result = await run('ip', ['netns', 'del', this.namespace]);
        const list = await runOrThrow('ip', ['netns', 'list']);
        if (result.code !== 0 && list.split('\n').some((l) => l.split(' ')[0] === this.namespace)) {
          throw new Error(`ip netns del ${this.namespace} failed: ${result.stderr.trim()}`);
        }
        this.isNamespaceCreated = false;
      });
    }
    if (this.ownsBaseDir) {
      await step(() => rm(this.baseDir, { recursive: true, force: true, maxRetries: 3 }));
    }
    liveNetworks.delete(this);
    if (liveNetworks.size === 0) uninstallExitHandlers();
    if (failures.length > 0) throw failures[0];
    this.log(`stopped ${this.namespace}`);
  }

  /** Synchronous cleanup for process exit: SIGKILL by PID, delete namespace and temp dir. */
  stopSync(): void {
    const pids = [...this.nodes.values()].flatMap((node) =>
      node.pid === undefined ? [] : [node.pid],
    );
    for (const pid of pids) signalTor(pid, 'SIGKILL');
    const deadline = Date.now() + KILL_WAIT_MS;
    while (pids.some(isTorAlive) && Date.now() < deadline) sleepSync(20);
    for (const node of this.nodes.values()) node.pid = undefined;
    if (this.isNamespaceCreated) {
      try {
        execFileSync('ip', ['netns', 'del', this.namespace], { stdio: 'ignore' });
        this.isNamespaceCreated = false;
      } catch {
        // best effort on exit
      }
    }
    if (this.ownsBaseDir) rmSync(this.baseDir, { recursive: true, force: true, maxRetries: 3 });
    liveNetworks.delete(this);
  }
}

/**
 * Starts a private Tor network: 3 directory authorities, 3 non-exit HSDir relays and one client
 * tor per name in `options.clients`, all on 127.0.0.1 in a fresh network namespace
 * (`onionmc-<pid>-<hex>`) whose only interface is `lo` (checked before any tor starts: one
 * link, and `ip route get 1.1.1.1` fails). Ports start at a random base in 20000-60000.
 *
 * Authority keys come from `keyCacheDir` when present and valid for 30 more days, else they are
 * generated (tor-gencert, ~1 s of CPU each) and cached there.
 *
 * The authorities and relays start first; once an authority's consensus (its
 * `cached-microdesc-consensus`, the document its DirPort serves at
 * `/tor/status-vote/current/consensus-microdesc`) lists every relay Running, Stable and HSDir,
 * the clients start, and the promise resolves when every client's notice.log says
 * `Bootstrapped 100%` (about 10 s in all here). Clients started together with the authorities
 * get 404s for the consensus and back off, which cost up to 20 s more in measurements here.
 * Needs root, `ip`, `tor` and `tor-gencert`. `stop()` also runs on process exit, SIGINT and
 * SIGTERM (synchronously: SIGKILL by PID, namespace and temp dir deleted).
 *
 * @throws {Error} when not root, a tor fails to start or dies, or the network is not ready within
 *   `timeoutMs` (the message carries the tail of every notice.log). Everything started so far is
 *   stopped before the error is thrown.
 */
export async function startPrivateTorNetwork(
  options: PrivateTorNetworkOptions,
): Promise<PrivateTorNetwork> {
  const log = options.logger ?? ((): void => undefined);
  const timeoutMs = options.timeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  for (const name of options.clients) checkClientName(name);
  if (new Set(options.clients).size !== options.clients.length) {
    throw new Error(`client names must be unique: ${options.clients.join(', ')}`);
  }
  if (process.getuid?.() !== 0) throw new Error('a private Tor network needs root (ip netns)');

  const ownsBaseDir = options.baseDir === undefined;
  let baseDir: string;
  if (options.baseDir === undefined) {
    baseDir = await mkdtemp(join(tmpdir(), 'onionmc-tornet-'));
  } else {
    baseDir = options.baseDir;
    await mkdir(baseDir, { recursive: true, mode: 0o700 });
    // Old data (a consensus, a pid file) would fool the readiness checks.
    if ((await readdir(baseDir)).length > 0) throw new Error(`baseDir is not empty: ${baseDir}`);
  }
  if (!/^[A-Za-z0-9._/-]+$/.test(baseDir)) {
    if (ownsBaseDir) await rm(baseDir, { recursive: true, force: true });
    throw new Error(
      `baseDir must contain only [A-Za-z0-9._/-] (it goes into torrc lines): ${baseDir}`,
    );
  }

  const network = new Network({
    namespace: `onionmc-${process.pid}-${randomBytes(3).toString('hex')}`,
    baseDir,
    ownsBaseDir,
    log,
    timeoutMs,
  });
  liveNetworks.add(network);
  installExitHandlers();
  const startedAt = Date.now();
  try {
    await network.createNamespace();
    log(`namespace ${network.namespace} ready (only lo, no route out); data in ${baseDir}`);
    await network.prepareAuthorities(options.keyCacheDir ?? join(repoRoot(), '.tor-cache'));
    await network.createInfrastructureNodes();
    const clientNodes: TorNode[] = [];
    for (const name of options.clients) clientNodes.push(await network.createClientNode(name));
    await network.writeInfrastructureTorrcs();
    await network.launchAll(['authority', 'relay']);
    await network.waitForConsensus(deadline);
    // Started only now, clients fetch a complete consensus at once (see the TSDoc above).
    await network.launchAll(['client']);
    await network.waitForBootstrap(clientNodes, deadline);
    network.publishClients(clientNodes);
    log(`private Tor network ready in ${Date.now() - startedAt} ms`);
    return network;
  } catch (err) {
    await network.stop().catch((stopErr: unknown) => {
      log(`cleanup after failed start also failed: ${String(stopErr)}`);
    });
    throw err;
  }
}
