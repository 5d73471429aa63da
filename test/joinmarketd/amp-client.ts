/**
 * A scripted AMP client for the joinmarketd tests: connects over loopback, sends raw boxes, and
 * collects what the daemon sends; `take` waits (on data events, no sleeps) for the first
 * unconsumed box with a given identity (`_command` + `_ask`, or `_answer`, or `_error`).
 */
import net from 'node:net';
import { AmpBoxDecoder, encodeBox, type AmpBox } from '../../src/amp/box.js';

/** `JMUp#2`, `answer#3`, `error#5`: what a box is, and its tag. */
export function identityOf(box: AmpBox): string {
  const command = box.get('_command');
  if (command !== undefined) return `${command.toString()}#${box.get('_ask')?.toString() ?? ''}`;
  const answer = box.get('_answer');
  if (answer !== undefined) return `answer#${answer.toString()}`;
  return `error#${box.get('_error')?.toString() ?? ''}`;
}

/** A box as an object of readable values (UTF-8 text, or `hex:` for other bytes). */
export function readable(box: AmpBox): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of [...box.keys()].sort()) {
    const value = box.get(key) ?? Buffer.alloc(0);
    const text = value.toString('utf8');
    out[key] =
      Buffer.from(text, 'utf8').equals(value) && !text.includes('\0')
        ? text
        : `hex:${value.toString('hex')}`;
  }
  return out;
}

export class AmpTestClient {
  readonly received: AmpBox[] = [];
  readonly #socket: net.Socket;
  readonly #decoder = new AmpBoxDecoder();
  #waiters: (() => void)[] = [];
  #closed = false;
  /** Called with every box received (before it is stored), e.g. to answer requests. */
  hook: ((box: AmpBox) => void) | undefined;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      for (const box of this.#decoder.push(chunk)) {
        this.hook?.(box);
        this.received.push(box);
      }
      this.#wake();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
  }

  static connect(port: number): Promise<AmpTestClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        socket.off('error', reject);
        resolve(new AmpTestClient(socket));
      });
      socket.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  send(box: AmpBox): void {
    this.#socket.write(encodeBox(box));
  }

  sendRaw(bytes: Uint8Array): void {
    this.#socket.write(bytes);
  }

  /** Waits until `predicate` holds (checked after each received chunk); fails after `ms`. */
  async until(predicate: () => boolean, what: string, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!predicate()) {
      if (this.#closed) throw new Error(`connection closed while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Removes and returns the first received box with identity `id`, waiting for it. */
  async take(id: string, ms?: number): Promise<AmpBox> {
    await this.until(() => this.received.some((b) => identityOf(b) === id), id, ms);
    const index = this.received.findIndex((b) => identityOf(b) === id);
    const [box] = this.received.splice(index, 1);
    if (box === undefined) throw new Error('unreachable');
    return box;
  }

  /** Resolves when the daemon closed the connection; fails after `ms`. */
  async whenClosed(ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.#closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for the connection to close');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.#socket.destroy();
  }
}
