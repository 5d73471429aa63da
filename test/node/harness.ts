/**
 * In-process nodes on loopback for policy tests: directory nodes and maker/taker ClientNodes
 * wired with plain TCP (testing mode), short reconnect backoff, and event recorders.
 */
import { silentLogger } from '../../src/log.js';
import { createNickIdentity, type NickIdentity } from '../../src/message/nick.js';
import {
  ClientNode,
  type ClientNodeEvents,
  type ClientNodeOptions,
} from '../../src/node/client-node.js';
import {
  DirectoryNode,
  type DirectoryNodeOptions,
  type RelayEvent,
} from '../../src/node/directory-node.js';
import { TcpDialer, TcpServerTransport } from '../../src/peer/transport.js';
import { encodeEnvelope } from '../../src/wire/envelope.js';
import { encodeDirectoryHandshake } from '../../src/wire/handshake.js';
import { BoundServer } from '../helpers/ports.js';
import { ScriptedServer, type ScriptedPeer } from '../integration/transcript.js';

/** Fast reconnects for tests. */
export const TEST_BACKOFF = {
  initialMs: 20,
  factor: 1.5,
  maxMs: 200,
  jitterMs: [0, 10] as const,
  stableMs: 60_000,
};

/** The features the daemon advertises for makers and takers. */
export const CLIENT_FEATURES = { nick_auth: true, peerlist_features: true, ping: true };

/** Waits for `predicate` over items pushed into a list, with a deadline; no fixed sleeps. */
export class Recorder<T> {
  readonly items: T[] = [];
  readonly #waiters = new Set<() => void>();

  push(item: T): void {
    this.items.push(item);
    for (const w of this.#waiters) w();
  }

  waitFor(what: string, predicate: (item: T) => boolean, timeoutMs = 5_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = this.items.find(predicate);
        if (found !== undefined) {
          cleanup();
          resolve(found);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(
            `timed out waiting for ${what}; have ${JSON.stringify(this.items).slice(0, 2000)}`,
          ),
        );
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }
}

/** A ClientNode event with its name. */
export interface NodeEvent {
  readonly name: keyof ClientNodeEvents;
  readonly data: ClientNodeEvents[keyof ClientNodeEvents];
}

/** Records every event of a ClientNode. */
export function recordEvents(node: ClientNode): Recorder<NodeEvent> {
  const recorder = new Recorder<NodeEvent>();
  for (const name of [
    'privmsg',
    'pubmsg',
    'nickLeave',
    'directory',
    'peer',
    'peerlist',
    'dropped',
  ] as const) {
    node.on(name, (data) => {
      recorder.push({ name, data });
    });
  }
  return recorder;
}

/** Starts a directory node on a free port. */
export async function startDirectory(
  options: Partial<DirectoryNodeOptions> & { port?: number } = {},
): Promise<{ node: DirectoryNode; location: string; port: number; relays: Recorder<RelayEvent> }> {
  const bound =
    options.port === undefined && options.server === undefined
      ? await BoundServer.listen()
      : undefined;
  const port = bound?.port ?? options.port ?? 0;
  const location = options.ownLocation ?? `127.0.0.1:${port}`;
  const node = new DirectoryNode({
    identity: createNickIdentity(),
    network: 'testnet',
    ownLocation: location,
    motd: 'test directory',
    server: bound ?? new TcpServerTransport('127.0.0.1', port),
    logger: silentLogger(),
    ...options,
  });
  const relays = new Recorder<RelayEvent>();
  node.onRelay((event) => {
    relays.push(event);
  });
  await node.start();
  return { node, location, port, relays };
}

/** Starts a maker or taker connected to `directories`. */
export async function startClient(
  role: 'maker' | 'taker',
  directories: readonly string[],
  options: Partial<ClientNodeOptions> & {
    identity?: NickIdentity;
    waitForDirectories?: boolean;
  } = {},
): Promise<{ node: ClientNode; events: Recorder<NodeEvent>; location: string }> {
  const bound = role === 'maker' ? await BoundServer.listen() : undefined;
  const location = bound?.location ?? 'NOT-SERVING-ONION';
  const node = new ClientNode({
    role,
    identity: options.identity ?? createNickIdentity(),
    network: 'testnet',
    ownLocation: location,
    directories,
    dialer: new TcpDialer(),
    ...(bound !== undefined ? { server: bound } : {}),
    logger: silentLogger(),
    features: CLIENT_FEATURES,
    backoff: TEST_BACKOFF,
    ...options,
  });
  const events = recordEvents(node);
  await node.start();
  if (options.waitForDirectories === false) return { node, events, location };
  await events.waitFor(`${role} to handshake with every directory`, () =>
    node.directoryStatus().every((d) => d.state === 'handshaked'),
  );
  return { node, events, location };
}

/** A directory node's 795 with these features. */
export function directoryHandshake(features: Record<string, boolean>, nick: string): string {
  return encodeEnvelope(
    795,
    encodeDirectoryHandshake({
      appName: 'joinmarket',
      directory: true,
      protoVerMin: 5,
      protoVerMax: 5,
      features,
      accepted: true,
      nick,
      network: 'testnet',
      motd: '',
    }),
  );
}

/** Another nick, for which the scripted directories claim to carry traffic. */
export const PEER = createNickIdentity().nick;

/**
 * A taker linked to `count` scripted directory nodes (loopback servers whose lines the test reads
 * and writes; they advertise `ping` unless `ping: false`), each of which has carried a pubmsg of
 * {@link PEER} (so each is a route to it, docs/protocol.md §4.3).
 */
export async function takerWithDirectories(
  stops: (() => Promise<void>)[],
  count: number,
  options: { ping?: boolean; client?: Partial<ClientNodeOptions> } = {},
): Promise<{ taker: ClientNode; links: ScriptedPeer[]; locations: string[] }> {
  const servers = await Promise.all(Array.from({ length: count }, () => ScriptedServer.listen()));
  for (const s of servers) stops.push(() => s.close());
  const locations = servers.map((s) => `127.0.0.1:${s.port}`);
  const taker = await startClient('taker', locations, {
    ...options.client,
    waitForDirectories: false,
  });
  stops.push(() => taker.node.stop());
  const links: ScriptedPeer[] = [];
  for (const [i, server] of servers.entries()) {
    const link = await server.connection(0);
    await link.next(); // the taker's 793
    link.send(
      directoryHandshake(options.ping === false ? {} : { ping: true }, createNickIdentity().nick),
    );
    link.send(`{"type": 687, "line": "${PEER}!PUBLIC!hp2 0${i}"}`);
    await taker.events.waitFor(
      `the pubmsg through directory ${i}`,
      (e) => e.name === 'pubmsg' && (e.data as { message: string }).message === `!hp2 0${i}`,
    );
    links.push(link);
  }
  return { taker: taker.node, links, locations };
}
