/**
 * The reference transcript end to end through the wire layer: every `>` line decodes, re-encodes to
 * the same bytes, and its payload parses as the header says (§11, test/fixtures/reference-transcript.txt).
 */
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../src/errors.js';
import { decodeEnvelope, encodeEnvelope } from '../../src/wire/envelope.js';
import { encodeLine, LineDecoder, MAX_SEND_LINE_BYTES } from '../../src/wire/framing.js';
import {
  encodeClientHandshake,
  encodeDirectoryHandshake,
  evaluateClientHandshake,
  evaluateDirectoryHandshake,
  isValidNick,
  parseClientHandshake,
  parseDirectoryHandshake,
} from '../../src/wire/handshake.js';
import { isV3OnionHostname, parseLocation } from '../../src/wire/location.js';
import { messageTypeName, MessageType } from '../../src/wire/message-types.js';
import { decodePeerlist, encodePeerlist } from '../../src/wire/peerlist.js';
import { transcriptLines } from './fixtures.js';

const testnet = { network: 'testnet' };
const lines = transcriptLines();

describe('reference transcript', () => {
  it('has 25 wire lines whose header names match the envelope types', () => {
    expect(lines).toHaveLength(25);
    for (const { kind, text } of lines)
      expect(messageTypeName(decodeEnvelope(text).type)).toBe(kind);
  });

  it('re-encodes every envelope to identical bytes, CRLF framing included', () => {
    for (const { text } of lines) {
      const env = decodeEnvelope(text);
      const framed = encodeLine(encodeEnvelope(env.type, env.line));
      expect(framed.toString('utf8')).toBe(`${text}\r\n`);
      expect(new LineDecoder().push(framed)).toEqual([text]);
    }
  });

  it('re-encodes every handshake from its parsed form to the identical line', () => {
    let clients = 0;
    let directories = 0;
    for (const { text } of lines) {
      const env = decodeEnvelope(text);
      if (env.type === MessageType.HANDSHAKE) {
        const h = parseClientHandshake(env.line);
        expect(h).toBeDefined();
        expect(encodeClientHandshake(h!)).toBe(env.line);
        expect(evaluateClientHandshake(h!, testnet)).toEqual({ accepted: true });
        expect(evaluateClientHandshake(h!, { network: 'mainnet' }).accepted).toBe(false);
        expect(isValidNick(h!.nick)).toBe(true);
        clients++;
      } else if (env.type === MessageType.DN_HANDSHAKE) {
        const h = parseDirectoryHandshake(env.line);
        expect(h).toBeDefined();
        expect(h!.motd).toBe('jmref test directory');
        expect(encodeDirectoryHandshake(h!)).toBe(env.line);
        expect(evaluateDirectoryHandshake(h!, testnet)).toEqual({ ok: true });
        expect(isValidNick(h!.nick)).toBe(true);
        directories++;
      }
    }
    expect(clients).toBe(4);
    expect(directories).toBe(2);
  });

  it('decodes every peerlist, and re-encodes it identically', () => {
    const peerlists = lines
      .map(({ text }) => decodeEnvelope(text))
      .filter((env) => env.type === MessageType.PEERLIST);
    expect(peerlists).toHaveLength(5);
    for (const env of peerlists) {
      const entries = decodePeerlist(env.line);
      expect(entries.length).toBeGreaterThan(0);
      expect(encodePeerlist(entries)).toBe(env.line);
      for (const e of entries) {
        expect(isValidNick(e.nick)).toBe(true);
        expect(() => parseLocation(e.location)).not.toThrow();
      }
    }
    expect(decodePeerlist(peerlists[1]!.line)).toEqual([
      { nick: 'J54wePPpkfqsdZA5', location: '127.0.0.1:5222', disconnected: false },
      { nick: 'J522DFcripZgL71x', location: '127.0.0.1:5223', disconnected: false },
    ]);
    expect(decodePeerlist(peerlists[4]!.line)).toEqual([
      { nick: 'J54wePPpkfqsdZA5', location: '127.0.0.1:5222', disconnected: false },
      { nick: 'J54ZTGBtkwHT2peV', location: 'NOT-SERVING-ONION', disconnected: true },
    ]);
  });
});

describe('§11.8 negative vectors', () => {
  it('801: decodes, but can never be sent', () => {
    expect(decodeEnvelope('{"type": 801, "line": ""}')).toEqual({ type: 801, line: '' });
    expect(() => encodeEnvelope(801, '')).toThrow(ProtocolError);
  });

  it('features given as a string: the handshake is silently ignored', () => {
    const line =
      '{"app-name": "joinmarket", "directory": false, "location-string": "NOT-SERVING-ONION", "proto-ver": 5, "features": "", "nick": "J56UEbZ4FqgPQFLq", "network": "mainnet"}';
    expect(parseClientHandshake(line)).toBeUndefined();
  });

  it('location "": rejected with accepted:false (reference DN behaviour)', () => {
    const h = parseClientHandshake(
      '{"app-name": "joinmarket", "directory": false, "location-string": "", "proto-ver": 5, "features": {}, "nick": "J56UEbZ4FqgPQFLq", "network": "mainnet"}',
    );
    expect(h).toBeDefined();
    expect(evaluateClientHandshake(h!, { network: 'mainnet' }).accepted).toBe(false);
  });

  it('location 127.0.0.1:8081: accepted by the reference rule, not a v3 onion (ng closes)', () => {
    const h = parseClientHandshake(
      '{"app-name": "joinmarket", "directory": false, "location-string": "127.0.0.1:8081", "proto-ver": 5, "features": {}, "nick": "J56UEbZ4FqgPQFLq", "network": "mainnet"}',
    );
    expect(evaluateClientHandshake(h!, { network: 'mainnet' })).toEqual({ accepted: true });
    const loc = parseLocation(h!.locationString);
    expect(loc.kind === 'hostport' && isV3OnionHostname(loc.host)).toBe(false);
  });

  it('a line of 40,001 bytes: we never send it, and a 40,000-byte receiver drops it', () => {
    const line = 'x'.repeat(40_001);
    expect(() => encodeLine(line)).toThrow(ProtocolError);
    const reference = new LineDecoder(MAX_SEND_LINE_BYTES);
    expect(() => reference.push(Buffer.from(`${line}\r\n`))).toThrow(ProtocolError);
    // Twisted LineReceiver also drops an unterminated buffer of 40,002 bytes (§1.3).
    const unterminated = new LineDecoder(MAX_SEND_LINE_BYTES);
    expect(unterminated.push(Buffer.from('y'.repeat(40_001)))).toEqual([]);
    expect(() => unterminated.push(Buffer.from('y'))).toThrow(ProtocolError);
  });
});
