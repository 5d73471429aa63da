/**
 * The daemon: turns a validated configuration into a running node. It decides the role as
 * JoinMarket does (spec §2.2: a node whose own location is the only entry of `directory_nodes` is
 * a directory node; otherwise a maker if it serves, else a taker), builds the transports for
 * testing mode (plain loopback TCP, spec §8.4) or Tor (control port + SOCKS5, spec §8), and starts
 * the node and the local API. Components start in dependency order and stop in reverse.
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
import { ApiServer, type ApiBackend } from '../api/server.js';
import type { OnionmcConfig } from '../config/config.js';
import { OnionmcError } from '../errors.js';
import type { Logger } from '../log.js';
import { createNickIdentity, type NickIdentity } from '../message/nick.js';
import { SocksDialer } from '../peer/socks-transport.js';
import { TcpDialer, TcpServerTransport, type Dialer } from '../peer/transport.js';
import { loadOrCreateOnionKey, type OnionKey } from '../tor/onion-key.js';
import { OnionRuntime, type OnionKeySource } from '../tor/onion-runtime.js';
import {
  isV3OnionHostname,
  NOT_SERVING_ONION,
  ONION_VIRTUAL_PORT,
  type Location,
} from '../wire/location.js';
import { ClientNode, type ClientRole } from './client-node.js';
import { DirectoryNode } from './directory-node.js';
import type { BackoffOptions } from './backoff.js';

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
}

/**
 * Features a maker or taker advertises in its 793 (spec §9.1): it answers 798 pings, reads `;F:`
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

/** Features a directory node advertises in its 795 (spec §2.4: ng always sends ping and peerlist_features). */
export function directoryFeatures(config: OnionmcConfig): Record<string, boolean> {
  return {
    peerlist_features: true,
    ping: true,
    ...(config.nickAuth.mode !== 'disabled' ? { nick_auth: true } : {}),
  };
}

/** Our location in testing mode: `127.0.0.1:<onion_serving_port>` (spec §8.4). */
export function testingModeLocation(config: OnionmcConfig): string {
  return `127.0.0.1:${config.onionServingPort}`;
}

/**
 * True when `ownLocation` is the only entry of directory_nodes (spec §2.2 `get_our_peer_info`).
 * `localhost` and `127.0.0.1` are the same host here, as they are for the reference's listener.
 */
export function isDirectoryFor(config: OnionmcConfig, ownLocation: string): boolean {
  if (config.directoryNodes.length !== 1) return false;
  const only = config.directoryNodes[0] ?? '';
  return only === ownLocation || only.replace(/^localhost:/, '127.0.0.1:') === ownLocation;
}

/**
 * The peer locations a directory node admits in Tor mode: v3 onions and NOT-SERVING-ONION, as the
 * ng directory does (spec §2.1, §2.5; NG: jmcore/src/jmcore/models.py `PeerInfo`).
 */
export function isTorPeerLocation(location: Location): boolean {
  return location.kind === 'not-serving' || isV3OnionHostname(location.host);
}

/** A running onionmc node: a directory node, a maker or a taker, plus its local API. */
export class Daemon {
  readonly #options: DaemonOptions;
  readonly #logger: Logger;
  readonly identity: NickIdentity;
  #role: NodeRole | undefined;
  #directory: DirectoryNode | undefined;
  #client: ClientNode | undefined;
  #api: ApiServer | undefined;
  #onion: OnionRuntime | undefined;
  #started = false;

  constructor(options: DaemonOptions) {
    this.#options = options;
    this.#logger = options.logger;
    this.identity = options.identity ?? createNickIdentity();
  }

  /** The role, once started. */
  get role(): NodeRole | undefined {
    return this.#role;
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
   * Starts the node and then the local API. A failed start undoes what had started. In Tor mode a
   * maker or directory node is started only once tor reports its onion descriptor uploaded.
   * @throws OnionmcError `ERR_LISTEN` when a listener cannot bind; ConfigError for an unusable
   *   hidden_service_dir; TorControlError (`ERR_TOR_CONTROL_UNREACHABLE`, `ERR_TOR_AUTH`,
   *   `ERR_TOR_COMMAND`, `ERR_TOR_TIMEOUT`) when the onion cannot be created; SocksError when
   *   tor's SOCKS port does not answer (maker, taker).
   */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    try {
      await this.#startNode();
      const api = this.#options.api ?? this.#options.config.api;
      if (api !== undefined) {
        this.#api = new ApiServer(this.#backend(), this.#logger);
        await this.#api.listen(api);
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  async #startNode(): Promise<void> {
    if (this.#options.config.testingMode) await this.#startTestingMode();
    else await this.#startTorMode();
  }

  /** Testing mode (spec §8.4): plain TCP on loopback, location `127.0.0.1:<onion_serving_port>`. */
  async #startTestingMode(): Promise<void> {
    const { config } = this.#options;
    const ownServingLocation = testingModeLocation(config);
    const dialer = this.#options.dialer ?? new TcpDialer();
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
   * Tor mode (spec §8): the role comes from the persistent key, read offline before tor is asked
   * (a node whose `<onion>:5222` is the only directory_nodes entry is a directory node, spec
   * §2.2); a directory node serves that onion (spec §8.2), a maker a new one per start (spec
   * §8.1), a taker none; makers and takers dial through SOCKS5 (spec §8.3).
   */
  async #startTorMode(): Promise<void> {
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
      await this.#startTorDirectory(key, ownPersistentLocation);
      return;
    }
    if (
      ownPersistentLocation !== undefined &&
      config.directoryNodes.includes(ownPersistentLocation)
    ) {
      this.#logger.warn(
        { location: ownPersistentLocation, directoryNodes: config.directoryNodes },
        'directory_nodes lists our own onion among others: a directory node must list only itself (spec §2.2); running as a maker or taker',
      );
    }
    const role = this.#options.clientRole ?? 'taker';
    this.#role = role;
    const dialer = this.#options.dialer ?? (await this.#socksDialer());
    this.#throwIfStopped();
    let ownLocation = NOT_SERVING_ONION;
    if (role === 'maker') {
      if (key !== undefined) {
        this.#logger.warn(
          { hiddenServiceDir: config.hiddenServiceDir, onion: key.onionAddress },
          'this maker serves the persistent onion of hidden_service_dir: a fixed address lets others link its offers over time',
        );
      }
      const onion = this.#onionRuntime(
        key === undefined ? { kind: 'ephemeral' } : { kind: 'persistent', key },
      );
      // The location is announced only once tor reports the descriptor uploaded (spec §8.1).
      ownLocation = `${await onion.start()}:${ONION_VIRTUAL_PORT}`;
      this.#throwIfStopped();
    } else if (key !== undefined) {
      this.#logger.info(
        { hiddenServiceDir: config.hiddenServiceDir },
        'hidden_service_dir is not used by a taker',
      );
    }
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

  /** A directory node on its persistent onion (spec §8.2): listener first, then the onion. */
  async #startTorDirectory(key: OnionKey, ownLocation: string): Promise<void> {
    this.#role = 'directory';
    // On Tor, admit only what ng admits (spec §2.1, §2.5): v3 onions and NOT-SERVING-ONION.
    this.#directory = this.#createDirectory(ownLocation, isTorPeerLocation);
    await this.#directory.start();
    const onion = this.#onionRuntime({ kind: 'persistent', key });
    await onion.start();
    this.#throwIfStopped();
    this.#logger.info({ location: ownLocation }, 'directory node reachable on its onion');
  }

  /**
   * The directory node at `ownLocation`, listening on onion_serving_host:port; its nick-auth
   * directory-id is the configured one or its own location, lower-cased (spec §9.6).
   */
  #createDirectory(
    ownLocation: string,
    acceptLocation?: (location: Location) => boolean,
  ): DirectoryNode {
    const { config } = this.#options;
    return new DirectoryNode({
      identity: this.identity,
      network: config.network,
      ownLocation,
      motd: config.directoryMotd,
      server: new TcpServerTransport(config.onionServingHost, config.onionServingPort),
      logger: this.#logger,
      features: directoryFeatures(config),
      heartbeat: config.heartbeat,
      ...(acceptLocation !== undefined ? { acceptLocation } : {}),
      nickAuth: {
        mode: config.nickAuth.mode,
        directoryId: config.nickAuth.directoryId ?? ownLocation.toLowerCase(),
      },
    });
  }

  /** A maker (listening on onion_serving_host:port) or taker linked to every configured directory. */
  #createClient(role: ClientRole, ownLocation: string, dialer: Dialer): ClientNode {
    const { config } = this.#options;
    return new ClientNode({
      role,
      identity: this.identity,
      network: config.network,
      ownLocation,
      directories: config.directoryNodes,
      dialer,
      ...(role === 'maker'
        ? { server: new TcpServerTransport(config.onionServingHost, config.onionServingPort) }
        : {}),
      logger: this.#logger,
      features: clientFeatures(config),
      answerOrderbook: config.answerOrderbook,
      nickAuthDirectoryIds: config.nickAuth.directoryIds,
      ...(this.#options.backoff !== undefined ? { backoff: this.#options.backoff } : {}),
    });
  }

  /** After a long await of start(): stop() may have run meanwhile; start no more components then. */
  #throwIfStopped(): void {
    if (!this.#started) throw new OnionmcError('ERR_CLOSED', 'stopped while starting');
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
    return {
      client: this.#client,
      directory: this.#directory,
      info: () => this.info(),
    };
  }

  /** What the node is and what it is connected to, for the API and logs. */
  info(): Record<string, unknown> {
    const onion = this.#onion;
    const base = {
      nick: this.identity.nick,
      role: this.#role,
      network: this.#options.config.network,
      ...(onion !== undefined
        ? {
            tor: {
              onion: onion.onionAddress,
              powDefenses: onion.powDefenses,
              torVersion: onion.torVersion,
            },
          }
        : {}),
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
    return {
      ...base,
      location: client.location,
      directories: client.directoryStatus(),
      peers: client.peerStatus(),
      offers: client.offers,
      counters: client.counters.snapshot(),
    };
  }

  /** Stops the API, then the node (reverse of start). Idempotent. */
  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    await this.#api?.close();
    await this.#client?.stop();
    await this.#onion?.stop();
    await this.#directory?.stop();
  }
}
