/**
 * The baseline relay of the benchmark: not product code, the least work a directory node must do
 * (docs/protocol.md §2.3-§2.4, §3.3, §4.2, §4.4) and nothing more, as a yardstick for onionmc's
 * directory node in the same process layout:
 * - split the byte stream on CRLF (no line cap beyond 65,536 bytes, no UTF-8 validation);
 * - JSON.parse each envelope; a 793 registers the sender's nick and location (inner JSON parsed)
 *   and is answered with a fixed 795;
 * - a 685 is looked up by recipient nick in a Map and forwarded as received, together with the
 *   sender's 789 (our entry, then the sender's), in ONE socket write;
 * - a 687 is forwarded as received to every other handshaked peer, one write each.
 * No sender check, no per-peer queue limit, no heartbeat, no logging, no counters.
 */
import net from 'node:net';
import type { RunningRelay } from './directory-adapter.js';

const CRLF = Buffer.from('\r\n');
const MAX_LINE_BYTES = 65_536;

interface Peer {
  readonly socket: net.Socket;
  nick: string | undefined;
  /** `{"type": 789, "line": "<own>,<nick;location>"}\r\n`, built at handshake. */
  peerlistFrame: Buffer | undefined;
}

function pyString(text: string): string {
  return JSON.stringify(text); // ASCII-only content here: the same bytes as Python's json.dumps
}

/** Starts the baseline relay at 127.0.0.1:`port`, accepting on the listening socket `fd` bound there. */
export async function startBaselineRelay(port: number, fd: number): Promise<RunningRelay> {
  const ownEntry = `J5BaselineRelay1;127.0.0.1:${port}`;
  const handshakeReply = Buffer.from(
    `{"type": 795, "line": ${pyString(
      `{"app-name": "joinmarket", "directory": true, "proto-ver-min": 5, "proto-ver-max": 5, "features": {}, "accepted": true, "nick": "J5BaselineRelay1", "network": "testnet", "motd": "baseline"}`,
    )}}\r\n`,
  );
  const byNick = new Map<string, Peer>();
  const handshaked = new Set<Peer>();

  function handleLine(peer: Peer, buf: Buffer, start: number, end: number): void {
    const envelope = JSON.parse(buf.toString('utf8', start, end)) as { type: number; line: string };
    const line = envelope.line;
    if (envelope.type === 685) {
      if (peer.peerlistFrame === undefined) return;
      const bang = line.indexOf('!');
      const recipient = byNick.get(line.slice(bang + 1, line.indexOf('!', bang + 1)));
      if (recipient === undefined) return;
      recipient.socket.write(Buffer.concat([buf.subarray(start, end + 2), peer.peerlistFrame]));
    } else if (envelope.type === 687) {
      if (peer.peerlistFrame === undefined) return;
      const frame = Buffer.from(buf.subarray(start, end + 2));
      for (const other of handshaked) if (other !== peer) other.socket.write(frame);
    } else if (envelope.type === 793) {
      const hs = JSON.parse(line) as { nick: string; 'location-string': string };
      peer.nick = hs.nick;
      peer.peerlistFrame = Buffer.from(
        `{"type": 789, "line": ${pyString(`${ownEntry},${hs.nick};${hs['location-string']}`)}}\r\n`,
      );
      byNick.set(hs.nick, peer);
      handshaked.add(peer);
      peer.socket.write(handshakeReply);
    }
  }

  const server = net.createServer({ noDelay: true }, (socket) => {
    const peer: Peer = { socket, nick: undefined, peerlistFrame: undefined };
    let pending: Buffer | undefined;
    socket.on('data', (chunk: Buffer) => {
      const buf = pending === undefined ? chunk : Buffer.concat([pending, chunk]);
      let start = 0;
      let end: number;
      try {
        while ((end = buf.indexOf(CRLF, start)) >= 0) {
          handleLine(peer, buf, start, end);
          start = end + 2;
        }
      } catch {
        socket.destroy();
        return;
      }
      pending = start < buf.length ? Buffer.from(buf.subarray(start)) : undefined;
      if (pending !== undefined && pending.length > MAX_LINE_BYTES) socket.destroy();
    });
    const forget = (): void => {
      handshaked.delete(peer);
      if (peer.nick !== undefined && byNick.get(peer.nick) === peer) byNick.delete(peer.nick);
    };
    socket.on('close', forget);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ fd }, resolve);
  });
  return {
    port,
    ownEntry,
    handshakedPeers: () => handshaked.size,
    counters: () => ({}),
    close: () =>
      new Promise((resolve) => {
        server.close(() => {
          resolve();
        });
      }),
  };
}
