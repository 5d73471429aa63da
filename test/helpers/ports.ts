/**
 * Ports for tests: in-process listeners bind port 0 and read the port back ({@link BoundServer}),
 * so no port is ever chosen first and bound later by someone else.
 */
import net from 'node:net';
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
 * A loopback port for a child process that must know its own port before it binds (a daemon
 * whose location names its port): bind 0, read it, release it. Racy by nature; in-process tests
 * use {@link BoundServer} instead.
 */
export async function portForChildProcess(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => {
        resolve(port);
      });
    });
  });
}
