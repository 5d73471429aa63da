/**
 * The daemon: turns a validated configuration into a running node. It decides the role as
 * JoinMarket does (docs/protocol.md §2.2: a node whose own location is the only entry of `directory_nodes` is
 * a directory node; otherwise a maker if it serves, else a taker), builds the transports for
 * testing mode (plain loopback TCP, docs/protocol.md §8.4) or Tor (control port + SOCKS5, docs/protocol.md §8), and starts
 * the node and the local API. The local API listens first, before Tor is reached, so an operator
 * can watch a slow start (`/v1/info` `state`); components start in dependency order and stop in
 * reverse. One AbortController spans a start: `stop()` aborts it, so a start waiting on tor ends
 * at once, and `stop()` has a deadline.
 *
 * Tor mode, by role:
 *
 * | role      | onion service                                   | outbound      | start order              |
 * | --------- | ----------------------------------------------- | ------------- | ------------------------ |
 * | directory | key of hidden_service_dir, fixed address (§8.2) | none (§2.2)   | listener, onion          |
 * | maker     | new key per start, `Flags=DiscardPK` (§8.1)     | SOCKS5 (§8.3) | SOCKS check, onion, node |
 * | taker     | none                                            | SOCKS5 (§8.3) | SOCKS check, node        |
 *
 * A lost control connection (tor restarted) re-creates the onion (src/tor/onion-runtime.ts); a
 * maker whose address changed re-handshakes its directories under the new one
 * (`ClientNode.relocate`). Startup failures (control port or SOCKS port unreachable, cookie file
 * unreadable, password refused) are thrown with the message the tor modules compose, which names
 * the address or file and the torrc line or group that fixes it.
 */
import { ApiServer, CLIENT_EVENT_NAMES, type ApiBackend } from '../api/server.js';
import type { OnionmcConfig } from '../config/config.js';
import { OnionmcError } from '../errors.js';
import type { Logger } from '../log.js';
import { createNickIdentity, type NickIdentity } from '../message/nick.js';
import { SocksDialer } from '../peer/socks-transport.js';
import {
  TcpDialer,
  TcpServerTransport,
  type Dialer,
  type ServerTransport,
} from '../peer/transport.js';
import { loadOrCreateOnionKey, type OnionKey } from '../tor/onion-key.js';
import { OnionRuntime, type OnionKeySource } from '../tor/onion-runtime.js';
import {
  isV3OnionHostname,
  NOT_SERVING_ONION,
  ONION_VIRTUAL_PORT,
  type Location,
} from '../wire/location.js';
import { ClientNode, type ClientRole } from '../node/client-node.js';
import { DirectoryNode } from '../node/directory-node.js';
import type { BackoffOptions } from '../node/backoff.js';
import { DaemonMetrics } from './metrics.js';
import { delay, waitForTorBootstrap, type BootstrapPhase } from './tor-bootstrap.js';
import { VERSION } from './version.js';

/** How often a start that is still waiting (on tor) logs where it is, ms. */
export const START_PROGRESS_LOG_MS = 10_000;
/**
 * How long a stop may take, ms, as docs/operating.md "Stopping" promises: every peer and API
 * connection closed (what was queued flushed, a peer that does not take it within 1 s cut off) and
 * the onion removed within 3 s of SIGTERM, under any load. Each component gets its share below.
 */
export const STOP_BOUND_MS = 3_000;
/** How long the node (its peers, src/node/) may take to stop within {@link STOP_BOUND_MS}, ms. */
const NODE_STOP_MS = 1_500;
/** How long removing the onion service (DEL_ONION to tor) may take within {@link STOP_BOUND_MS}, ms. */
const ONION_STOP_MS = 1_000;
/**
 * How long `stop()` may take before it gives up waiting and rejects, ms: a backstop past
 * {@link STOP_BOUND_MS} (systemd's TimeoutStopSec is 20 s).
 */
export const STOP_DEADLINE_MS = 5_000;

/** The role a node runs as. */
export type NodeRole = 'directory' | ClientRole;

/** Options of a {@link Daemon}. */
export interface DaemonOptions {
  readonly config: OnionmcConfig;
  readonly logger: Logger;
  /** For a node that is not a directory: `maker` serves, `taker` (the default) does not. */
  readonly clientRole?: ClientRole;
  /** Overrides the configured local API endpoint. */
  readonly api?: OnionmcConfig['api'];
  /** Injected for tests; default a fresh random nick key (the reference makes one per start). */
  readonly identity?: NickIdentity;
  /** Injected for tests; default plain TCP in testing mode, SOCKS5 through tor in Tor mode. */
  readonly dialer?: Dialer;
  /** Directory reconnect backoff (tests shorten it). */
  readonly backoff?: BackoffOptions;
  /** Delays of re-creating the onion after a lost control connection (tests shorten them). */
  readonly onionReconnect?: { readonly initialMs: number; readonly maxMs: number };
  /** Deadline of stop(), ms; default {@link STOP_DEADLINE_MS}. */
  readonly stopDeadlineMs?: number;
  /** Interval of the "still starting" log lines, ms; default {@link START_PROGRESS_LOG_MS}. */
  readonly progressLogMs?: number;
  /** Poll interval of tor's bootstrap phase, ms (tests shorten it). */
  readonly bootstrapPollMs?: number;
  /**
   * An already-listening socket for the onion serving port (socket activation, `onionmc run
   * --listen-fd`): a directory node or maker accepts on it instead of binding
   * onion_serving_host:port, so whoever created it knew the port first (tests bind port 0).
   */
  readonly listenFd?: number;
  /**
   * In-process alternative to {@link listenFd}: the listener a directory node or maker accepts
   * on, already bound (tests bind port 0 and read it back before writing the config).
   */
  readonly server?: ServerTransport;
}

/** Where a start is, as `/v1/info` `state` shows it. */
export type DaemonState =
  | 'stopped'
  | 'starting: opening the local API'
  | 'starting: checking the tor SOCKS port'
  | 'starting: connecting to tor'
  | `starting: waiting for tor bootstrap ${number}%`
  | 'starting: publishing onion'
  | 'starting: starting the node'
  | 'running'
  | 'stopping';

/**
 * Features a maker or taker advertises in its 793 (docs/protocol.md §9.1): it answers 798 pings, reads `;F:`
 * peerlist entries and answers nick-authentication challenges.
 */
export const CLIENT_FEATURES: Readonly<Record<string, boolean>> = Object.freeze({
  nick_auth: true,
  peerlist_features: true,
  ping: true,
});

/**
 * The features of a maker's or taker's 793: {@link CLIENT_FEATURES} without `nick_auth` when
 * `nick_auth_mode = disabled` (the client's off switch, docs/protocol.md §13.2), plus the
 * configured `features` (e.g. `neutrino_compat`).
 */
export function clientFeatures(config: OnionmcConfig): Record<string, boolean> {
  const features: Record<string, boolean> = { ...CLIENT_FEATURES };
  if (config.nickAuth.mode === 'disabled') delete features['nick_auth'];
  for (const name of config.clientFeatures) features[name] = true;
  return features;
}

/** Features a directory node advertises in its 795 (docs/protocol.md §2.4: ng always sends ping and peerlist_features). */
export function directoryFeatures(config: OnionmcConfig): Record<string, boolean> {
  return {
    peerlist_features: true,
    ping: true,
    ...(config.nickAuth.mode !== 'disabled' ? { nick_auth: true } : {}),
  };
}

/** Our location in testing mode: `127.0.0.1:<onion_serving_port>` (docs/protocol.md §8.4). */
export function testingModeLocation(config: OnionmcConfig): string {
  return `127.0.0.1:${config.onionServingPort}`;
}

/**
 * True when `ownLocation` is the only entry of directory_nodes (docs/protocol.md §2.2 `get_our_peer_info`).
 * `localhost` and `127.0.0.1` are the same host here, as they are for the reference's listener.
 */
export function isDirectoryFor(config: OnionmcConfig, ownLocation: string): boolean {
  if (config.directoryNodes.length !== 1) return false;
  const only = config.directoryNodes[0] ?? '';
  return only === ownLocation || only.replace(/^localhost:/, '127.0.0.1:') === ownLocation;
}

/**
 * The peer locations a directory node admits in Tor mode: v3 onions and NOT-SERVING-ONION, as the
 * ng directory does (docs/protocol.md §2.1, §2.5; NG: jmcore/src/jmcore/models.py `PeerInfo`).
 */
export function isTorPeerLocation(location: Location): boolean {
  return location.kind === 'not-serving' || isV3OnionHostname(location.host);
}

/** Resolves with `promise`, or rejects with the signal's reason as soon as it aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/** A listener of every event of the node, whichever node runs: `(event name, payload)`. */
export type NodeEventListener = (name: string, payload: unknown) => void;

/** A running onionmc node: a directory node, a maker or a taker, plus its local API. */
export class Daemon {
  readonly #options: DaemonOptions;
  readonly #logger: Logger;
  readonly identity: NickIdentity;
  readonly metrics: DaemonMetrics;
  readonly #listeners = new Set<NodeEventListener>();
  /** Directory location -> when it last carried anything to us (ms since the epoch). */
  readonly #directoryLastMessage = new Map<string, number>();
  readonly #directoriesSeenUp = new Set<string>();
  #role: NodeRole | undefined;
  #directory: DirectoryNode | undefined;
  #client: ClientNode | undefined;
  #api: ApiServer | undefined;
  #onion: OnionRuntime | undefined;
  #state: DaemonState = 'stopped';
  #startedAt = 0;
  #bootstrap: BootstrapPhase | undefined;
  #torVersion: string | undefined;
  /** Spans one start..stop; aborted by stop(). */
  #controller: AbortController | undefined;
  #stopping: Promise<void> | undefined;
  #unsubscribe: (() => void)[] = [];

  constructor(options: DaemonOptions) {
    this.#options = options;
    this.#logger = options.logger;
    this.identity = options.identity ?? createNickIdentity();
    this.metrics = new DaemonMetrics(
      {
        role: () => this.#role,
        counters: () => (this.#directory ?? this.#client)?.counters.snapshot() ?? {},
        peers: () => this.#peerStates(),
        uptimeSeconds: () => this.uptimeSeconds,
      },
      VERSION,
    );
  }

  /** The role, once started. */
  get role(): NodeRole | undefined {
    return this.#role;
  }

  /** Where the daemon is: `starting: ...`, `running`, `stopping`, `stopped`. */
  get state(): DaemonState {
    return this.#state;
  }

  /** Seconds since start() was called (0 when stopped). */
  get uptimeSeconds(): number {
    return this.#startedAt === 0 ? 0 : Math.floor((Date.now() - this.#startedAt) / 1000);
  }

  /** The maker or taker node, once started (undefined for a directory node). */
  get client(): ClientNode | undefined {
    return this.#client;
  }

  /** The directory node, once started (undefined for a maker or taker). */
  get directory(): DirectoryNode | undefined {
    return this.#directory;
  }

  /** The local API, when one was configured and started. */
  get api(): ApiServer | undefined {
    return this.#api;
  }

  /**
   * Subscribes to every event of the node (a maker's or taker's {@link CLIENT_EVENT_NAMES}, a
   * directory node's `relay`), also for a node that starts after the call.
   * @returns a function that unsubscribes.
   */
  onNodeEvent(listener: NodeEventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Opens the local API, then starts the node. A failed start undoes what had started (the
   * daemon can then be started again). In Tor mode a maker or directory node first waits for
   * tor to bootstrap, then for its onion descriptor to be uploaded; `state` and a log line at
   * least every {@link START_PROGRESS_LOG_MS} say which.
   * @throws OnionmcError `ERR_API` when the local API cannot listen (the message names the
   *   endpoint and why); `ERR_LISTEN` when a listener cannot bind; `ERR_CLOSED` when stop() ran
   *   meanwhile; ConfigError for an unusable hidden_service_dir; TorControlError
   *   (`ERR_TOR_CONTROL_UNREACHABLE`, `ERR_TOR_AUTH`, `ERR_TOR_COMMAND`, `ERR_TOR_TIMEOUT`)
   *   when tor cannot be used; SocksError when tor's SOCKS port does not answer (maker, taker).
   */
  async start(): Promise<void> {
    if (this.#controller !== undefined) return;
    const controller = new AbortController();
    this.#controller = controller;
    this.#startedAt = Date.now();
    const progress = setInterval(() => {
      this.#logger.info({ state: this.#state, elapsedS: this.uptimeSeconds }, 'still starting');
    }, this.#options.progressLogMs ?? START_PROGRESS_LOG_MS);
    try {
      const api = this.#options.api ?? this.#options.config.api;
      if (api !== undefined) {
        this.#setState('starting: opening the local API');
        this.#api = new ApiServer(this.#backend(), this.#logger, {
          socketMode: this.#options.config.apiSocketMode,
          socketGroup: this.#options.config.apiSocketGroup,
        });
        this.#api.maxEventBufferBytes = this.#options.config.limits.apiEventBufferBytes;
        await this.#api.listen(api);
      }
      await this.#startNode(controller.signal);
      controller.signal.throwIfAborted();
      this.#setState('running');
    } catch (err) {
      const aborted = controller.signal.aborted;
      await this.stop();
      if (aborted) throw new OnionmcError('ERR_CLOSED', 'stopped while starting', { cause: err });
      throw err;
    } finally {
      clearInterval(progress);
    }
  }

  #setState(state: DaemonState): void {
    if (state === this.#state) return;
    this.#state = state;
    this.#logger.debug({ state }, 'daemon state');
  }

  async #startNode(signal: AbortSignal): Promise<void> {
    if (this.#options.config.testingMode) await this.#startTestingMode();
    else await this.#startTorMode(signal);
  }

  /** Testing mode (docs/protocol.md §8.4): plain TCP on loopback, location `127.0.0.1:<onion_serving_port>`. */
  async #startTestingMode(): Promise<void> {
    const { config } = this.#options;
    const ownServingLocation = testingModeLocation(config);
    const dialer = this.#options.dialer ?? new TcpDialer();
    this.#setState('starting: starting the node');
    if (isDirectoryFor(config, ownServingLocation)) {
      this.#role = 'directory';
      this.#directory = this.#createDirectory(ownServingLocation);
      await this.#directory.start();
      return;
    }
    const role = this.#options.clientRole ?? 'taker';
    this.#role = role;
    this.#client = this.#createClient(
      role,
      role === 'maker' ? ownServingLocation : NOT_SERVING_ONION,
      dialer,
    );
    await this.#client.start();
  }

  /**
   * Tor mode (docs/protocol.md §8): the role comes from the persistent key, read offline before tor is asked
   * (a node whose `<onion>:5222` is the only directory_nodes entry is a directory node, docs/protocol.md
   * §2.2); a directory node serves that onion (docs/protocol.md §8.2), a maker a new one per start (docs/protocol.md
   * §8.1), a taker none; makers and takers dial through SOCKS5 (docs/protocol.md §8.3).
   */
  async #startTorMode(signal: AbortSignal): Promise<void> {
    const { config } = this.#options;
    const key =
      config.hiddenServiceDir === undefined
        ? undefined
        : await this.#loadKey(config.hiddenServiceDir);
    const ownPersistentLocation =
      key === undefined ? undefined : `${key.onionAddress}:${ONION_VIRTUAL_PORT}`;
    if (
      key !== undefined &&
      ownPersistentLocation !== undefined &&
      isDirectoryFor(config, ownPersistentLocation)
    ) {
      await this.#startTorDirectory(key, ownPersistentLocation, signal);
      return;
    }
    if (
      ownPersistentLocation !== undefined &&
      config.directoryNodes.includes(ownPersistentLocation)
    ) {
      this.#logger.warn(
        { location: ownPersistentLocation, directoryNodes: config.directoryNodes },
        'directory_nodes lists our own onion among others: a directory node must list only itself (docs/protocol.md §2.2); running as a maker or taker',
      );
    }
    const role = this.#options.clientRole ?? 'taker';
    this.#role = role;
    this.#setState('starting: checking the tor SOCKS port');
    const dialer = this.#options.dialer ?? (await untilAborted(this.#socksDialer(), signal));
    let ownLocation = NOT_SERVING_ONION;
    if (role === 'maker') {
      if (key !== undefined) {
        this.#logger.warn(
          { hiddenServiceDir: config.hiddenServiceDir, onion: key.onionAddress },
          'this maker serves the persistent onion of hidden_service_dir: a fixed address lets others link its offers over time',
        );
      }
      await this.#waitForTor(signal);
      const onion = this.#onionRuntime(
        key === undefined ? { kind: 'ephemeral' } : { kind: 'persistent', key },
      );
      // The location is announced only once tor reports the descriptor uploaded (docs/protocol.md §8.1).
      this.#setState('starting: publishing onion');
      ownLocation = `${await untilAborted(onion.start(), signal)}:${ONION_VIRTUAL_PORT}`;
    } else if (key !== undefined) {
      this.#logger.info(
        { hiddenServiceDir: config.hiddenServiceDir },
        'hidden_service_dir is not used by a taker',
      );
    }
    this.#setState('starting: starting the node');
    const client = this.#createClient(role, ownLocation, dialer);
    this.#client = client;
    // A re-created ephemeral onion has a new address: re-handshake every directory under it.
    this.#onion?.onRecreated((address) => {
      const location = `${address}:${ONION_VIRTUAL_PORT}`;
      if (location === client.location) return;
      this.#logger.info(
        { from: client.location, to: location },
        'our location changed; re-handshaking with the directory nodes',
      );
      client.relocate(location);
    });
    await client.start();
  }

  /** A directory node on its persistent onion (docs/protocol.md §8.2): listener first, then the onion. */
  async #startTorDirectory(key: OnionKey, ownLocation: string, signal: AbortSignal): Promise<void> {
    this.#role = 'directory';
    this.#setState('starting: starting the node');
    // On Tor, admit only what ng admits (docs/protocol.md §2.1, §2.5): v3 onions and NOT-SERVING-ONION.
    this.#directory = this.#createDirectory(ownLocation, isTorPeerLocation);
    await this.#directory.start();
    await this.#waitForTor(signal);
    const onion = this.#onionRuntime({ kind: 'persistent', key });
    this.#setState('starting: publishing onion');
    await untilAborted(onion.start(), signal);
    this.#logger.info({ location: ownLocation }, 'directory node reachable on its onion');
  }

  /** Waits for tor's bootstrap to reach 100 %, logging each change of percentage. */
  async #waitForTor(signal: AbortSignal): Promise<void> {
    const { config } = this.#options;
    this.#setState('starting: connecting to tor');
    let last = -1;
    this.#torVersion = await waitForTorBootstrap({
      control: config.torControl,
      password: config.torControlPassword,
      logger: this.#logger,
      signal,
      ...(this.#options.bootstrapPollMs !== undefined
        ? { pollMs: this.#options.bootstrapPollMs }
        : {}),
      onVersion: (version) => {
        this.#torVersion = version;
      },
      onPhase: (phase) => {
        this.#bootstrap = phase;
        this.#setState(`starting: waiting for tor bootstrap ${phase.progress}%`);
        if (phase.progress !== last) {
          last = phase.progress;
          this.#logger.info(
            { progress: phase.progress, summary: phase.summary },
            phase.progress >= 100 ? 'tor is bootstrapped' : 'waiting for tor to bootstrap',
          );
        }
      },
    });
  }

  /**
   * The directory node at `ownLocation`, listening on onion_serving_host:port; its nick-auth
   * directory-id is the configured one or its own location, lower-cased (docs/protocol.md §9.6).
   */
  #createDirectory(
    ownLocation: string,
    acceptLocation?: (location: Location) => boolean,
  ): DirectoryNode {
    const { config } = this.#options;
    const directory = new DirectoryNode({
      identity: this.identity,
      network: config.network,
      ownLocation,
      motd: config.directoryMotd,
      server:
        this.#options.server ??
        new TcpServerTransport(
          config.onionServingHost,
          config.onionServingPort,
          config.limits.listenBacklog,
          this.#options.listenFd,
        ),
      logger: this.#logger,
      features: directoryFeatures(config),
      limits: config.limits.policy,
      maxPeers: config.limits.maxPeers,
      maxPendingHandshakes: config.limits.maxPendingHandshakes,
      handshakeTimeoutMs: config.limits.handshakeTimeoutMs,
      maxQueuedBytes: config.limits.maxQueuedBytes,
      heartbeat: config.heartbeat,
      ...(acceptLocation !== undefined ? { acceptLocation } : {}),
      nickAuth: {
        mode: config.nickAuth.mode,
        directoryId: config.nickAuth.directoryId ?? ownLocation.toLowerCase(),
      },
    });
    this.#unsubscribe.push(
      directory.onRelay((payload) => {
        this.#emit('relay', payload);
      }),
    );
    return directory;
  }

  /** A maker (listening on onion_serving_host:port) or taker linked to every configured directory. */
  #createClient(role: ClientRole, ownLocation: string, dialer: Dialer): ClientNode {
    const { config } = this.#options;
    const client = new ClientNode({
      role,
      identity: this.identity,
      network: config.network,
      ownLocation,
      directories: config.directoryNodes,
      dialer,
      ...(role === 'maker'
        ? {
            server:
              this.#options.server ??
              new TcpServerTransport(
                config.onionServingHost,
                config.onionServingPort,
                undefined,
                this.#options.listenFd,
              ),
          }
        : {}),
      logger: this.#logger,
      features: clientFeatures(config),
      answerOrderbook: config.answerOrderbook,
      nickAuthDirectoryIds: config.nickAuth.directoryIds,
      ...(this.#options.backoff !== undefined ? { backoff: this.#options.backoff } : {}),
    });
    for (const name of CLIENT_EVENT_NAMES) {
      this.#unsubscribe.push(
        client.on(name, (payload) => {
          this.#observe(name, payload);
          this.#emit(name, payload);
        }),
      );
    }
    return client;
  }

  /** Bookkeeping the node does not do itself: directory activity, reconnects, NaCl sessions. */
  #observe(name: string, payload: unknown): void {
    const now = Date.now();
    const p = payload as {
      via?: { kind: string; location?: string };
      directory?: string;
      location?: string;
      up?: boolean;
      cmd?: string;
    };
    if ((name === 'privmsg' || name === 'pubmsg') && p.via?.kind === 'directory') {
      if (p.via.location !== undefined) this.#directoryLastMessage.set(p.via.location, now);
    } else if (name === 'peerlist' && p.directory !== undefined) {
      this.#directoryLastMessage.set(p.directory, now);
    } else if (name === 'directory' && p.location !== undefined && p.up === true) {
      this.#directoryLastMessage.set(p.location, now);
      if (this.#directoriesSeenUp.has(p.location)) this.metrics.directoryReconnected();
      this.#directoriesSeenUp.add(p.location);
    }
    if (name === 'privmsg' && p.cmd === 'fill') this.metrics.naclSessionStarted('maker');
    if (name === 'privmsg' && p.cmd === 'pubkey') this.metrics.naclSessionStarted('taker');
  }

  #emit(name: string, payload: unknown): void {
    for (const listener of this.#listeners) listener(name, payload);
  }

  /** Reads (or creates, as tor does for a new HiddenServiceDir) the key of hidden_service_dir. */
  async #loadKey(dir: string): Promise<OnionKey> {
    const key = await loadOrCreateOnionKey(dir);
    if (key.created) {
      this.#logger.info(
        {
          hiddenServiceDir: dir,
          onion: key.onionAddress,
          directoryNodes: `${key.onionAddress}:${ONION_VIRTUAL_PORT}`,
        },
        'created a new persistent onion key; a directory node lists exactly this in directory_nodes',
      );
    }
    return key;
  }

  /** The SOCKS5 dialer of the config, after checking that the proxy answers (one clear error). */
  async #socksDialer(): Promise<Dialer> {
    const { config } = this.#options;
    const dialer = new SocksDialer({
      proxy: config.socks5,
      timeoutMs: config.socks5ConnectTimeoutMs,
    });
    await dialer.checkProxy();
    return dialer;
  }

  #onionRuntime(key: OnionKeySource): OnionRuntime {
    const { config } = this.#options;
    this.#onion = new OnionRuntime({
      control: config.torControl,
      password: config.torControlPassword,
      key,
      target: { host: config.onionServingHost, port: config.onionServingPort },
      pow: config.powDefenses,
      logger: this.#logger,
      ...(this.#options.onionReconnect !== undefined
        ? { reconnect: this.#options.onionReconnect }
        : {}),
    });
    return this.#onion;
  }

  #backend(): ApiBackend {
    // Getters: the API listens before the node exists.
    const client = (): ClientNode | undefined => this.#client;
    const directory = (): DirectoryNode | undefined => this.#directory;
    return {
      get client() {
        return client();
      },
      get directory() {
        return directory();
      },
      info: () => this.info(),
      subscribe: (listener) => this.onNodeEvent(listener),
      metrics: () => this.metrics.render(),
    };
  }

  /** Peers and directory links with a role and a state, for the metrics. */
  #peerStates(): { role: string; state: string }[] {
    if (this.#directory !== undefined) {
      return this.#directory.peers().map((peer) => ({
        role:
          peer.location === undefined
            ? 'unknown'
            : peer.location === NOT_SERVING_ONION
              ? 'taker'
              : 'maker',
        state: peer.state,
      }));
    }
    const client = this.#client;
    if (client === undefined) return [];
    return [
      ...client.directoryStatus().map((d) => ({ role: 'directory', state: d.state })),
      ...client.peerStatus().map(() => ({ role: 'peer', state: 'handshaked' })),
    ];
  }

  /**
   * What the node is and what it is connected to, for the API and logs. `tor` (version, bootstrap,
   * onion, PoW defences) is left out in testing mode and for a taker: a taker only dials through
   * SOCKS and never asks tor's control port, so it has no onion and no PoW defences to report.
   */
  info(): Record<string, unknown> {
    const onion = this.#onion;
    const { config } = this.#options;
    const reportsTor = !config.testingMode && this.#role !== 'taker';
    const base = {
      version: VERSION,
      nick: this.identity.nick,
      role: this.#role,
      state: this.#state,
      uptimeSeconds: this.uptimeSeconds,
      network: config.network,
      testingMode: config.testingMode,
      ...(!reportsTor
        ? {}
        : {
            tor: {
              version: onion?.torVersion ?? this.#torVersion,
              bootstrapProgress: this.#bootstrap?.progress,
              onion: onion?.onionAddress,
              powDefenses: onion?.powDefenses ?? false,
              powConfigured: config.powDefenses.enabled,
            },
          }),
    };
    if (this.#directory !== undefined) {
      return {
        ...base,
        location: this.#directory.location,
        peers: this.#directory.peers(),
        counters: this.#directory.counters.snapshot(),
      };
    }
    const client = this.#client;
    if (client === undefined) return base;
    const now = Date.now();
    return {
      ...base,
      location: client.location,
      directories: client.directoryStatus().map((d) => {
        const last = this.#directoryLastMessage.get(d.location);
        return {
          ...d,
          lastMessageSecondsAgo: last === undefined ? null : Math.floor((now - last) / 1000),
        };
      }),
      peers: client.peerStatus(),
      offers: client.offers,
      counters: client.counters.snapshot(),
    };
  }

  /**
   * Aborts a start in progress, then stops the API and the node (reverse of start). Idempotent;
   * a concurrent call waits for the same stop.
   * @param options.deadlineMs how long to wait for the components, default
   *   {@link STOP_DEADLINE_MS}; past it the daemon is left as stopped and this rejects.
   * @throws OnionmcError `ERR_TIMEOUT` when the components did not stop within the deadline.
   */
  stop(options: { deadlineMs?: number } = {}): Promise<void> {
    if (this.#controller === undefined) return Promise.resolve();
    this.#stopping ??= this.#stop(
      options.deadlineMs ?? this.#options.stopDeadlineMs ?? STOP_DEADLINE_MS,
    );
    return this.#stopping;
  }

  /** Removes the onion service; gives up waiting for tor after {@link ONION_STOP_MS}. */
  async #stopOnion(): Promise<void> {
    const onion = this.#onion;
    if (onion === undefined) return;
    const timeout = new AbortController();
    const late = await Promise.race([
      onion.stop().then(() => false),
      delay(ONION_STOP_MS, timeout.signal).then(
        () => true,
        () => false,
      ),
    ]);
    timeout.abort();
    if (late)
      this.#logger.warn({ waitedMs: ONION_STOP_MS }, 'tor did not remove the onion in time');
  }

  async #stop(deadlineMs: number): Promise<void> {
    this.#setState('stopping');
    this.#controller?.abort(new OnionmcError('ERR_CLOSED', 'stopped'));
    const work = (async (): Promise<void> => {
      // Stop accepting API requests first (the listener closes at once; event streams are ended and
      // a client that does not read is cut off, src/api/server.ts), in parallel with the node:
      // what the API accepted is already queued on the peer connections, which flush it.
      const apiClosed = this.#api?.close();
      // A maker or taker closes its links, then its onion goes; a directory node first removes its
      // onion (no new peers over Tor), then closes its peers. Each step is bounded.
      await this.#client?.stop(NODE_STOP_MS);
      await this.#stopOnion();
      await this.#directory?.stop(NODE_STOP_MS);
      await apiClosed;
    })();
    const deadline = new AbortController();
    const timedOut = delay(deadlineMs, deadline.signal).then(
      () => true,
      () => false,
    );
    try {
      const late = await Promise.race([work.then(() => false), timedOut]);
      if (late) {
        throw new OnionmcError('ERR_TIMEOUT', `components did not stop within ${deadlineMs} ms`);
      }
    } finally {
      deadline.abort();
      for (const off of this.#unsubscribe) off();
      this.#unsubscribe = [];
      this.#api = undefined;
      this.#client = undefined;
      this.#directory = undefined;
      this.#onion = undefined;
      this.#controller = undefined;
      this.#stopping = undefined;
      this.#startedAt = 0;
      this.#setState('stopped');
    }
  }
}
