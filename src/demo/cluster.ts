/**
 * Runs onionmc nodes as separate processes on loopback in testing mode (docs/protocol.md §8.4), each with its
 * own joinmarket.cfg and local API on a unix socket. Used by the demo (and its end-to-end test);
 * test helpers live under test/helpers/.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiClient } from '../api/client.js';
import { OnionmcError } from '../errors.js';
import { pollUntil } from '../util/poll.js';

/**
 * The compiled CLI: `../cli/main.js` next to this file when it runs compiled (dist/demo/), else
 * the project's dist/cli/main.js (this file run from source, as the tests under vitest do, where
 * src/cli/main.js does not exist).
 */
export const CLI_PATH = ((): string => {
  const sibling = fileURLToPath(new URL('../cli/main.js', import.meta.url));
  return fs.existsSync(sibling)
    ? sibling
    : fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
})();

/**
 * A listening loopback socket on a port the system chose (port 0, read back), for a node process
 * that must know its own port before it starts (its location names it): the process is handed
 * the socket itself ({@link spawnWithListener}), so no one else can take the port in between.
 */
export async function listenOnFreePort(): Promise<net.Server> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

/** The port of a server from {@link listenOnFreePort}. */
export function portOf(server: net.Server): number {
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('not listening on TCP');
  return address.port;
}

/**
 * The file descriptor of a listening server, to hand to a child process: spawn duplicates an
 * integer `stdio` entry ("an open file descriptor in the parent") into the child at that index.
 * Node has no public accessor for a server's fd, so this reads the handle's `fd` (POSIX only);
 * it is read here alone.
 * @throws Error when the server is not listening.
 */
export function listeningFd(server: net.Server): number {
  const fd = (server as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('the server has no listening socket');
  return fd;
}

/**
 * Spawns `node args... --listen-fd 3` with `server`'s socket as the child's fd 3 (`onionmc run
 * --listen-fd`), stdout and stderr to `out`, then closes our copy so only the child accepts.
 */
export function spawnWithListener(
  args: readonly string[],
  server: net.Server,
  out: number | 'ignore',
): ChildProcess {
  const fd = listeningFd(server);
  const child = spawn(process.execPath, [...args, '--listen-fd', '3'], {
    stdio: ['ignore', out, out, fd],
  });
  server.close();
  return child;
}

export { pollUntil };

/** One node process of a {@link Cluster}. */
export interface ClusterNode {
  readonly name: string;
  readonly api: ApiClient;
  readonly configFile: string;
  readonly logFile: string;
  readonly servingPort: number;
  readonly process: ChildProcess;
}

/** Options of one node. */
export interface NodeSpec {
  readonly name: string;
  readonly role: 'directory' | 'maker' | 'taker';
  /** Directory locations `host:port`; for a directory node, computed from its own port. */
  readonly directories?: readonly string[];
  readonly network?: string;
  /** Extra `key = value` lines for the onion section. */
  readonly extra?: Readonly<Record<string, string>>;
}

/** A set of node processes sharing a temporary folder. */
export class Cluster {
  readonly dir: string;
  readonly nodes = new Map<string, ClusterNode>();

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Creates the temporary folder. */
  static async create(prefix = 'onionmc-'): Promise<Cluster> {
    return new Cluster(await fsp.mkdtemp(path.join(os.tmpdir(), prefix)));
  }

  /** Writes the node's config, starts it, and waits until its API answers. */
  async start(spec: NodeSpec): Promise<ClusterNode> {
    const listener = await listenOnFreePort();
    const servingPort = portOf(listener);
    const directories =
      spec.role === 'directory' ? [`127.0.0.1:${servingPort}`] : (spec.directories ?? []);
    const apiPath = path.join(this.dir, `${spec.name}.sock`);
    const configFile = path.join(this.dir, `${spec.name}.cfg`);
    const logFile = path.join(this.dir, `${spec.name}.log`);
    const extra = Object.entries(spec.extra ?? {}).map(([k, v]) => `${k} = ${v}`);
    await fsp.writeFile(
      configFile,
      [
        '[BLOCKCHAIN]',
        `network = ${spec.network ?? 'testnet'}`,
        '',
        '[MESSAGING:onion]',
        'type = onion',
        'onion_serving_host = 127.0.0.1',
        `onion_serving_port = ${servingPort}`,
        'hidden_service_dir =',
        `directory_nodes = ${directories.join(',')}`,
        'regtest_count = 1,1',
        `api = unix:${apiPath}`,
        ...extra,
        '',
      ].join('\n'),
    );
    const log = fs.openSync(logFile, 'a');
    const args = [CLI_PATH, 'run', '--config', configFile, '--log-level', 'debug', '--allow-root'];
    if (spec.role === 'maker') args.push('--maker');
    const child = spawnWithListener(args, listener, log);
    fs.closeSync(log);
    const node: ClusterNode = {
      name: spec.name,
      api: new ApiClient({ kind: 'unix', path: apiPath }),
      configFile,
      logFile,
      servingPort,
      process: child,
    };
    this.nodes.set(spec.name, node);
    let exited: string | undefined;
    child.once('exit', (code, signal) => {
      exited = `exited with ${code ?? signal ?? '?'}`;
    });
    // A process that exited ends the wait at once (pollUntil retries on a thrown error).
    const outcome = await pollUntil(
      `${spec.name} to start`,
      async () => {
        if (exited !== undefined) return { exited };
        const res = await node.api.request('GET', '/health');
        return res.status === 200 ? { exited: undefined } : undefined;
      },
      15_000,
    );
    if (outcome.exited !== undefined)
      throw new OnionmcError(
        'ERR_CLOSED',
        `${spec.name} ${outcome.exited}: ${await this.tail(spec.name)}`,
      );
    return node;
  }

  /** The node called `name`. */
  node(name: string): ClusterNode {
    const node = this.nodes.get(name);
    if (node === undefined) throw new Error(`no node ${name}`);
    return node;
  }

  /** The last lines of a node's log. */
  async tail(name: string, lines = 20): Promise<string> {
    const node = this.nodes.get(name);
    if (node === undefined) return '';
    const text = await fsp.readFile(node.logFile, 'utf8').catch(() => '');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  }

  /** Stops one node with SIGTERM and waits for it to exit; returns its exit code. */
  async stopNode(name: string): Promise<number | null> {
    const node = this.node(name);
    this.nodes.delete(name);
    if (node.process.exitCode !== null) return node.process.exitCode;
    const exited = new Promise<number | null>((resolve) =>
      node.process.once('exit', (code) => {
        resolve(code);
      }),
    );
    node.process.kill('SIGTERM');
    const timer = setTimeout(() => node.process.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }

  /** Stops every node and removes the folder (unless `keep`). */
  async stop(keep = false): Promise<void> {
    await Promise.all([...this.nodes.keys()].map((name) => this.stopNode(name)));
    if (!keep) await fsp.rm(this.dir, { recursive: true, force: true });
  }
}
