/**
 * The reference transcript (test/fixtures/reference-transcript.txt) as a list of events, and a
 * scripted loopback peer that plays one side of it: it writes lines and reads what the other side
 * answers, split into lines, so a test can compare them byte for byte.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';

/** Nicks and locations of the nodes in the transcript. */
export const T = {
  dnNick: 'J54wePPpkfqsdZA5',
  makerNick: 'J522DFcripZgL71x',
  takerNick: 'J54ZTGBtkwHT2peV',
  dnLocation: '127.0.0.1:5222',
  makerLocation: '127.0.0.1:5223',
  motd: 'jmref test directory',
} as const;

/** One transcript event. */
export type TranscriptEvent =
  | { kind: 'connect'; conn: number; from: string; to: string }
  | { kind: 'line'; conn: number; from: string; to: string; type: string; text: string }
  | { kind: 'fin'; conn: number; from: string; to: string };

/** Parses the transcript into events, in order. */
export function transcriptEvents(): TranscriptEvent[] {
  const raw = readFileSync(
    new URL('../fixtures/reference-transcript.txt', import.meta.url),
    'utf8',
  );
  const events: TranscriptEvent[] = [];
  let pending: { conn: number; from: string; to: string; type: string } | undefined;
  for (const row of raw.split('\n')) {
    if (row.startsWith('#') || row.trim() === '') continue;
    const line = /^ {2}> (.*)$/.exec(row);
    if (line !== null) {
      if (pending === undefined) throw new Error(`line without header: ${row}`);
      events.push({ kind: 'line', ...pending, text: line[1] ?? '' });
      pending = undefined;
      continue;
    }
    const tcp = /^\s*[\d.]+ == (\w+) -> (\w+)\s+TCP (connect|FIN) #(\d+)/.exec(row);
    if (tcp !== null) {
      const [, from = '', to = '', what, conn = '0'] = tcp;
      events.push({ kind: what === 'connect' ? 'connect' : 'fin', conn: Number(conn), from, to });
      continue;
    }
    const header = /^\s*[\d.]+ #(\d+) (\w+) -> (\w+) \[([a-z-]+)\]/.exec(row);
    if (header !== null) {
      const [, conn = '0', from = '', to = '', type = ''] = header;
      pending = { conn: Number(conn), from, to, type };
      continue;
    }
    throw new Error(`unparsed transcript row: ${row}`);
  }
  return events;
}

/** A raw loopback socket that collects CRLF lines and lets a test await the next one. */
export class ScriptedPeer {
  readonly lines: string[] = [];
  readonly #waiters: (() => void)[] = [];
  #buffer = '';
  closed = false;

  constructor(readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.#buffer += chunk;
      let end;
      while ((end = this.#buffer.indexOf('\r\n')) >= 0) {
        this.lines.push(this.#buffer.slice(0, end));
        this.#buffer = this.#buffer.slice(end + 2);
      }
      this.#wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number): Promise<ScriptedPeer> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        resolve(new ScriptedPeer(socket));
      });
      socket.once('error', reject);
    });
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Writes one line plus CRLF. */
  send(text: string): void {
    this.socket.write(`${text}\r\n`);
  }

  /** The next unread line; rejects if the socket closes first or after `timeoutMs`. */
  async next(timeoutMs = 5_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) return line;
      if (this.closed) throw new Error('connection closed while waiting for a line');
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error('timed out waiting for a line');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /**
   * Removes and returns the first line equal to `expected`, waiting for it; on timeout returns the
   * lines that did arrive, so the failed comparison shows them.
   */
  async take(expected: string, timeoutMs = 5_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.lines.indexOf(expected);
      if (index >= 0) return this.lines.splice(index, 1)[0] ?? '';
      const remaining = deadline - Date.now();
      if (remaining <= 0 || this.closed) return this.lines.join('\n') || '(nothing)';
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Resolves when the other side has closed the connection. */
  async waitClosed(timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error('timed out waiting for the connection to close');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  end(): void {
    this.socket.end();
  }
}

/** For 789 lines: the same envelope with its entries sorted (the reference's order is a set's). */
export function normalizePeerlist(text: string): string {
  const env = JSON.parse(text) as { type: number; line: string };
  if (env.type !== 789) return text;
  return `789:${env.line.split(',').sort().join(',')}`;
}

/** A loopback server whose accepted connections become {@link ScriptedPeer}s, in order. */
export class ScriptedServer {
  readonly accepted: ScriptedPeer[] = [];
  readonly #waiters: (() => void)[] = [];

  private constructor(readonly server: net.Server) {
    server.on('connection', (socket) => {
      this.accepted.push(new ScriptedPeer(socket));
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  static async listen(): Promise<ScriptedServer> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new ScriptedServer(server);
  }

  get port(): number {
    const address = this.server.address();
    return typeof address === 'object' && address !== null ? address.port : 0;
  }

  /** The `index`-th accepted connection (0-based), waiting for it if needed. */
  async connection(index: number, timeoutMs = 5_000): Promise<ScriptedPeer> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const peer = this.accepted[index];
      if (peer !== undefined) return peer;
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`no connection #${index} accepted in time`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async close(): Promise<void> {
    for (const peer of this.accepted) peer.socket.destroy();
    await new Promise<void>((resolve) =>
      this.server.close(() => {
        resolve();
      }),
    );
  }
}

/** The `line` of an envelope text. */
export function lineOf(envelopeText: string): string {
  return (JSON.parse(envelopeText) as { line: string }).line;
}
