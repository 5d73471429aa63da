/**
 * Reads test/fixtures/joinmarketd-amp-transcript.txt: a single-maker CoinJoin negotiation between
 * the reference jmclient and two reference daemons, decoded box by box. Each entry gives the
 * side (maker's or taker's link), the direction, what the box is (a command name or `answer`)
 * and its keys and values. Values are UTF-8 text, `hex:` bytes, or a Python bytes literal.
 */
import { readFileSync } from 'node:fs';
import type { AmpBox } from '../../src/amp/box.js';

export interface TranscriptBox {
  readonly line: number;
  readonly time: number;
  readonly side: 'maker' | 'taker';
  readonly from: 'client' | 'daemon';
  /** A command name, or `answer`. */
  readonly what: string;
  readonly box: AmpBox;
}

function pythonBytes(literal: string): Buffer {
  const body = literal.slice(1, -1);
  const out: number[] = [];
  for (let i = 0; i < body.length; i++) {
    const ch = body[i] ?? '';
    if (ch !== '\\') {
      out.push(ch.charCodeAt(0));
      continue;
    }
    const next = body[++i] ?? '';
    if (next === 'x') {
      out.push(parseInt(body.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push({ n: 10, r: 13, t: 9 }[next] ?? next.charCodeAt(0));
  }
  return Buffer.from(out);
}

function parseValue(text: string): Buffer {
  if (text.startsWith('hex:')) return Buffer.from(text.slice(4), 'hex');
  if (text.length >= 2 && text.startsWith("'") && text.endsWith("'")) return pythonBytes(text);
  return Buffer.from(text, 'utf8');
}

const HEADER = /^\s*([0-9.]+) (maker|taker) (client|daemon) -> (client|daemon) (.+)$/;
const FIELD = /^ {11}([^ ]+) = (.*)$/;

/** Parses the transcript file. */
export function loadAmpTranscript(): TranscriptBox[] {
  const text = readFileSync(
    new URL('../fixtures/joinmarketd-amp-transcript.txt', import.meta.url),
    'utf8',
  );
  const out: TranscriptBox[] = [];
  let current: TranscriptBox | undefined;
  text.split('\n').forEach((line, index) => {
    const header = HEADER.exec(line);
    if (header !== null) {
      const [, time, side, from, , what] = header;
      const isAnswer = what?.startsWith('answer ') === true;
      current = {
        line: index + 1,
        time: Number(time),
        side: side as 'maker' | 'taker',
        from: from as 'client' | 'daemon',
        what: isAnswer ? 'answer' : (what ?? ''),
        box: new Map(),
      };
      out.push(current);
      if (!isAnswer) current.box.set('_command', Buffer.from(what ?? '', 'ascii'));
      return;
    }
    const field = FIELD.exec(line);
    if (field !== null && current !== undefined) {
      current.box.set(field[1] ?? '', parseValue(field[2] ?? ''));
    }
  });
  return out;
}
