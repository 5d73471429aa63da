/**
 * Test kit for the directory-node policy tests: an in-process {@link DirectoryNode} on a loopback
 * port that is bound before the node is built (so its own location is known without a second
 * bind), with an injected clock, and raw loopback clients that speak the wire protocol line by
 * line (docs/protocol.md §1.1, §2.3, §4.1) on top of the transcript test's {@link ScriptedPeer}.
 */
import net from 'node:net';
import { silentLogger } from '../../src/log.js';
import {
  buildNickAuthProofLine,
  signNickAuth,
  type NickAuthChallenge,
  type NickAuthResultCode,
} from '../../src/message/nick-auth.js';
import { createNickIdentity, type NickIdentity } from '../../src/message/nick.js';
import { formatPubmsgLine, signPrivmsg } from '../../src/message/privmsg.js';
import { DirectoryNode, type DirectoryNodeOptions } from '../../src/node/directory-node.js';
import type { ServerTransport } from '../../src/peer/transport.js';
import { decodeEnvelope, encodeEnvelope, type Envelope } from '../../src/wire/envelope.js';
import {
  encodeClientHandshake,
  JM_APP_NAME,
  JM_PROTOCOL_VERSION,
  parseDirectoryHandshake,
  type ClientHandshake,
  type DirectoryHandshake,
} from '../../src/wire/handshake.js';
import { NOT_SERVING_ONION } from '../../src/wire/location.js';
import { MessageType } from '../../src/wire/message-types.js';
import { ScriptedPeer } from '../integration/transcript.js';

/** The handshake network of every test directory (docs/protocol.md §2.2). */
export const TEST_NETWORK = 'testnet';
/** The motd of every test directory (docs/protocol.md §2.4). */
export const TEST_MOTD = 'policy test directory';
/** Where the injected clock starts, in ms. */
export const CLOCK_START_MS = 1_000_000;

/**
 * A {@link ServerTransport} whose loopback listener is bound to an OS-chosen port at creation, so
 * the port is known before the node is constructed; `listen` only attaches the handler.
 */
export class PreboundTcpServer implements ServerTransport {
  #closed = false;

  private constructor(
    readonly server: net.Server,
    readonly port: number,
  ) {}

  /** Binds 127.0.0.1 port 0. */
  static async bind(): Promise<PreboundTcpServer> {
    const server = net.createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const address = server.address();
    if (typeof address !== 'object' || address === null) throw new Error('no bound address');
    return new PreboundTcpServer(server, address.port);
  }

  listen(onConnection: (socket: net.Socket) => void): Promise<void> {
    this.server.on('connection', onConnection);
    return Promise.resolve();
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    return new Promise((resolve) => {
      this.server.close(() => {
        resolve();
      });
    });
  }
}

/** A started directory node and what a test needs to know about it. */
export interface TestDirectory {
  readonly node: DirectoryNode;
  readonly port: number;
  readonly nick: string;
  /** `127.0.0.1:<port>`. */
  readonly location: string;
  /** `<nick>;<location>`, the directory's own peerlist entry (docs/protocol.md §3.1). */
  readonly ownEntry: string;
  /** The node's clock in ms ({@link CLOCK_START_MS} at start); tests move it by assignment. */
  readonly clock: { now: number };
}

/** Options of {@link startDirectory}: anything but the transport, location, clock and logger. */
export type DirectoryOverrides = Partial<
  Omit<DirectoryNodeOptions, 'server' | 'ownLocation' | 'now' | 'logger'>
>;

/** Options of a {@link RawClient}. */
export interface RawClientOptions {
  /** Default: a fresh random identity. */
  readonly identity?: NickIdentity;
  /** Location string sent in the 793; default `NOT-SERVING-ONION`. */
  readonly location?: string;
  /** The 793 `features`; default `{}` (a reference client). */
  readonly features?: Readonly<Record<string, boolean>>;
}

/**
 * One raw client connection to a test directory: sends envelopes, reads lines exactly as they
 * arrive (each without its CRLF), and knows its own nick, location and peerlist entry.
 */
export class RawClient {
  readonly identity: NickIdentity;
  readonly location: string;
  readonly features: Readonly<Record<string, boolean>>;
  /** The exact `line` of the last 793 sent (nick-auth signs it, docs/protocol.md §9.6). */
  handshakeLine = '';

  constructor(
    readonly peer: ScriptedPeer,
    options: RawClientOptions = {},
  ) {
    this.identity = options.identity ?? createNickIdentity();
    this.location = options.location ?? NOT_SERVING_ONION;
    this.features = options.features ?? {};
  }

  get nick(): string {
    return this.identity.nick;
  }

  /** `<nick>;<location>` (docs/protocol.md §3.1). */
  get entry(): string {
    return `${this.nick};${this.location}`;
  }

  /** Sends one envelope, formatted as the reference formats it (docs/protocol.md §1.1). */
  send(type: number, line: string): void {
    this.peer.send(encodeEnvelope(type, line));
  }

  /** Sends `text` plus CRLF, whatever it is. */
  sendRaw(text: string): void {
    this.peer.send(text);
  }

  /** The 793 `line` of this client, with `overrides` applied (docs/protocol.md §2.3). */
  handshakeLineFor(overrides: Partial<ClientHandshake> = {}): string {
    return encodeClientHandshake({
      appName: JM_APP_NAME,
      directory: false,
      locationString: this.location,
      protoVer: JM_PROTOCOL_VERSION,
      features: { ...this.features },
      nick: this.nick,
      network: TEST_NETWORK,
      ...overrides,
    });
  }

  /** Sends a 793 (with `overrides`) and remembers its exact line. */
  sendHandshake(overrides: Partial<ClientHandshake> = {}): void {
    this.handshakeLine = this.handshakeLineFor(overrides);
    this.send(MessageType.HANDSHAKE, this.handshakeLine);
  }

  /**
   * Sends a valid 793 and reads the 795 it must get back.
   * @throws Error when the next line is not a 795, or the 795 does not accept us.
   */
  async handshake(): Promise<DirectoryHandshake> {
    this.sendHandshake();
    const envelope = await this.nextEnvelope();
    const reply =
      envelope.type === MessageType.DN_HANDSHAKE
        ? parseDirectoryHandshake(envelope.line)
        : undefined;
    if (reply?.accepted !== true) {
      throw new Error(`${this.nick} not accepted: ${JSON.stringify(envelope)}`);
    }
    return reply;
  }

  /** Sends a pubmsg `<nick>!PUBLIC<message>` (docs/protocol.md §4.1) and returns its line. */
  pubmsg(message: string, from: string = this.nick): string {
    const line = formatPubmsgLine(from, message);
    this.send(MessageType.PUBMSG, line);
    return line;
  }

  /** Sends a privmsg signed with our nick key (docs/protocol.md §4.1, §5.6) and returns its line. */
  privmsg(to: string, cmd = 'orderbook', body = 'hello'): string {
    const line = signPrivmsg(this.identity, to, cmd, body);
    this.send(MessageType.PRIVMSG, line);
    return line;
  }

  /** The next line received, waiting for it. */
  next(): Promise<string> {
    return this.peer.next();
  }

  /** The next line received, decoded as an envelope. */
  async nextEnvelope(): Promise<Envelope> {
    return decodeEnvelope(await this.next());
  }

  /**
   * Proves that nothing was queued for this handshaked client before now: sends a request the
   * directory must answer (798 when we advertised `ping`, else 791) and checks that the answer is
   * the very next line. With 791, at most 20 peers may be handshaked (one 789 comes back).
   */
  async expectQuiet(): Promise<void> {
    const ping = this.features.ping === true;
    this.send(ping ? MessageType.PING : MessageType.GETPEERLIST, '');
    const envelope = await this.nextEnvelope();
    const expected = ping ? MessageType.PONG : MessageType.PEERLIST;
    if (envelope.type !== expected) {
      throw new Error(`expected ${expected} next, got ${JSON.stringify(envelope)}`);
    }
  }

  /** Resolves when the directory has closed the connection. */
  waitClosed(): Promise<void> {
    return this.peer.waitClosed();
  }

  /** Half-closes our side (a clean disconnect). */
  end(): void {
    this.peer.end();
  }
}

/** Makes directories and clients for one test and tears them all down afterwards. */
export class DirectoryFixture {
  readonly #nodes: DirectoryNode[] = [];
  readonly #clients: RawClient[] = [];

  /** Starts a directory node on a fresh loopback port with a frozen, injected clock. */
  async directory(overrides: DirectoryOverrides = {}): Promise<TestDirectory> {
    const server = await PreboundTcpServer.bind();
    const location = `127.0.0.1:${server.port}`;
    const clock = { now: CLOCK_START_MS };
    const identity = overrides.identity ?? createNickIdentity();
    const node = new DirectoryNode({
      identity,
      network: TEST_NETWORK,
      motd: TEST_MOTD,
      ...overrides,
      ownLocation: location,
      server,
      logger: silentLogger(),
      now: () => clock.now,
    });
    this.#nodes.push(node);
    await node.start();
    return {
      node,
      port: server.port,
      nick: identity.nick,
      location,
      ownEntry: `${identity.nick};${location}`,
      clock,
    };
  }

  /** Connects a raw client to `dn` (no handshake yet). */
  async connect(dn: TestDirectory, options: RawClientOptions = {}): Promise<RawClient> {
    const client = new RawClient(await ScriptedPeer.connect(dn.port), options);
    this.#clients.push(client);
    return client;
  }

  /** Connects a raw client to `dn` and handshakes it (795 accepted:true read). */
  async join(dn: TestDirectory, options: RawClientOptions = {}): Promise<RawClient> {
    const client = await this.connect(dn, options);
    await client.handshake();
    return client;
  }

  /** Closes every client socket and stops every node. */
  async cleanup(): Promise<void> {
    for (const client of this.#clients.splice(0)) client.peer.socket.destroy();
    for (const node of this.#nodes.splice(0)) await node.stop();
  }
}

/** An 807 with `code` as the directory node sends it (docs/protocol.md §9.6). */
export function nickAuthResultText(code: NickAuthResultCode): string {
  return envelopeText(
    MessageType.NICK_AUTH_RESULT,
    `{"code":"${code}","verified":${String(code === 'ok')}}`,
  );
}

/** The correct 805 line: signed by `client`'s nick key over its exact 793 line (docs/protocol.md §9.6). */
export function nickAuthProofLine(client: RawClient, challenge: NickAuthChallenge): string {
  return buildNickAuthProofLine(
    signNickAuth(client.identity, challenge.challenge, challenge.directoryId, client.handshakeLine),
  );
}

/**
 * An envelope as the reference writes it, built independently of the codec under test:
 * `{"type": <type>, "line": <JSON string>}` (docs/protocol.md §1.1; exact for ASCII lines).
 */
export function envelopeText(type: number, line: string): string {
  return `{"type": ${type}, "line": ${JSON.stringify(line)}}`;
}

/**
 * A 795 envelope as the reference writes it (docs/protocol.md §2.4, §11.3), built by hand: keys app-name,
 * directory, proto-ver-min, proto-ver-max, features, accepted, nick, network, motd.
 *
 * @param featuresJson - the `features` object exactly as expected on the wire, e.g. `{}`.
 */
export function dnHandshakeText(options: {
  readonly nick: string;
  readonly accepted: boolean;
  readonly motd: string;
  readonly featuresJson?: string;
}): string {
  const line =
    `{"app-name": "joinmarket", "directory": true, "proto-ver-min": 5, "proto-ver-max": 5, ` +
    `"features": ${options.featuresJson ?? '{}'}, "accepted": ${String(options.accepted)}, ` +
    `"nick": "${options.nick}", "network": "${TEST_NETWORK}", "motd": ${JSON.stringify(options.motd)}}`;
  return envelopeText(MessageType.DN_HANDSHAKE, line);
}

/**
 * Waits until `condition()` holds, checking after each turn of the event loop; for state that no
 * line announces (a counter the node bumps). Rejects after `timeoutMs`.
 */
export async function waitUntil(
  what: string,
  condition: () => boolean,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
