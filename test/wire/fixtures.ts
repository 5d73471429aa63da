/**
 * Loads the protocol fixtures shared by the wire tests: vectors.json and the reference transcript
 * (test/fixtures/vectors.json and test/fixtures/reference-transcript.txt; docs/protocol.md §11).
 */
import { readFileSync } from 'node:fs';

/** The parts of test/fixtures/vectors.json the wire tests use. */
export interface WireVectors {
  client_hs_line: string;
  client_hs_env: string;
  maker_hs_line: string;
  dn_hs_env: string;
  peerlist_join: string;
  peerlist_leave: string;
  pub_orderbook: string;
  pub_offer: string;
  fill: { line: string; envelope: string };
  keys: Record<'taker' | 'maker' | 'dir', { nick: string }>;
  k1: { nick: string };
}

/** vectors.json, parsed. */
export const vectors = JSON.parse(
  readFileSync(new URL('../fixtures/vectors.json', import.meta.url), 'utf8'),
) as WireVectors;

/** One `>` line of the transcript with the column header that precedes it. */
export interface TranscriptLine {
  /** The header, e.g. ` 0.000825 #1 maker -> DN [handshake]`. */
  header: string;
  /** The bracketed type name from the header, e.g. `handshake`. */
  kind: string;
  /** The line exactly as on the wire, without CRLF. */
  text: string;
}

/** Every `>` line of test/fixtures/reference-transcript.txt, in order. */
export function transcriptLines(): TranscriptLine[] {
  const raw = readFileSync(
    new URL('../fixtures/reference-transcript.txt', import.meta.url),
    'utf8',
  );
  const out: TranscriptLine[] = [];
  let header = '';
  for (const row of raw.split('\n')) {
    const m = /^ {2}> (.*)$/.exec(row);
    if (m !== null) {
      const kind = /\[([a-z-]+)\]\s*$/.exec(header)?.[1] ?? '';
      out.push({ header, kind, text: m[1]! });
    } else if (!row.startsWith('#') && row.trim() !== '') {
      header = row;
    }
  }
  return out;
}
