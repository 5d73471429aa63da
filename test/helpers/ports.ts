/**
 * Ports for tests: listeners bind port 0 and read the port back, in-process ({@link BoundServer})
 * or handed to a child daemon ({@link ChildListener}), so no port is ever chosen first and bound
 * later by someone else.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import net from 'node:net';
import type { Readable } from 'node:stream';
import { listeningFd } from '../../src/demo/cluster.js';
import type { ServerTransport } from '../../src/peer/transport.js';

/**
 * A loopback {@link ServerTransport} that is already listening on a port the system chose, so a
 * node's own location (`127.0.0.1:<port>`) is known before the node is built. Connections that
 * arrive before the node's `listen()` wait for it.
 */
export class BoundServer implements ServerTransport {
  readonly port: number;
  readonly #server: net.Server;
  #onConnection: ((socket: net.Socket) => void) | undefined;
  readonly #early: net.Socket[] = [];
  #closed = false;

  private constructor(server: net.Server, port: number) {
    this.#server = server;
    this.port = port;
    server.on('connection', (socket) => {
      if (this.#onConnection !== undefined) this.#onConnection(socket);
      else this.#early.push(socket);
    });
  }

  /** Listens on `127.0.0.1:0` and reads the port back. */
  static async listen(): Promise<BoundServer> {
    const server = net.createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new BoundServer(server, (server.address() as net.AddressInfo).port);
  }

  /** `127.0.0.1:<port>`. */
  get location(): string {
    return `127.0.0.1:${this.port}`;
  }

  listen(onConnection: (socket: net.Socket) => void): Promise<void> {
    this.#onConnection = onConnection;
    for (const socket of this.#early.splice(0)) onConnection(socket);
    return Promise.resolve();
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#onConnection = undefined;
    for (const socket of this.#early.splice(0)) socket.destroy();
    return new Promise((resolve) => {
      this.#server.close(() => {
        resolve();
      });
    });
  }
}

/**
 * A listening loopback socket for a child daemon that must know its own port before it starts
 * (its location names the port): we bind port 0, read the port back, and hand the socket itself
 * to the child (`onionmc run --listen-fd 3`, socket-activation style), so no one else can take
 * the port in between.
 */
export class ChildListener {
  readonly port: number;
  readonly #server: net.Server;

  private constructor(server: net.Server) {
    this.#server = server;
    this.port = (server.address() as net.AddressInfo).port;
  }

  /** Listens on `127.0.0.1:0`. */
  static async listen(): Promise<ChildListener> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new ChildListener(server);
  }

  /** The socket's file descriptor in this process (see {@link listeningFd}). */
  get fd(): number {
    return listeningFd(this.#server);
  }

  /**
   * Spawns `command args... --listen-fd 3` with this socket as the child's fd 3 (stdout and
   * stderr piped), then closes our copy so only the child accepts on it.
   */
  spawn(
    command: string,
    args: readonly string[],
    options: { env?: NodeJS.ProcessEnv } = {},
  ): ChildProcessByStdio<null, Readable, Readable> {
    const child = spawn(command, [...args, '--listen-fd', '3'], {
      stdio: ['ignore', 'pipe', 'pipe', this.fd],
      ...(options.env !== undefined ? { env: options.env } : {}),
    }) as ChildProcessByStdio<null, Readable, Readable>;
    void this.close();
    return child;
  }

  /** Closes our copy of the socket (the child keeps its own). Idempotent. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.#server.listening) {
        resolve();
        return;
      }
      this.#server.close(() => {
        resolve();
      });
    });
  }
}
