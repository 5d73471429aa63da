/**
 * Departure announcements of a directory node (docs/protocol.md §3.3 case 2): the departures of
 * one event-loop turn go out together, as one 789 `own,gone1,gone2,…` to every remaining
 * handshaked peer instead of one per departure, split to stay under the 40,000-byte line limit
 * (§1.3). A lone departure gives exactly the reference's line; reference clients read every `;D`
 * entry of a multi-entry peerlist (§3.2). Without this, a mass disconnect of N peers (a network
 * blip) would queue N² frames at once.
 */
import { encodeEnvelope } from '../wire/envelope.js';
import { encodeLine } from '../wire/framing.js';
import { MessageType } from '../wire/message-types.js';
import { encodePeerlistEntry } from '../wire/peerlist.js';
import { NOT_SERVING_ONION } from '../wire/location.js';
import { DEPARTURE_LINE_MAX_CHARS, type DirectoryPeer } from './directory-types.js';

/** Collects departures and announces them once per turn. */
export class DepartureAnnouncer {
  readonly #ownEntry: string;
  readonly #recipients: () => Iterable<DirectoryPeer>;
  readonly #onAnnounced: (count: number) => void;
  #departures: { nick: string; entry: string }[] = [];
  #timer: NodeJS.Immediate | undefined;

  constructor(
    ownEntry: string,
    recipients: () => Iterable<DirectoryPeer>,
    onAnnounced: (count: number) => void,
  ) {
    this.#ownEntry = ownEntry;
    this.#recipients = recipients;
    this.#onAnnounced = onAnnounced;
  }

  /** `nick` (last at `location`) left; announced at the end of this turn. */
  add(nick: string, location: string | undefined): void {
    this.#departures.push({
      nick,
      entry: encodePeerlistEntry({
        nick,
        location: location ?? NOT_SERVING_ONION,
        disconnected: true,
      }),
    });
    if (this.#departures.length === 1)
      this.#timer = setImmediate(() => {
        this.#timer = undefined;
        this.flush();
      });
  }

  /** Forgets pending departures (stopping). */
  clear(): void {
    clearImmediate(this.#timer);
    this.#timer = undefined;
    this.#departures = [];
  }

  /** Sends the departures collected so far. */
  flush(): void {
    const gone = this.#departures;
    this.#departures = [];
    if (gone.length === 0) return;
    const frames = this.#frames(gone);
    const goneNicks = new Set(gone.map((d) => d.nick));
    for (const other of this.#recipients()) {
      // A peer that took over a departed nick (a verified newcomer) is not told its own nick left.
      const own = other.nick !== undefined && goneNicks.has(other.nick);
      for (const frame of own ? this.#frames(gone.filter((d) => d.nick !== other.nick)) : frames) {
        other.conn.sendEncoded(frame, true);
      }
    }
    this.#onAnnounced(gone.length);
  }

  #frames(gone: readonly { entry: string }[]): Uint8Array[] {
    if (gone.length === 0) return [];
    const frames: Uint8Array[] = [];
    let line = this.#ownEntry;
    for (const { entry } of gone) {
      if (line.length + 1 + entry.length > DEPARTURE_LINE_MAX_CHARS && line !== this.#ownEntry) {
        frames.push(encodeLine(encodeEnvelope(MessageType.PEERLIST, line)));
        line = this.#ownEntry;
      }
      line += `,${entry}`;
    }
    frames.push(encodeLine(encodeEnvelope(MessageType.PEERLIST, line)));
    return frames;
  }
}
