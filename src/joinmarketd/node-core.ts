/**
 * {@link MessageChannelCore} on onionmc's own maker/taker node ({@link ClientNode}): the node the
 * HTTP API serves, configured from the jmclient's `[MESSAGING:onion]` section (JMInit
 * `chan_configs`) instead of a configuration file, with the nick key left in the wallet.
 *
 * - Nick: the one the wallet gave in JMStartMC. Every privmsg is signed through the service's
 *   {@link NickSigner} (JMRequestMsgSig); the answer is checked here (the signature verifies, the
 *   key is the nick's) before it goes on the wire. Every received privmsg is first checked in
 *   process (docs/protocol.md §5.6; garbage never reaches the wallet) and then by the wallet
 *   (JMRequestMsgSigVerify), as jmdaemon does.
 * - Nick authentication (docs/protocol.md §9.6) is not offered: jmdaemon does not offer it, and
 *   the nick-auth text holds the nick's public key, which the node learns only from the wallet's
 *   first signature. The node supports it through any signer that knows its key.
 * - Testing mode (`regtest_count` not `0,0`, docs/protocol.md §8.4): plain TCP on loopback; a
 *   maker (`serving`) listens on `127.0.0.1:<onion_serving_port>` (port 0: any free port) and
 *   announces that location. Tor mode: SOCKS5 dials through `socks5_host:socks5_port`; a maker
 *   creates an ephemeral onion through `tor_control_host:tor_control_port` forwarding to
 *   `onion_serving_host:onion_serving_port` (docs/protocol.md §8.1, §8.3).
 * - `!orderbook` is answered by the service, never by the node (`answerOrderbook: false`; the
 *   node is given no offers of its own either).
 */
import type net from 'node:net';
import { OnionmcError } from '../errors.js';
import type { Logger } from '../log.js';
import { nickMatchesPublicKey } from '../message/nick.js';
import { verifyPrivmsg } from '../message/privmsg.js';
import { verifyMessage } from '../message/signing.js';
import type { BackoffOptions } from '../node/backoff.js';
import { ClientNode, type ClientNodeEvents } from '../node/client-node.js';
import type {
  NickSignature,
  NickSigner as NodeNickSigner,
  NickVerifier as NodeNickVerifier,
  PrivmsgVerdict,
} from '../node/nick-signer.js';
import { SocksDialer } from '../peer/socks-transport.js';
import {
  TcpDialer,
  TcpServerTransport,
  type Dialer,
  type ServerTransport,
} from '../peer/transport.js';
import { OnionRuntime } from '../tor/onion-runtime.js';
import { NOT_SERVING_ONION, ONION_VIRTUAL_PORT } from '../wire/location.js';
import {
  CoreListeners,
  ONION_HOSTID,
  type CoreContext,
  type CoreEvents,
  type CoreFactory,
  type CoreFidelityBond,
  type CoreOffer,
  type MessageChannelCore,
  type OnionChannelConfig,
} from './core.js';

/** Features a jmclient's node advertises: ping and ng peerlists; no nick_auth (see the module header). */
export const JOINMARKETD_CLIENT_FEATURES: Readonly<Record<string, boolean>> = Object.freeze({
  peerlist_features: true,
  ping: true,
});
/** SOCKS5 dial deadline in Tor mode (ng's 120 s, docs/protocol.md §8.5). */
export const JOINMARKETD_SOCKS_TIMEOUT_MS = 120_000;
/** ng's ADD_ONION PoW parameters (docs/protocol.md §8.5), used for a maker's onion. */
const ONION_POW = { enabled: true, queueRate: 25, queueBurst: 250 } as const;

/** What a {@link nodeCoreFactory} needs besides the jmclient's context. */
export interface NodeCoreDeps {
  readonly logger: Logger;
  /** Overrides the dialer (tests); default TCP in testing mode, SOCKS5 in Tor mode. */
  readonly dialer?: Dialer;
  /** Directory reconnect backoff (tests shorten it). */
  readonly backoff?: BackoffOptions;
}

/**
 * True when `regtest_count` switches testing mode on: two integers `s,e`, not both 0
 * (docs/protocol.md §8.4). A missing or malformed value is Tor mode.
 */
export function isTestingMode(config: OnionChannelConfig): boolean {
  const parts = (config.regtestCount ?? '').split(',').map((p) => p.trim());
  if (parts.length !== 2 || !parts.every((p) => /^-?[0-9]+$/.test(p))) return false;
  return !(Number(parts[0]) === 0 && Number(parts[1]) === 0);
}

/** The handshake network of a `btcnet` (regtest is sent as testnet, as onionmc's config does). */
export function handshakeNetwork(btcnet: string): string {
  return btcnet === 'regtest' ? 'testnet' : btcnet;
}

/** The factory `onionmc joinmarketd` uses: one {@link NodeCore} per jmclient. */
export function nodeCoreFactory(deps: NodeCoreDeps): CoreFactory {
  return (context) => new NodeCore(context, deps);
}

/** A listener bound before accept: the server is already listening when the node starts. */
class BoundListener implements ServerTransport {
  #onConnection: ((socket: net.Socket) => void) | undefined;
  constructor(readonly inner: TcpServerTransport) {}
  async bind(): Promise<void> {
    await this.inner.listen((socket) => {
      if (this.#onConnection === undefined) socket.destroy();
      else this.#onConnection(socket);
    });
  }
  listen(onConnection: (socket: net.Socket) => void): Promise<void> {
    this.#onConnection = onConnection;
    return Promise.resolve();
  }
  close(): Promise<void> {
    this.#onConnection = undefined;
    return this.inner.close();
  }
}

/** The message channel of one jmclient, on a {@link ClientNode}. */
export class NodeCore implements MessageChannelCore {
  readonly nick: string;
  readonly hostid = ONION_HOSTID;
  readonly #context: CoreContext;
  readonly #deps: NodeCoreDeps;
  readonly #logger: Logger;
  readonly #listeners = new CoreListeners();
  #node: ClientNode | undefined;
  #onion: OnionRuntime | undefined;
  #starting: Promise<void> | undefined;
  #stopped = false;
  #publicKeyHex: string | undefined;
  #wasUp = false;

  constructor(context: CoreContext, deps: NodeCoreDeps) {
    this.#context = context;
    this.#deps = deps;
    this.nick = context.nick;
    this.#logger = deps.logger.child({ nick: context.nick });
  }

  /** The node, once started (for tests and status). */
  get node(): ClientNode | undefined {
    return this.#node;
  }

  get isUp(): boolean {
    return this.#node?.hasDirectory === true;
  }

  /**
   * Builds the node from the channel config and starts it.
   * @throws ListenError `ERR_LISTEN` (maker port taken); Tor errors (control port, SOCKS port)
   *   in Tor mode; OnionmcError `ERR_CLOSED` when stopped meanwhile.
   */
  start(): Promise<void> {
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    const { config } = this.#context;
    const testing = isTestingMode(config);
    const role = config.serving ? 'maker' : 'taker';
    let dialer = this.#deps.dialer;
    let server: ServerTransport | undefined;
    let location = NOT_SERVING_ONION;
    if (testing) {
      dialer ??= new TcpDialer();
      if (role === 'maker') {
        const listener = new BoundListener(
          new TcpServerTransport('127.0.0.1', config.onionServingPort),
        );
        await listener.bind();
        server = listener;
        location = `127.0.0.1:${listener.inner.port}`;
      }
    } else {
      if (dialer === undefined) {
        const socks = new SocksDialer({
          proxy: { kind: 'tcp', host: config.socks5Host, port: config.socks5Port },
          timeoutMs: JOINMARKETD_SOCKS_TIMEOUT_MS,
        });
        await socks.checkProxy();
        dialer = socks;
      }
      if (role === 'maker') {
        server = new TcpServerTransport(config.onionServingHost, config.onionServingPort);
        this.#onion = new OnionRuntime({
          control: { kind: 'tcp', host: config.torControlHost, port: config.torControlPort },
          key: { kind: 'ephemeral' },
          target: { host: config.onionServingHost, port: config.onionServingPort },
          pow: ONION_POW,
          logger: this.#logger,
        });
        location = `${await this.#onion.start()}:${ONION_VIRTUAL_PORT}`;
      }
    }
    if (this.#stopped) {
      await server?.close();
      await this.#onion?.stop();
      throw new OnionmcError('ERR_CLOSED', 'stopped while starting');
    }
    const node = new ClientNode({
      role,
      signer: this.#signer(),
      verifier: this.#verifier(),
      network: handshakeNetwork(config.btcnet),
      ownLocation: location,
      directories: config.directoryNodes,
      dialer,
      ...(server !== undefined ? { server } : {}),
      logger: this.#logger,
      features: JOINMARKETD_CLIENT_FEATURES,
      // The service answers `!orderbook` (with a proof per taker), never the node.
      answerOrderbook: false,
      ...(this.#deps.backoff !== undefined ? { backoff: this.#deps.backoff } : {}),
    });
    this.#node = node;
    this.#onion?.onRecreated((address) => {
      node.relocate(`${address}:${ONION_VIRTUAL_PORT}`);
    });
    this.#bind(node);
    this.#logger.info(
      { role, location, testingMode: testing, directories: config.directoryNodes },
      'message channel starting for a jmclient',
    );
    await node.start();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#starting?.catch(() => undefined);
    await this.#node?.stop();
    await this.#onion?.stop();
  }

  pubmsg(message: string): void {
    const node = this.#requireNode();
    node.pubmsg(message);
  }

  async privmsg(nick: string, cmd: string, body: string): Promise<void> {
    await this.#requireNode().privmsgAsync(nick, cmd, body);
  }

  canReach(nick: string): boolean {
    return this.#node?.canReach(nick) ?? false;
  }

  orderbook(): CoreOffer[] {
    return (this.#node?.orderbook.entries() ?? []).map((e) => ({
      counterparty: e.nick,
      oid: e.oid,
      ordertype: e.type,
      minsize: e.minsize,
      maxsize: e.maxsize,
      txfee: e.txfee,
      cjfee: e.cjfee,
    }));
  }

  fidelityBonds(): CoreFidelityBond[] {
    return (this.#node?.orderbook.bonds() ?? []).map((b) => ({
      counterparty: b.nick,
      takernick: this.nick,
      proof: b.proof,
    }));
  }

  on<K extends keyof CoreEvents>(event: K, listener: (event: CoreEvents[K]) => void): () => void {
    return this.#listeners.on(event, listener);
  }

  #emit<K extends keyof CoreEvents>(event: K, payload: CoreEvents[K]): void {
    this.#listeners.emit(event, payload, (err) => {
      this.#logger.error({ err, event }, 'core event listener failed');
    });
  }

  #requireNode(): ClientNode {
    const node = this.#node;
    if (node === undefined)
      throw new OnionmcError('ERR_NOT_ROUTABLE', 'the message channel is not started');
    return node;
  }

  #bind(node: ClientNode): void {
    node.on('directory', () => {
      const up = node.hasDirectory;
      if (up && !this.#wasUp) this.#emit('up', {});
      else if (!up && this.#wasUp) this.#emit('down', {});
      this.#wasUp = up;
    });
    node.on('privmsg', (event: ClientNodeEvents['privmsg']) => {
      this.#emit('privmsg', {
        from: event.from,
        cmd: event.cmd,
        body: event.body,
        hostid: this.hostid,
        ...(event.peerKeyHex !== undefined ? { peerKeyHex: event.peerKeyHex } : {}),
        ...(event.ownKeyHex !== undefined ? { ownKeyHex: event.ownKeyHex } : {}),
      });
    });
    node.on('pubmsg', (event) => {
      this.#emit('pubmsg', { from: event.from, message: event.message, hostid: this.hostid });
    });
    node.on('nickLeave', ({ nick }) => {
      this.#emit('nickLeave', { nick });
    });
  }

  /**
   * Checks the wallet's answer to a signature request: `msg pubkey sig`, the key the nick's,
   * the signature valid over `signedText`.
   * @throws OnionmcError `ERR_CRYPTO` otherwise.
   */
  #parseSigned(returned: string, msg: string, signedText: string): NickSignature {
    const tail = returned.startsWith(`${msg} `) ? returned.slice(msg.length + 1).split(' ') : [];
    const [publicKeyHex = '', signature = ''] = tail;
    if (tail.length !== 2 || !nickMatchesPublicKey(this.nick, publicKeyHex))
      throw new OnionmcError('ERR_CRYPTO', "the wallet's signature is not by the nick's key");
    if (!verifyMessage(publicKeyHex, signature, signedText))
      throw new OnionmcError('ERR_CRYPTO', "the wallet's signature does not verify");
    this.#publicKeyHex ??= publicKeyHex;
    return { publicKeyHex, signature };
  }

  #signer(): NodeNickSigner {
    const { signer } = this.#context;
    const publicKey = (): string | undefined => this.#publicKeyHex;
    return {
      nick: this.nick,
      // Known after the first signature; nick_auth is not advertised anyway (module header).
      get publicKeyHex() {
        return publicKey();
      },
      signPrivmsg: async ({ to, cmd, body, hostid }) =>
        this.#parseSigned(await signer({ nick: to, cmd, msg: body, hostid }), body, body + hostid),
      signText: async (text) =>
        this.#parseSigned(
          await signer({ nick: this.nick, cmd: 'nick-auth', msg: text, hostid: '' }),
          text,
          text,
        ),
    };
  }

  #verifier(): NodeNickVerifier {
    const { verifier } = this.#context;
    return {
      verifyPrivmsg: (from, message, hostid): PrivmsgVerdict | Promise<PrivmsgVerdict> => {
        const local = verifyPrivmsg(from, message, hostid);
        if (!local.ok) return local;
        return verifier({
          nick: from,
          msg: local.body + hostid,
          fullmsg: message,
          sig: local.signature,
          pubkey: local.publicKeyHex,
          hostid,
        }).then((ok) => (ok ? local : { ok: false, reason: 'bad-signature' }));
      },
    };
  }
}
