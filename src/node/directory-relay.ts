/**
 * Relaying of a directory node (docs/protocol.md §3.3, §3.4, §4.2, §4.4): pubmsgs to every other handshaked
 * peer (charged by fan-out, docs/limits.md), privmsgs to the owner of the recipient nick, getpeerlist
 * answers, and relay events for the operator's API. Part of {@link DirectoryNode}
 * (directory-node.ts); it holds no per-connection state.
 */
import { hasCode } from '../errors.js';
import { PUBLIC_NICK, formatPubmsgLine, parseChannelLine } from '../message/privmsg.js';
import type { PeerConnection } from '../peer/connection.js';
import { frameArena } from '../peer/frame-arena.js';
import { canonicalFrame, encodeEnvelope } from '../wire/envelope.js';
import { encodeLine, MAX_SEND_LINE_BYTES } from '../wire/framing.js';
import { MessageType } from '../wire/message-types.js';
import { encodePeerlist, type PeerlistEntry } from '../wire/peerlist.js';
import { type Counters, dropCounter } from './counters.js';
import type { DirectoryLimits } from './directory-limits.js';
import {
  GETPEERLIST_CHUNK_ENTRIES,
  type DirectoryPeer,
  type RelayEvent,
} from './directory-types.js';

/** What relaying needs of its node. */
export interface RelayContext {
  readonly counters: Counters;
  readonly limits: DirectoryLimits;
  readonly handshaked: ReadonlySet<DirectoryPeer>;
  /**
   * The connection of each handshaked peer, by nick (the keys of the directory node's nick map,
   * once handshaked): a privmsg's recipient is looked up here, so that relaying it touches the
   * recipient's connection only, not its record too.
   */
  readonly relayTargets: ReadonlyMap<string, PeerConnection>;
}

/** The relay part of one directory node. */
export class DirectoryRelay {
  readonly #ctx: RelayContext;
  readonly #listeners = new Set<(event: RelayEvent) => void>();
  /** The 791 answers without and with `;F:` ({@link handleGetPeerlist}); undefined until built. */
  #peerlistAnswer: PeerlistAnswer | undefined;
  #peerlistAnswerWithFeatures: PeerlistAnswer | undefined;

  constructor(ctx: RelayContext) {
    this.#ctx = ctx;
  }

  /** See {@link DirectoryNode.onRelay}. */
  onRelay(listener: (event: RelayEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emitRelay(
    kind: RelayEvent['kind'],
    from: string,
    to: string,
    message: string,
    line: string,
  ): void {
    if (this.#listeners.size === 0) return;
    const space = message.indexOf(' ');
    const event: RelayEvent = {
      kind,
      from,
      to,
      cmd: message.slice(1, space < 0 ? undefined : space),
      line,
    };
    for (const listener of this.#listeners) listener(event);
  }

  /** Checks that a 685/687 comes from a handshaked peer under its own nick (docs/protocol.md §4.1, ng rule). */
  #senderOf(
    peer: DirectoryPeer,
    line: string,
  ): { from: string; to: string; message: string } | undefined {
    if (peer.state !== 'handshaked') {
      this.#ctx.counters.add(dropCounter('not-handshaked'));
      return undefined;
    }
    const parsed = parseChannelLine(line);
    if (parsed === undefined) {
      this.#ctx.counters.add(dropCounter('malformed'));
      return undefined;
    }
    if (parsed.from !== peer.nick) {
      this.#ctx.counters.add(dropCounter('spoofed-sender'));
      peer.conn.logger.warn({ claimed: parsed.from }, 'message under another nick dropped');
      return undefined;
    }
    return parsed;
  }

  /**
   * Frames a message to relay, or returns undefined (counted as `dropped.too-long`) when its line
   * would exceed {@link MAX_SEND_LINE_BYTES} (40,000 bytes): reference peers close a connection
   * that sends them a longer line, so relaying one would disconnect every reference client from
   * us. We accept lines of up to 65,536 bytes but send at most 40,000 (docs/protocol.md §1.3,
   * §13.1).
   */
  #relayFrame(type: number, line: string): Uint8Array | undefined {
    try {
      return encodeLine(encodeEnvelope(type, line));
    } catch (err) {
      if (!hasCode(err, 'ERR_LINE_TOO_LONG')) throw err;
      this.#ctx.counters.add(dropCounter('too-long'));
      return undefined;
    }
  }

  /**
   * A 687 pubmsg: re-serialized and sent to every other handshaked peer (docs/protocol.md §4.2),
   * charged by the bytes of the frame each of them is sent (docs/limits.md): non-ASCII characters
   * are relayed escaped, 6 bytes each (docs/protocol.md §1.2).
   */
  handlePubmsg(peer: DirectoryPeer, line: string): void {
    const parsed = this.#senderOf(peer, line);
    if (parsed === undefined) return;
    if (parsed.to !== PUBLIC_NICK) {
      this.#ctx.counters.add(dropCounter('pubmsg-not-public'));
      return;
    }
    // Re-serialized as from!PUBLIC<msg> (docs/protocol.md §4.2); encoded once for every recipient.
    const frame = this.#relayFrame(
      MessageType.PUBMSG,
      formatPubmsgLine(parsed.from, parsed.message),
    );
    if (frame === undefined) return;
    const fanout = this.#ctx.handshaked.size - 1;
    if (!this.#ctx.limits.admitPubmsg(peer, fanout, parsed.message, frame.length)) return;
    let recipients = 0;
    for (const other of this.#ctx.handshaked) {
      if (other === peer || other.nick === parsed.from) continue;
      if (other.conn.sendEncoded(frame, true)) recipients++;
    }
    this.#emitRelay('pubmsg', parsed.from, PUBLIC_NICK, parsed.message, line);
    this.#ctx.counters.add('relayed.pubmsg');
    this.#ctx.counters.add('relayed.pubmsg-copies', recipients);
  }

  /**
   * A 685 privmsg: sent to the owner of the recipient nick (docs/protocol.md §4.4, §3.3 case 1).
   * `canonicalRaw`, the received bytes of the envelope when they are canonical (what
   * re-serialising gives; src/wire/envelope.ts), is relayed as it is ({@link canonicalFrame}).
   * A line over {@link MAX_SEND_LINE_BYTES} is not relayed (`dropped.too-long`, docs/protocol.md
   * §1.3).
   */
  handlePrivmsg(peer: DirectoryPeer, line: string, canonicalRaw?: Uint8Array): void {
    const parsed = this.#senderOf(peer, line);
    if (parsed === undefined) return;
    const recipient = this.#ctx.relayTargets.get(parsed.to);
    if (recipient === undefined || !recipient.isOpen) {
      // Reference and ng both drop a privmsg to an unknown nick silently (docs/protocol.md §4.4).
      this.#ctx.counters.add(dropCounter('unknown-recipient'));
      return;
    }
    // The reference then tells the recipient where the sender is (docs/protocol.md §3.3 case 1): the sender's
    // entry when it serves an onion, and always our own entry (first, as in the transcript). The
    // entry carries `;F:` only for a recipient that asked for it: reference clients drop such
    // entries whole (docs/protocol.md §3.2). Both frames go in one Buffer: one queued frame, one write.
    const entry = recipient.wantsPeerlistFeatures
      ? peer.relayPeerlistFrameWithFeatures
      : peer.relayPeerlistFrame;
    if (canonicalRaw !== undefined) {
      if (canonicalRaw.length > MAX_SEND_LINE_BYTES) {
        this.#ctx.counters.add(dropCounter('too-long'));
        return;
      }
      // From the reused slab: the connection gives the frame back once written (frame-arena.ts).
      recipient.sendEncoded(canonicalFrame(canonicalRaw, entry, frameArena));
    } else {
      const frame = this.#relayFrame(MessageType.PRIVMSG, line);
      if (frame === undefined) return;
      recipient.sendEncoded(Buffer.concat([frame, entry]));
    }
    this.#emitRelay('privmsg', parsed.from, parsed.to, parsed.message, line);
    this.#ctx.counters.add('relayed.privmsg');
  }

  /**
   * Forgets the cached 791 answers ({@link handleGetPeerlist}). The node calls it whenever the set
   * of handshaked peers changes (a peer joins or leaves, or all go at stop): a handshaked peer's
   * nick, location and features never change, so the answers stay right until then.
   */
  peersChanged(): void {
    this.#peerlistAnswer = undefined;
    this.#peerlistAnswerWithFeatures = undefined;
  }

  /**
   * A 791 getpeerlist: answered in 789s of 20 entries (docs/protocol.md §3.4). A 791 before the
   * handshake is dropped (`dropped.not-handshaked`). The answer is the same for every asker but for
   * `;F:`, given only to one that advertised `peerlist_features` (docs/protocol.md §3.2, §9.1): both
   * variants are built once, on first use, and sent as they are until {@link peersChanged}, so an
   * answer costs O(1) instead of encoding every handshaked peer. Each build counts
   * `built.getpeerlist-answer`.
   */
  handleGetPeerlist(peer: DirectoryPeer): void {
    if (peer.state !== 'handshaked') {
      this.#ctx.counters.add(dropCounter('not-handshaked'));
      return;
    }
    if (!this.#ctx.limits.admitGetpeerlist(peer)) return;
    const answer = peer.features.has('peerlist_features')
      ? (this.#peerlistAnswerWithFeatures ??= this.#buildPeerlistAnswer(true))
      : (this.#peerlistAnswer ??= this.#buildPeerlistAnswer(false));
    for (const part of answer.parts) if (!peer.conn.sendEncoded(part)) return;
    if (!answer.empty) this.#ctx.counters.add('answered.getpeerlist');
  }

  /**
   * The 789 frames answering a 791, one after the other in Buffers of at most
   * {@link PEERLIST_ANSWER_PART_BYTES} (one 789 may exceed it alone): queued part by part, an
   * answer of megabytes (10,000 peers with `;F:`) goes out as the connection's queue allows, like
   * any other turn's frames (src/peer/connection.ts FLUSH_EARLY_BYTES), instead of counting
   * whole against the asker's queue cap in one frame.
   */
  #buildPeerlistAnswer(withFeatures: boolean): PeerlistAnswer {
    this.#ctx.counters.add('built.getpeerlist-answer');
    // ng (docs/protocol.md §3.4): every handshaked peer, NOT-SERVING ones included, our own entry excluded,
    // 20 entries per 789; a single empty 789 when there is nobody.
    const entries: PeerlistEntry[] = [];
    for (const other of this.#ctx.handshaked) {
      if (other.nick === undefined || other.location === undefined) continue;
      const entry: PeerlistEntry = {
        nick: other.nick,
        location: other.location,
        disconnected: false,
      };
      entries.push(
        withFeatures && other.features.size > 0
          ? { ...entry, features: [...other.features] }
          : entry,
      );
    }
    if (entries.length === 0) {
      return { parts: [encodeLine(encodeEnvelope(MessageType.PEERLIST, ''))], empty: true };
    }
    const parts: Buffer[] = [];
    let frames: Buffer[] = [];
    let bytes = 0;
    for (let i = 0; i < entries.length; i += GETPEERLIST_CHUNK_ENTRIES) {
      const chunk = encodePeerlist(entries.slice(i, i + GETPEERLIST_CHUNK_ENTRIES));
      const frame = encodeLine(encodeEnvelope(MessageType.PEERLIST, chunk));
      if (bytes > 0 && bytes + frame.length > PEERLIST_ANSWER_PART_BYTES) {
        parts.push(Buffer.concat(frames, bytes));
        frames = [];
        bytes = 0;
      }
      frames.push(frame);
      bytes += frame.length;
    }
    parts.push(Buffer.concat(frames, bytes));
    return { parts, empty: false };
  }
}

/** Bytes of 789 frames per Buffer of a cached 791 answer (see the relay's answer builder). */
const PEERLIST_ANSWER_PART_BYTES = 64 * 1024;

/** A cached answer to a 791: its 789 frames in parts, and whether it is the single empty 789. */
interface PeerlistAnswer {
  readonly parts: readonly Buffer[];
  readonly empty: boolean;
}
