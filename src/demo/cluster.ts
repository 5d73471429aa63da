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
 * A loopback port for a node process, which must know its own port before it binds (its location
 * names it): bind 0, read it, release it. Racy by nature; the demo and the benchmark use it for child processes.
 */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
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
    const servingPort = await freePort();
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
    const child = spawn(process.execPath, args, { stdio: ['ignore', log, log] });
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
