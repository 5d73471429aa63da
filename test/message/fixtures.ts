/**
 * Loads the protocol fixtures the message tests use: test/fixtures/vectors.json (docs/protocol.md §11) and the
 * privmsg lines of test/fixtures/reference-transcript.txt (real reference signatures).
 */
import { readFileSync } from 'node:fs';
import { hexToBytes } from '@noble/hashes/utils.js';
import { OnionmcError } from '../../src/errors.js';

/** One key of vectors.json `keys` (and `k1`). */
export interface KeyVector {
  readonly priv: string;
  readonly pub: string;
  readonly h10: string;
  readonly b58: string;
  readonly nick: string;
}

/** A signed privmsg of vectors.json. */
export interface SignedVector {
  readonly body: string;
  readonly msghash: string;
  readonly sig_b64: string;
  readonly line: string;
}

/** The parts of vectors.json the message tests use. */
export interface MessageVectors {
  readonly k1: KeyVector & { readonly sha256_hexpub: string };
  readonly keys: { readonly taker: KeyVector; readonly maker: KeyVector; readonly dir: KeyVector };
  readonly nacl: {
    readonly taker_sk: string;
    readonly taker_pk: string;
    readonly maker_sk: string;
    readonly maker_pk: string;
    readonly beforenm: string;
  };
  readonly fill: SignedVector & { readonly signed_string: string; readonly sig_der_hex: string };
  readonly pubkey: SignedVector;
  readonly offer_priv: SignedVector;
  readonly auth: {
    readonly plaintext: string;
    readonly nonce: string;
    readonly mac: string;
    readonly ct_len: number;
    readonly wire_b64: string;
    readonly msghash: string;
    readonly sig_b64: string;
    readonly line: string;
  };
  readonly pub_orderbook: string;
  readonly pub_offer: string;
  readonly client_hs_line: string;
  readonly maker_hs_line: string;
  readonly msghash_empty: string;
  readonly msghash_abc: string;
}

/** vectors.json, parsed. */
export const vectors = JSON.parse(
  readFileSync(new URL('../fixtures/vectors.json', import.meta.url), 'utf8'),
) as MessageVectors;

/** Hex to bytes (test convenience). */
export const hex = (text: string): Uint8Array => hexToBytes(text);

/** The `line` of every 685 envelope in the reference transcript, in order (duplicates kept). */
export function transcriptPrivmsgLines(): string[] {
  const raw = readFileSync(
    new URL('../fixtures/reference-transcript.txt', import.meta.url),
    'utf8',
  );
  const lines: string[] = [];
  for (const row of raw.split('\n')) {
    const trimmed = row.trim();
    if (!trimmed.startsWith('> ')) continue;
    const envelope = JSON.parse(trimmed.slice(2)) as { type: number; line: string };
    if (envelope.type === 685) lines.push(envelope.line);
  }
  return lines;
}

/**
 * Runs `fn` and returns the `code` of the OnionmcError it throws, `'not-onionmc'` for any other
 * throw, or `'no-throw'`.
 */
export function thrownCode(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return err instanceof OnionmcError ? err.code : 'not-onionmc';
  }
  return 'no-throw';
}
