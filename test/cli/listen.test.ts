/**
 * `onionmc listen` (src/cli/client-commands.ts `listenCommand`) against a loopback HTTP server on
 * a unix socket that stands in for the daemon's `/v1/events`: what it prints, a refused stream, a
 * stream the daemon cuts, and the cap on one event.
 */
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LISTEN_MAX_EVENT_CHARS, listenCommand } from '../../src/cli/client-commands.js';

interface FakeDaemon {
  socketPath: string;
  close(): Promise<void>;
}

let daemon: FakeDaemon | undefined;

afterEach(async () => {
  await daemon?.close();
  daemon = undefined;
});

/**
 * Serves `/v1/events` on a unix socket: `write` gets the open response (its 200 head written,
 * unless `open` is false).
 */
async function fakeDaemon(
  write: (res: http.ServerResponse) => void,
  open = true,
): Promise<FakeDaemon> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'onionmc-listen-'));
  const socketPath = path.join(dir, 'api.sock');
  const server = http.createServer((req, res) => {
    if (open) res.writeHead(200, { 'content-type': 'text/event-stream' });
    write(res);
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    socketPath,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Runs `listenCommand` against `daemon` with the given event names and output form; `onLine` sees
 * each printed line after it is recorded in `lines`.
 */
function listen(
  to: FakeDaemon,
  names: readonly string[],
  json: boolean,
  onLine: () => void = () => undefined,
): { ended: Promise<void>; lines: string[] } {
  const lines: string[] = [];
  const ended = listenCommand(
    { kind: 'unix', path: to.socketPath },
    names,
    json,
    {
      line: (text) => {
        lines.push(text);
        onLine();
      },
    },
    new AbortController().signal,
  );
  return { ended, lines };
}

describe('onionmc listen', () => {
  it('prints the events asked for, goes on past an unknown field and a bad retry, and rejects once the daemon closes', async () => {
    let printed!: () => void;
    const firstPrinted = new Promise<void>((resolve) => (printed = resolve));
    daemon = await fakeDaemon((res) => {
      res.write(
        'retry: soon\nmood: fine\nevent: privmsg\ndata: {"from":"J5a","line":"!fill 1"}\n\n',
      );
      // The rest only once the first event was printed: past the two bad fields.
      void firstPrinted.then(() =>
        res.end('event: pubmsg\ndata: {"from":"J5b"}\n\nevent: privmsg\ndata: not json\n\n'),
      );
    });
    const { ended, lines } = listen(daemon, ['privmsg'], false, printed);
    await expect(ended).rejects.toThrow('the daemon closed the event stream');
    expect(lines).toEqual(['privmsg {"from":"J5a","line":"!fill 1"}', 'privmsg "not json"']);
  });

  it("rejects a refused stream with the daemon's own error, not only its status", async () => {
    const message =
      '32 event streams are open, the most the API serves at once; close one and retry';
    daemon = await fakeDaemon((res) => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'ERR_BUSY', message } }));
    }, false);
    const { ended } = listen(daemon, [], false);
    await expect(ended).rejects.toThrow(`GET /v1/events: 503 ERR_BUSY ${message}`);
    await expect(ended).rejects.toMatchObject({ code: 'ERR_API' });
  });

  it('rejects, naming the cause, when the daemon cuts the stream instead of ending it', async () => {
    // A daemon cuts a client that reads too slowly (docs/limits.md), or dies: the response stops
    // without its end. listen used to wait forever (and the CLI exit 0, saying nothing).
    daemon = await fakeDaemon((res) => {
      res.write('event: privmsg\ndata: {"ok":true}\n\n', () => {
        res.destroy();
      });
    });
    const { ended, lines } = listen(daemon, [], true);
    await expect(ended).rejects.toThrow('the daemon cut the event stream');
    await expect(ended).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    expect(lines).toEqual(['{"event":"privmsg","data":{"ok":true}}']);
  });

  it('closes the stream with its own error once one event passes the cap, and prints nothing of it', async () => {
    let closed!: () => void;
    const serverSawClose = new Promise<void>((resolve) => (closed = resolve));
    daemon = await fakeDaemon((res) => {
      res.write('event: privmsg\ndata: {"ok":true}\n\n');
      // An event that never ends: written in pieces, as a daemon gone wrong would stream it.
      res.write('event: privmsg\ndata: ');
      const piece = 'x'.repeat(64 * 1024);
      for (let sent = 0; sent <= LISTEN_MAX_EVENT_CHARS; sent += piece.length) res.write(piece);
      res.on('close', closed);
    });
    const { ended, lines } = listen(daemon, [], true);
    await expect(ended).rejects.toThrow(`passed ${String(LISTEN_MAX_EVENT_CHARS)} characters`);
    await expect(ended).rejects.toMatchObject({ code: 'ERR_API' });
    await serverSawClose;
    expect(lines).toEqual(['{"event":"privmsg","data":{"ok":true}}']);
  });
});
