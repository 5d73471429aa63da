/**
 * onionmc on real Tor, end to end, offline: a private Tor network in a network namespace with
 * only `lo` (test/e2e/tor-network/private-tor-network.ts), one client tor per onionmc node, and
 * every onionmc node a separate `onionmc run` process reached through its local API.
 *
 * The onionmc processes run inside the namespace (`ip netns exec`, the harness's `exec`): tor
 * forwards an onion's streams to `onion_serving_host:onion_serving_port` = 127.0.0.1:<port> of
 * the namespace, the same TCP mapping an operator's setup uses (docs/protocol.md §8.1). Each config names its
 * tor by unix sockets (`tor_control_host = unix:...`, `socks5_host = unix:...`), which tor
 * authenticates with SAFECOOKIE.
 *
 * What is proved, over real onion services, in this order (the tests share the nodes):
 * `onionmc directory init` prints the address the directory node then serves (persistent key,
 * docs/protocol.md §8.2, SAFECOOKIE over a unix control socket, PoW defences on); a maker on an ephemeral
 * onion (docs/protocol.md §8.1) and a taker handshake with it; pubmsg; privmsg relayed by the directory node;
 * a direct taker-to-maker link (docs/protocol.md §4.5); the directory node's process restarts at the same
 * address and both reconnect (docs/protocol.md §4.6); under load (the taker privmsgs the maker
 * through the directory node and the maker pubmsgs, 10 of each a second), the directory node's tor
 * is killed (SIGKILL) and restarted: the node stays up, notices, re-creates the same onion, both
 * reconnect and traffic resumes without loss; the same for the maker's tor: the maker re-creates
 * its onion and re-handshakes under the new address (issue 12, fault tests); a cookie file that cannot be read stops `onionmc run` with
 * one line naming the file and the group to join.
 *
 * The directory node's tor restart comes before the maker's: in the other order the maker (whose
 * relocation had just reset its backoff) redialed the directory node while its onion was away,
 * and its dials then hung until the SOCKS deadline for over a minute (likely the old descriptor
 * fetched again from the HSDirs, which tor then does not ask again for a while). With the
 * clients' normal backoff the dial lands after the re-upload.
 *
 * Needs root and tor (skipped with the reason otherwise; fails when CI=true).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { ApiClient, type ApiEvent, type EventStream } from '../../src/api/client.js';
import { pollUntil } from '../helpers/poll.js';
import { isV3OnionHostname } from '../../src/wire/location.js';
import { describeWithTor } from '../helpers/prereq.js';
import {
  startPrivateTorNetwork,
  type PrivateTorNetwork,
  type TorClientHandle,
} from './tor-network/private-tor-network.js';

/** The compiled CLI (`npm test` builds it first). */
const CLI_PATH = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
/** Deadline of one onionmc start: tor must upload the onion descriptor (~1.3 s here). */
const NODE_START_TIMEOUT_MS = 60_000;
/** Deadline of one step that crosses the onion network (handshake, message). */
const STEP_TIMEOUT_MS = 30_000;
/**
 * Deadline of a reconnect to the directory node: the clients' backoff (first retry 5-11 s, then
 * 8-14 s and longer, docs/protocol.md §4.6) plus a dial, plus the time a client may take to notice
 * that its link is dead (a client's rendezvous circuit was seen here to stay open for up to 64 s
 * after the directory node's tor died), plus the time the clients' tors need to give up the
 * directory node's old descriptor. A client's tor keeps its cached descriptor while one of its
 * introduction points still acknowledges INTRODUCE1: tor info logs of a 96 s reconnect showed a
 * relay acknowledging one for the dead tor's introduction circuit 47 s after the kill, the dial
 * then waiting for a rendezvous that never came until its SOCKS deadline (20 s here); only once
 * every old introduction point refused did tor fetch the new descriptor, and the next dial
 * succeeded at once. Reconnects took 16-116 s in the runs of one afternoon; two took over
 * 120 s.
 */
const RECONNECT_TIMEOUT_MS = 240_000;
/** Deadline of a test that waits for a reconnect. */
const RECONNECT_TEST_TIMEOUT_MS = 300_000;
/** How long a node may take to notice that its tor was killed (its control connection closes). */
const NOTICE_TIMEOUT_MS = 10_000;
/**
 * How long a node may take to re-create its onion once its tor is back (bootstrapped): the onion
 * runtime's retries back off to every 10 s (src/tor/onion-runtime.ts), plus ADD_ONION and the
 * descriptor upload.
 */
const ONION_BACK_TIMEOUT_MS = 30_000;
/** Pace of the load during a fault: one privmsg and one pubmsg per tick. */
const LOAD_TICK_MS = 100;
/** Bounds of one load run: ticks, and time. */
const LOAD_MAX_TICKS = 3_000;
const LOAD_MAX_MS = 240_000;
/** Ticks the load keeps running after the recovery; everything accepted in them must arrive. */
const LOAD_TICKS_AFTER_RECOVERY = 20;

/** onion_serving_port of each serving node, inside the namespace (the tors use ports >= 20000). */
const SERVING_PORTS = { dn: 8081, maker: 8082, probe: 8083 } as const;
/** A valid onion that only fills directory_nodes before `directory init` prints ours (docs/protocol.md §2.1 list). */
const PLACEHOLDER_DIRECTORY = 'satoshi2vcg5e2ept7tjkzlkpomkobqmgtsjzegg6wipnoajadissead.onion:5222';
/** SOCKS deadline of the nodes, shorter than the 120 s default so a dead onion fails fast. */
const SOCKS_TIMEOUT_SECONDS = 20;

const ONION_LOCATION = /^([a-z2-7]{56}\.onion):5222$/;

/** /v1/info as these tests read it. */
interface Info {
  nick: string;
  role: string;
  /** `starting: ...` while tor bootstraps and the onion is published, then `running`. */
  state: string;
  location: string;
  tor?: { onion?: string; powDefenses: boolean; torVersion?: string };
  directories?: { location: string; state: string }[];
  peers?: { nick?: string; location?: string; state?: string }[];
}

/** One `onionmc run` process inside the namespace. */
interface NodeProcess {
  readonly name: string;
  readonly api: ApiClient;
  readonly logFile: string;
  readonly configFile: string;
  readonly child: ChildProcess;
  exitCode: number | null | undefined;
  readonly exited: Promise<number | null>;
}

/** Text of a config file for a node using tor client `tor` (JoinMarket keys, docs/protocol.md §2.2). */
function configText(options: {
  tor: TorClientHandle;
  directoryNodes: string;
  servingPort: number;
  hiddenServiceDir?: string;
  api?: string;
}): string {
  return [
    '[BLOCKCHAIN]',
    'network = signet',
    '',
    '[MESSAGING:onion]',
    'type = onion',
    `socks5_host = unix:${options.tor.socksSocket}`,
    'socks5_port = 9050',
    `tor_control_host = unix:${options.tor.controlSocket}`,
    'tor_control_port = 9051',
    'onion_serving_host = 127.0.0.1',
    `onion_serving_port = ${options.servingPort}`,
    `hidden_service_dir = ${options.hiddenServiceDir ?? ''}`,
    `directory_nodes = ${options.directoryNodes}`,
    'regtest_count = 0,0',
    `socks5_connect_timeout = ${SOCKS_TIMEOUT_SECONDS}`,
    ...(options.api !== undefined ? [`api = unix:${options.api}`] : []),
    '',
  ].join('\n');
}

/** Runs `node dist/cli/main.js args` outside the namespace; resolves with its exit and output. */
function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code) => {
      resolve({ code, stdout, stderr });
    });
  });
}

function isPrivmsg(event: ApiEvent, from: string, cmd: string): boolean {
  if (event.event !== 'privmsg') return false;
  const data = event.data as { from: string; cmd: string };
  return data.from === from && data.cmd === cmd;
}

describeWithTor('onionmc over a private Tor network (directory node, maker, taker)', () => {
  let network: PrivateTorNetwork | undefined;
  let workDir = '';
  const nodes = new Map<string, NodeProcess>();
  const streams: EventStream[] = [];
  const log = (msg: string): void => {
    console.info(`[onionmc-tor] ${msg}`);
  };
  /** Last resort if the worker dies: no onionmc process outlives the test run. */
  const killAll = (): void => {
    for (const node of nodes.values()) {
      if (node.exitCode === undefined && node.child.pid !== undefined) {
        try {
          process.kill(node.child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  };

  const tor = (name: string): TorClientHandle => {
    const handle = network?.clients.find((c) => c.name === name);
    if (handle === undefined) throw new Error(`no tor client ${name}`);
    return handle;
  };

  const tail = (node: NodeProcess, lines = 25): string => {
    try {
      return readFileSync(node.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  };

  /** Starts `onionmc run` in the namespace and resolves once its `/v1/info` says `running`. */
  const startNode = async (
    name: string,
    configFile: string,
    extraArgs: string[] = [],
  ): Promise<NodeProcess> => {
    const apiPath = join(workDir, `${name}.api.sock`);
    const logFile = join(workDir, `${name}.log`);
    const fd = openSync(logFile, 'a');
    const child = network!.exec(
      [
        process.execPath,
        CLI_PATH,
        'run',
        '--config',
        configFile,
        '--api',
        `unix:${apiPath}`,
        '--log-level',
        'debug',
        ...extraArgs,
      ],
      { stdio: ['ignore', fd, fd] },
    );
    closeSync(fd);
    const node: NodeProcess = {
      name,
      api: new ApiClient({ kind: 'unix', path: apiPath }),
      logFile,
      configFile,
      child,
      exitCode: undefined,
      exited: new Promise((resolve) => {
        child.once('exit', (code) => {
          node.exitCode = code;
          resolve(code);
        });
      }),
    };
    nodes.set(name, node);
    const startedAt = Date.now();
    await pollUntil(
      `${name} to start`,
      async () => {
        if (node.exitCode !== undefined)
          throw new Error(`${name} exited with ${String(node.exitCode)}:\n${tail(node)}`);
        // The API answers while the node starts (`state` is `starting: ...` until tor has
        // bootstrapped and the onion is published): the node is up once `state` is `running`.
        const current = (await node.api.call('GET', '/v1/info')) as Info;
        return current.state === 'running' ? true : undefined;
      },
      NODE_START_TIMEOUT_MS,
      100,
    ).catch((err: unknown) => {
      throw new Error(
        `${err instanceof Error ? err.message : String(err)}\n--- ${name} log:\n${tail(node)}`,
      );
    });
    log(`${name} up in ${Date.now() - startedAt} ms`);
    return node;
  };

  /** SIGTERM by PID; resolves with the exit code. */
  const stopNode = async (name: string): Promise<number | null> => {
    const node = nodes.get(name);
    if (node === undefined) return null;
    if (node.exitCode === undefined) node.child.kill('SIGTERM');
    const timer = setTimeout(() => node.child.kill('SIGKILL'), 10_000);
    const code = await node.exited;
    clearTimeout(timer);
    nodes.delete(name);
    return code;
  };

  const info = async (name: string): Promise<Info> => {
    const node = nodes.get(name);
    if (node === undefined) throw new Error(`no node ${name}`);
    return (await node.api.call('GET', '/v1/info')) as Info;
  };

  /** Waits until `name` is handshaked with its (only) directory node. */
  const directoryUp = (name: string, timeoutMs = STEP_TIMEOUT_MS): Promise<Info> =>
    pollUntil(
      `${name} handshaked with the directory node`,
      async () => {
        const current = await info(name);
        return current.directories?.every((d) => d.state === 'handshaked') === true
          ? current
          : undefined;
      },
      timeoutMs,
      100,
    );

  const events = async (name: string): Promise<EventStream> => {
    const stream = await nodes.get(name)!.api.events();
    streams.push(stream);
    return stream;
  };

  /** On a failure: the last log lines of every node, compacted (time, level, message, fields). */
  beforeEach((context) => {
    context.onTestFailed(() => {
      for (const node of nodes.values()) {
        const lines = tail(node, 40)
          .split('\n')
          .map((line) => {
            try {
              const {
                time,
                level,
                msg,
                pid: _pid,
                hostname: _host,
                ...rest
              } = JSON.parse(line) as Record<string, unknown>;
              return `${new Date(Number(time)).toISOString().slice(11, 23)} ${String(level)} ${String(msg)} ${JSON.stringify(rest).slice(0, 300)}`;
            } catch {
              return line;
            }
          });
        console.info(`--- ${node.name} (${node.logFile}):\n${lines.join('\n')}`);
      }
    });
  });

  /**
   * Traffic between the taker and the maker while a fault happens, through the directory node: each
   * tick the taker sends the maker a privmsg (`route: directory`) and the maker sends a pubmsg,
   * both by the API; what each POST answered and what arrived is recorded. Paced and bounded
   * ({@link LOAD_MAX_TICKS}, {@link LOAD_MAX_MS}).
   */
  const loads: { stop: () => void }[] = [];
  afterEach(() => {
    for (const load of loads.splice(0)) load.stop();
  });
  const startLoad = async (label: string) => {
    const taker = nodes.get('taker')!;
    const maker = nodes.get('maker')!;
    const makerEvents = await events('maker');
    const takerEvents = await events('taker');
    const privBody = (tick: number): string => `${label}-${tick}`;
    const pubMessage = (tick: number): string => `!${label} ${tick}`;
    /** Per tick: whether each POST was answered 200, and the refusals' codes. */
    const ticks: { privOk: boolean; pubOk: boolean }[] = [];
    const refusals = new Map<string, number>();
    let stopAfter = Number.POSITIVE_INFINITY;
    const post = async (api: ApiClient, path: string, body: unknown): Promise<boolean> => {
      const res = await api.request('POST', path, body).catch((err: unknown) => ({
        status: 0,
        body: { error: { code: err instanceof Error ? err.message : String(err) } },
      }));
      if (res.status === 200) return true;
      const code =
        (res.body as { error?: { code?: string } } | undefined)?.error?.code ?? `${res.status}`;
      refusals.set(code, (refusals.get(code) ?? 0) + 1);
      return false;
    };
    const startedAt = Date.now();
    const done = (async (): Promise<void> => {
      for (let tick = 0; tick < LOAD_MAX_TICKS && tick < stopAfter; tick++) {
        if (Date.now() - startedAt > LOAD_MAX_MS) throw new Error(`${label}: load ran too long`);
        const next = Date.now() + LOAD_TICK_MS;
        const [privOk, pubOk] = await Promise.all([
          post(taker.api, '/v1/privmsg', {
            to: makerNick,
            cmd: 'error',
            body: privBody(tick),
            route: 'directory',
          }),
          post(maker.api, '/v1/pubmsg', { message: pubMessage(tick) }),
        ]);
        ticks.push({ privOk, pubOk });
        // Pacing, not synchronisation: the next tick is due LOAD_TICK_MS after this one began.
        const wait = next - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      }
    })();
    void done.catch(() => undefined);
    loads.push({
      stop: () => {
        stopAfter = 0;
      },
    });
    const arrived = (): { priv: Set<string>; pub: Set<string> } => ({
      priv: new Set(
        makerEvents.received
          .filter((e) => isPrivmsg(e, takerNick, 'error'))
          .map((e) => (e.data as { body: string }).body),
      ),
      pub: new Set(
        takerEvents.received
          .filter((e) => e.event === 'pubmsg' && (e.data as { from: string }).from === makerNick)
          .map((e) => (e.data as { message: string }).message),
      ),
    });
    return {
      /** Ticks sent so far. */
      get ticks(): number {
        return ticks.length;
      },
      /**
       * Once the nodes have recovered: waits until a tick goes through again (both messages
       * accepted and arrived) within {@link STEP_TIMEOUT_MS}, runs
       * {@link LOAD_TICKS_AFTER_RECOVERY} more ticks, stops, and checks that every one of those was
       * accepted and arrived. Returns figures for the log.
       */
      async finishAfterRecovery(): Promise<string> {
        const from = ticks.length;
        const delivered = (tick: number): boolean => {
          const got = arrived();
          const t = ticks[tick];
          return (
            t !== undefined &&
            t.privOk &&
            t.pubOk &&
            got.priv.has(privBody(tick)) &&
            got.pub.has(pubMessage(tick))
          );
        };
        // Traffic resumes: a tick sent after the recovery goes through.
        const resumed = await pollUntil(
          `${label}: traffic to resume`,
          // eslint-disable-next-line @typescript-eslint/require-await -- pollUntil takes an async check
          async () => {
            for (let tick = from; tick < ticks.length; tick++) if (delivered(tick)) return tick;
            return undefined;
          },
          STEP_TIMEOUT_MS,
          50,
        );
        stopAfter = ticks.length + LOAD_TICKS_AFTER_RECOVERY;
        const after = Array.from({ length: stopAfter - resumed - 1 }, (_, i) => resumed + 1 + i);
        await done;
        // From then on nothing is refused and everything arrives.
        expect(after.filter((tick) => !ticks[tick]!.privOk || !ticks[tick]!.pubOk)).toEqual([]);
        await pollUntil(
          `${label}: every message sent after the recovery to arrive`,
          // eslint-disable-next-line @typescript-eslint/require-await -- pollUntil takes an async check
          async () => after.every(delivered) || undefined,
          STEP_TIMEOUT_MS,
          100,
        );
        const got = arrived();
        const accepted = ticks.filter((t) => t.privOk).length + ticks.filter((t) => t.pubOk).length;
        return (
          `traffic resumed at tick ${resumed} (recovery seen at tick ${from}), then ${after.length} ticks without loss; ` +
          `${ticks.length} ticks (${2 * ticks.length} messages): ${accepted} accepted, ` +
          `${got.priv.size + got.pub.size} arrived, refused ${JSON.stringify(Object.fromEntries(refusals))}`
        );
      },
    };
  };

  /** Waits until the load has sent `count` more ticks. */
  const loadRunning = (load: { ticks: number }, count = 10): Promise<true> => {
    const target = load.ticks + count;
    return pollUntil(
      'the load to run',
      // eslint-disable-next-line @typescript-eslint/require-await -- pollUntil takes an async check
      async () => (load.ticks >= target ? true : undefined),
      STEP_TIMEOUT_MS,
      50,
    );
  };

  /** Asserts that every onionmc process is still running. */
  const allUp = async (): Promise<void> => {
    for (const node of nodes.values()) {
      expect(node.exitCode, `${node.name} exited`).toBeUndefined();
      expect((await info(node.name)).state).toBe('running');
    }
  };

  const logHas = async (node: NodeProcess, text: string): Promise<boolean> =>
    (await readFile(node.logFile, 'utf8')).includes(text);

  let dnConfig = '';
  let dnLocation = '';
  let makerNick = '';
  let takerNick = '';

  beforeAll(async () => {
    process.on('exit', killAll);
    workDir = await mkdtemp(join(tmpdir(), 'onionmc-tor-e2e-'));
    if (!existsSync(CLI_PATH))
      throw new Error(`${CLI_PATH} is missing: run "npm run build" first (npm test does)`);
    const startedAt = Date.now();
    network = await startPrivateTorNetwork({ clients: ['dn', 'maker', 'taker'], logger: log });
    log(`private Tor network up in ${Date.now() - startedAt} ms`);
  });

  afterAll(async () => {
    for (const stream of streams) stream.close();
    const failures: unknown[] = [];
    await Promise.all(
      [...nodes.keys()].map((name) => stopNode(name).catch((err: unknown) => failures.push(err))),
    );
    killAll();
    process.removeListener('exit', killAll);
    await network?.stop().catch((err: unknown) => failures.push(err));
    if (workDir !== '') await rm(workDir, { recursive: true, force: true });
    if (failures.length > 0) throw failures[0];
  });

  it('directory init prints the onion address that the directory node then serves (unix control socket, cookie auth)', async () => {
    dnConfig = join(workDir, 'dn.cfg');
    const hiddenServiceDir = join(workDir, 'dn-onion');
    const base = { tor: tor('dn'), servingPort: SERVING_PORTS.dn, hiddenServiceDir };
    await writeFile(dnConfig, configText({ ...base, directoryNodes: PLACEHOLDER_DIRECTORY }));

    const init = await runCli(['directory', 'init', '--config', dnConfig]);
    expect(init.stderr).toBe('');
    expect(init.code).toBe(0);
    const address = /^onion address: (\S+)$/m.exec(init.stdout)?.[1] ?? '';
    expect(isV3OnionHostname(address)).toBe(true);
    expect(init.stdout).toContain(`directory_nodes = ${address}:5222\n`);
    expect((await readFile(join(hiddenServiceDir, 'hostname'), 'utf8')).trim()).toBe(address);
    // A second init finds the same key.
    const again = await runCli(['directory', 'init', '--config', dnConfig]);
    expect(again.stdout).toContain(`onion address: ${address}\n`);
    expect(again.stdout).toContain(`found onion key in ${hiddenServiceDir}`);

    dnLocation = `${address}:5222`;
    await writeFile(dnConfig, configText({ ...base, directoryNodes: dnLocation }));
    const dn = await startNode('dn', dnConfig);
    const dnInfo = await info('dn');
    expect(dnInfo.role).toBe('directory');
    expect(dnInfo.location).toBe(dnLocation);
    expect(dnInfo.tor?.onion).toBe(address);
    // tor 0.4.9.11 here: PoW defences on (docs/protocol.md §8.5), and said so once in the log.
    expect(dnInfo.tor?.powDefenses).toBe(true);
    const dnLog = await readFile(dn.logFile, 'utf8');
    expect(dnLog).toMatch(/"method":"SAFECOOKIE".*authenticated to tor's control port/);
    expect(
      dnLog.match(/onion service PoW defences on \(PoWQueueRate=25, PoWQueueBurst=250\)/g),
    ).toHaveLength(1);
    expect(dnLog).toContain(`"onion":"${address}"`);
  }, 90_000);

  it('a maker on an ephemeral onion and a taker handshake with the directory node over onion services', async () => {
    expect(dnLocation).not.toBe('');
    const makerConfig = join(workDir, 'maker.cfg');
    await writeFile(
      makerConfig,
      configText({
        tor: tor('maker'),
        servingPort: SERVING_PORTS.maker,
        directoryNodes: dnLocation,
      }),
    );
    const takerConfig = join(workDir, 'taker.cfg');
    await writeFile(
      takerConfig,
      configText({
        tor: tor('taker'),
        servingPort: SERVING_PORTS.probe,
        directoryNodes: dnLocation,
      }),
    );
    await Promise.all([
      startNode('maker', makerConfig, ['--maker']),
      startNode('taker', takerConfig),
    ]);

    const maker = await directoryUp('maker');
    const taker = await directoryUp('taker');
    makerNick = maker.nick;
    takerNick = taker.nick;
    expect(maker.role).toBe('maker');
    expect(maker.location).toMatch(ONION_LOCATION);
    expect(maker.location).not.toBe(dnLocation);
    expect(isV3OnionHostname(ONION_LOCATION.exec(maker.location)?.[1] ?? '')).toBe(true);
    expect(maker.tor?.onion).toBe(ONION_LOCATION.exec(maker.location)?.[1]);
    expect(taker.role).toBe('taker');
    expect(taker.location).toBe('NOT-SERVING-ONION');
    expect(taker.tor).toBeUndefined();

    // The directory node knows both, at the locations they announced.
    const peers = await pollUntil(
      'both peers at the directory node',
      async () => {
        const current = (await info('dn')).peers ?? [];
        return current.filter((p) => p.nick === makerNick || p.nick === takerNick).length === 2
          ? current
          : undefined;
      },
      STEP_TIMEOUT_MS,
    );
    expect(peers.find((p) => p.nick === makerNick)?.location).toBe(maker.location);
    expect(peers.find((p) => p.nick === takerNick)?.location).toBe('NOT-SERVING-ONION');
  }, 120_000);

  it('carries pubmsgs, privmsgs relayed by the directory node, and a direct taker-to-maker link', async () => {
    expect(makerNick).not.toBe('');
    const takerEvents = await events('taker');
    const makerEvents = await events('maker');

    // Pubmsg: the maker announces its offer; the taker hears it through the directory node.
    const offer = {
      type: 'sw0reloffer',
      oid: 0,
      minsize: 27300,
      maxsize: 1000000,
      txfee: 0,
      cjfee: '0.00002',
    };
    await nodes.get('maker')!.api.call('PUT', '/v1/offers', { offers: [offer] });
    const announced = await takerEvents.waitFor(
      "the maker's offer pubmsg",
      (e) => e.event === 'pubmsg' && (e.data as { from: string }).from === makerNick,
      STEP_TIMEOUT_MS,
    );
    expect((announced.data as { message: string }).message).toBe(
      '!sw0reloffer 0 27300 1000000 0 0.00002',
    );

    // !orderbook by pubmsg; the maker answers by a signed privmsg relayed by the directory node.
    await nodes.get('taker')!.api.call('POST', '/v1/pubmsg', { message: '!orderbook' });
    const answer = await takerEvents.waitFor(
      'the signed offer privmsg',
      (e) => isPrivmsg(e, makerNick, 'sw0reloffer'),
      STEP_TIMEOUT_MS,
    );
    expect((answer.data as { via: { kind: string; location?: string } }).via).toEqual({
      kind: 'directory',
      location: dnLocation,
    });

    // !fill through the directory node; the taker then dials the maker's onion directly.
    const fill = (await nodes.get('taker')!.api.call('POST', '/v1/privmsg', {
      to: makerNick,
      cmd: 'fill',
      body: `0 1000000 P${'ab'.repeat(32)}`,
    })) as { via: { kind: string } };
    expect(fill.via.kind).toBe('directory');
    const got = await makerEvents.waitFor(
      'the !fill at the maker',
      (e) => isPrivmsg(e, takerNick, 'fill'),
      STEP_TIMEOUT_MS,
    );
    expect((got.data as { via: { kind: string } }).via.kind).toBe('directory');
    // Each side sends its 793 on connect (docs/protocol.md §2.3), so the taker can see the link
    // up before the maker has read the taker's handshake: wait for both ends.
    const linkUp = (nick: string) => (e: { event: string; data: unknown }) =>
      e.event === 'peer' &&
      (e.data as { nick: string; up: boolean }).nick === nick &&
      (e.data as { up: boolean }).up;
    await Promise.all([
      takerEvents.waitFor(
        'a direct link from the taker to the maker',
        linkUp(makerNick),
        STEP_TIMEOUT_MS,
      ),
      makerEvents.waitFor('the direct link at the maker', linkUp(takerNick), STEP_TIMEOUT_MS),
    ]);

    // Both ways over the direct link, encrypted end to end (docs/protocol.md §7).
    const pubkey = (await nodes
      .get('maker')!
      .api.call('POST', '/v1/privmsg', { to: takerNick, cmd: 'pubkey', body: '' })) as {
      via: { kind: string };
    };
    expect(pubkey.via.kind).toBe('direct');
    const gotPubkey = await takerEvents.waitFor(
      "the maker's !pubkey",
      (e) => isPrivmsg(e, makerNick, 'pubkey'),
      STEP_TIMEOUT_MS,
    );
    expect((gotPubkey.data as { via: { kind: string } }).via.kind).toBe('direct');
    const auth = (await nodes.get('taker')!.api.call('POST', '/v1/privmsg', {
      to: makerNick,
      cmd: 'auth',
      body: 'over-the-direct-link',
    })) as {
      via: { kind: string };
    };
    expect(auth.via.kind).toBe('direct');
    const gotAuth = await makerEvents.waitFor(
      'the !auth at the maker',
      (e) => isPrivmsg(e, takerNick, 'auth'),
      STEP_TIMEOUT_MS,
    );
    expect(gotAuth.data).toMatchObject({
      body: 'over-the-direct-link',
      encrypted: true,
      via: { kind: 'direct' },
    });
  }, 120_000);

  it(
    'the directory node restarts at the same onion address and the maker and taker reconnect',
    async () => {
      expect(makerNick).not.toBe('');
      const restartedAt = Date.now();
      expect(await stopNode('dn')).toBe(0);
      await pollUntil(
        'the maker and taker to notice the directory node is gone',
        async () => {
          const states = await Promise.all(
            ['maker', 'taker'].map(async (n) => (await info(n)).directories?.[0]?.state),
          );
          return states.every((s) => s !== 'handshaked') ? true : undefined;
        },
        STEP_TIMEOUT_MS,
      );

      await startNode('dn', dnConfig);
      expect((await info('dn')).location).toBe(dnLocation);
      await Promise.all([
        directoryUp('maker', RECONNECT_TIMEOUT_MS),
        directoryUp('taker', RECONNECT_TIMEOUT_MS),
      ]);
      log(
        `maker and taker back with the restarted directory node in ${Date.now() - restartedAt} ms`,
      );

      // And it relays again: a new offer of the maker reaches the taker by pubmsg.
      const takerEvents = await events('taker');
      const offer = {
        type: 'sw0absoffer',
        oid: 1,
        minsize: 50000,
        maxsize: 2000000,
        txfee: 0,
        cjfee: '300',
      };
      await nodes.get('maker')!.api.call('PUT', '/v1/offers', { offers: [offer] });
      const announced = await takerEvents.waitFor(
        "the maker's new offer through the restarted directory node",
        (e) =>
          e.event === 'pubmsg' &&
          (e.data as { from: string; message: string }).message.startsWith('!sw0absoffer 1 '),
        STEP_TIMEOUT_MS,
      );
      expect(announced.data).toMatchObject({
        from: makerNick,
        via: { kind: 'directory', location: dnLocation },
      });
    },
    RECONNECT_TEST_TIMEOUT_MS,
  );

  it(
    "under load, the directory node's tor is killed and restarted: the node stays up, re-creates the same onion, its peers reconnect and traffic resumes",
    async () => {
      expect(makerNick).not.toBe('');
      const dn = nodes.get('dn')!;
      const load = await startLoad('dnfault');
      await loadRunning(load);
      const killedAt = Date.now();
      await network!.killClient('dn');
      // The node notices at once: its control connection closed with its tor.
      await pollUntil(
        'the directory node to notice its tor died',
        async () => (await logHas(dn, 'lost the tor control connection')) || undefined,
        NOTICE_TIMEOUT_MS,
        50,
      );
      log(`directory node noticed its tor died in ${Date.now() - killedAt} ms`);
      await network!.restartClient('dn');
      const torBackAt = Date.now();
      await pollUntil(
        'the directory node to re-create its onion',
        async () => (await logHas(dn, 'onion service re-created')) || undefined,
        ONION_BACK_TIMEOUT_MS,
        100,
      );
      const recreated = (await readFile(dn.logFile, 'utf8'))
        .split('\n')
        .find((l) => l.includes('onion service re-created'));
      expect(recreated).toContain(`"onion":"${ONION_LOCATION.exec(dnLocation)?.[1] ?? ''}"`);
      expect(recreated).toContain('"changed":false');
      log(`directory node's onion back ${Date.now() - torBackAt} ms after its tor`);
      expect((await info('dn')).location).toBe(dnLocation);
      await pollUntil(
        'the maker and taker handshaked again with the directory node',
        async () => {
          const peers = (await info('dn')).peers ?? [];
          const back = [makerNick, takerNick].every((nick) =>
            peers.some((p) => p.nick === nick && p.state === 'handshaked'),
          );
          return back ? true : undefined;
        },
        RECONNECT_TIMEOUT_MS,
        200,
      );
      await Promise.all([directoryUp('maker'), directoryUp('taker')]);
      log(
        `maker and taker back with the directory node ${Date.now() - killedAt} ms after the kill`,
      );
      await allUp();
      log(`load through the directory node: ${await load.finishAfterRecovery()}`);
      await allUp();
    },
    RECONNECT_TEST_TIMEOUT_MS,
  );

  it(
    "under load, the maker's tor is killed and restarted: the maker stays up, re-creates its onion, re-handshakes under the new address and traffic resumes",
    async () => {
      expect(makerNick).not.toBe('');
      const maker = nodes.get('maker')!;
      const before = await info('maker');
      const load = await startLoad('makerfault');
      await loadRunning(load);
      const killedAt = Date.now();
      await network!.killClient('maker');
      await pollUntil(
        'the maker to notice its tor died',
        async () => (await logHas(maker, 'lost the tor control connection')) || undefined,
        NOTICE_TIMEOUT_MS,
        50,
      );
      log(`maker noticed its tor died in ${Date.now() - killedAt} ms`);
      await network!.restartClient('maker');
      const torBackAt = Date.now();
      await pollUntil(
        'the maker to re-create its onion',
        async () => (await logHas(maker, 'onion service re-created')) || undefined,
        ONION_BACK_TIMEOUT_MS,
        100,
      );
      log(`maker's onion back ${Date.now() - torBackAt} ms after its tor`);
      const after = await pollUntil(
        'the maker on a new onion, handshaked with the directory node',
        async () => {
          const current = await info('maker');
          const up = current.directories?.every((d) => d.state === 'handshaked') === true;
          return up && current.location !== before.location ? current : undefined;
        },
        RECONNECT_TIMEOUT_MS,
        100,
      );
      log(
        `maker re-created its onion and re-handshaked ${Date.now() - killedAt} ms after the kill`,
      );
      expect(after.location).toMatch(ONION_LOCATION);
      expect(after.nick).toBe(before.nick);
      await pollUntil(
        "the maker's new location at the directory node",
        async () =>
          ((await info('dn')).peers ?? []).some(
            (p) =>
              p.nick === makerNick && p.location === after.location && p.state === 'handshaked',
          ) || undefined,
        STEP_TIMEOUT_MS,
      );
      expect(
        await logHas(maker, 'our location changed; re-handshaking with the directory nodes'),
      ).toBe(true);
      await allUp();
      log(`load through the maker: ${await load.finishAfterRecovery()}`);
      await allUp();
    },
    RECONNECT_TEST_TIMEOUT_MS,
  );

  it("stops with one clear line naming the cookie file when tor's cookie cannot be read", async () => {
    // The taker does not use its tor's control port, so its tor can lose its cookie file here.
    const taker = tor('taker');
    const moved = `${taker.cookieFile}.moved`;
    const config = join(workDir, 'probe.cfg');
    await writeFile(
      config,
      configText({ tor: taker, servingPort: SERVING_PORTS.probe, directoryNodes: dnLocation }),
    );
    await rename(taker.cookieFile, moved);
    let result: { code: number | null; stderr: string };
    try {
      const child = network!.exec(
        [process.execPath, CLI_PATH, 'run', '--config', config, '--datadir', workDir, '--maker'],
        {
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
      result = { code, stderr };
    } finally {
      await rename(moved, taker.cookieFile);
    }
    expect(result.code).toBe(1);
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(
      `cannot read tor's authentication cookie file ${taker.cookieFile} (ENOENT)`,
    );
    expect(lines[0]).toContain('debian-tor');
    expect(lines[0]).toContain('CookieAuthFileGroupReadable 1');
    expect(lines[0]).not.toMatch(/\broot\b|sudo/);
  }, 60_000);
});
