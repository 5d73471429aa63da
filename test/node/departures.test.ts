/**
 * Departures (docs/protocol.md §3.3 case 2) when many peers leave at once: every remaining peer hears every
 * `;D` entry, in peerlist lines under the send limit, each starting with the directory's own entry
 * as the reference's do. (Departures of one event-loop turn share a line, so a mass disconnect does
 * not queue N² frames; the memory effect is measured by bench/relay.ts.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { decodeEnvelope } from '../../src/wire/envelope.js';
import { MAX_SEND_LINE_BYTES } from '../../src/wire/framing.js';
import { decodePeerlist } from '../../src/wire/peerlist.js';
import { DirectoryFixture } from './directory-clients.js';

const fx = new DirectoryFixture();
afterEach(async () => {
  await fx.cleanup();
});

describe('mass departure', () => {
  it('announces all 300 departures to the peer that stays', async () => {
    const dn = await fx.directory();
    const watcher = await fx.join(dn);
    const leaving = [];
    for (let i = 0; i < 300; i++) leaving.push(await fx.join(dn));
    for (const client of leaving) client.peer.socket.destroy();
    const departed = new Set<string>();
    let lines = 0;
    while (departed.size < leaving.length) {
      const text = await watcher.next();
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(MAX_SEND_LINE_BYTES);
      const envelope = decodeEnvelope(text);
      expect(envelope.type).toBe(789);
      expect(envelope.line.startsWith(`${dn.ownEntry},`)).toBe(true);
      for (const entry of decodePeerlist(envelope.line).slice(1)) {
        expect(entry.disconnected).toBe(true);
        departed.add(entry.nick);
      }
      lines++;
    }
    expect([...departed].sort()).toEqual(leaving.map((c) => c.nick).sort());
    expect(lines).toBeLessThanOrEqual(leaving.length);
    await watcher.expectQuiet();
  });
});
