/**
 * A scripted tor control port for tests: NULL authentication, `GETINFO version`, and a settable
 * `status/bootstrap-phase` percentage (Tor control-spec §3.9). It never creates an onion.
 */
import net from 'node:net';

/** A control port that authenticates anyone and reports a settable bootstrap percentage. */
export class BootstrappingTor {
  progress = 45;
  /** ServiceID answered to ADD_ONION (followed by an `HS_DESC UPLOADED` event). */
  serviceId = 'a'.repeat(56);
  /** Commands (keywords) left unanswered, as a tor that hangs. */
  readonly unanswered = new Set<string>();
  readonly commands: string[] = [];
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();

  constructor() {
    this.#server = net.createServer((socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
      socket.on('error', () => undefined);
      let buffer = '';
      socket.setEncoding('utf8').on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\r\n')) >= 0) {
          const line = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          this.commands.push(line);
          if (this.unanswered.has(line.split(' ', 1)[0] ?? '')) continue;
          socket.write(this.#answer(line));
        }
      });
    });
  }

  listen(file: string): Promise<void> {
    return new Promise((resolve) => this.#server.listen(file, resolve));
  }

  #answer(line: string): string {
    if (line.startsWith('PROTOCOLINFO'))
      return '250-PROTOCOLINFO 1\r\n250-AUTH METHODS=NULL\r\n250-VERSION Tor="0.4.9.11"\r\n250 OK\r\n';
    if (line === 'GETINFO version') return '250-version=0.4.9.11\r\n250 OK\r\n';
    if (line === 'GETINFO status/bootstrap-phase')
      return `250-status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=${this.progress} TAG=loading_descriptors SUMMARY="Loading relay descriptors"\r\n250 OK\r\n`;
    if (line === 'QUIT') return '250 closing connection\r\n';
    if (line.startsWith('ADD_ONION'))
      return `250-ServiceID=${this.serviceId}\r\n250 OK\r\n650 HS_DESC UPLOADED ${this.serviceId} UNKNOWN $${'A'.repeat(40)}~relay1\r\n`;
    return '250 OK\r\n';
  }

  close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    return new Promise((resolve) =>
      this.#server.close(() => {
        resolve();
      }),
    );
  }
}
