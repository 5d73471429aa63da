/**
 * The daemon: turns a validated configuration into a running node. It decides the role as
 * JoinMarket does (spec §2.2: a node whose own location is the only entry of `directory_nodes` is
 * a directory node; otherwise a maker if it serves, else a taker), builds the transports for
 * testing mode (plain loopback TCP, spec §8.4) or Tor (control port + SOCKS5, spec §8), and starts
 * the node and the local API. Components start in dependency order and stop in reverse.
 */
import { ApiServer, type ApiBackend } from '../api/server.js';
import type { OnionmcConfig } from '../config/config.js';
import { OnionmcError } from '../errors.js';
import type { Logger } from '../log.js';
import { createNickIdentity, type NickIdentity } from '../message/nick.js';
import { TcpDialer, TcpServerTransport, type Dialer } from '../peer/transport.js';
import { NOT_SERVING_ONION } from '../wire/location.js';
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
  /** Injected for tests; default plain TCP in testing mode. */
  readonly dialer?: Dialer;
  /** Directory reconnect backoff (tests shorten it). */
  readonly backoff?: BackoffOptions;
}

/**
 * Features a maker or taker advertises in its 793 (spec §9.1): it answers 798 pings, reads `;F:`
 * peerlist entries and answers nick-authentication challenges.
 */
export const CLIENT_FEATURES: Readonly<Record<string, boolean>> = Object.freeze({ nick_auth: true, peerlist_features: true, ping: true });

/** Features a directory node advertises in its 795 (spec §2.4: ng always sends ping and peerlist_features). */
export function directoryFeatures(config: OnionmcConfig): Record<string, boolean> {
  return { peerlist_features: true, ping: true, ...(config.nickAuth.mode !== 'disabled' ? { nick_auth: true } : {}) };
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

/** A running onionmc node: a directory node, a maker or a taker, plus its local API. */
export class Daemon {
  readonly #options: DaemonOptions;
  readonly #logger: Logger;
  readonly identity: NickIdentity;
  #role: NodeRole | undefined;
  #directory: DirectoryNode | undefined;
  #client: ClientNode | undefined;
  #api: ApiServer | undefined;
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
   * Starts the node and then the local API. A failed start undoes what had started.
   * @throws OnionmcError when a listener cannot bind or Tor cannot be used.
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
    const { config } = this.#options;
    if (!config.testingMode) {
      throw new OnionmcError('ERR_CONFIG', 'Tor mode is not available in this build yet; set regtest_count for testing mode');
    }
    const ownServingLocation = testingModeLocation(config);
    const dialer = this.#options.dialer ?? new TcpDialer();
    if (isDirectoryFor(config, ownServingLocation)) {
      this.#role = 'directory';
      this.#directory = new DirectoryNode({
        identity: this.identity,
        network: config.network,
        ownLocation: ownServingLocation,
        motd: config.directoryMotd,
        server: new TcpServerTransport(config.onionServingHost, config.onionServingPort),
        logger: this.#logger,
        features: directoryFeatures(config),
        heartbeat: config.heartbeat,
        nickAuth: { mode: config.nickAuth.mode, directoryId: config.nickAuth.directoryId ?? ownServingLocation.toLowerCase() },
      });
      await this.#directory.start();
      return;
    }
    const role = this.#options.clientRole ?? 'taker';
    this.#role = role;
    this.#client = new ClientNode({
      role,
      identity: this.identity,
      network: config.network,
      ownLocation: role === 'maker' ? ownServingLocation : NOT_SERVING_ONION,
      directories: config.directoryNodes,
      dialer,
      ...(role === 'maker' ? { server: new TcpServerTransport(config.onionServingHost, config.onionServingPort) } : {}),
      logger: this.#logger,
      features: CLIENT_FEATURES,
      ...(this.#options.backoff !== undefined ? { backoff: this.#options.backoff } : {}),
    });
    await this.#client.start();
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
    const base = { nick: this.identity.nick, role: this.#role, network: this.#options.config.network };
    if (this.#directory !== undefined) {
      return { ...base, location: this.#directory.location, peers: this.#directory.peers(), counters: this.#directory.counters.snapshot() };
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
    await this.#directory?.stop();
  }
}
