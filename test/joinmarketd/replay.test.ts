/**
 * Replays the jmclient side of test/fixtures/joinmarketd-amp-transcript.txt (a yield generator
 * and a taker, each on its own AMP link) against `onionmc joinmarketd` over loopback, with the
 * message channel an in-memory fake core, and checks every box the daemons send field by field
 * against the reference daemons'. Nicks, NaCl keys, ciphertexts and signatures come from the
 * transcript: the fake core uses the recorded keys and ciphertexts, and the signatures are the
 * replayed client's.
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeArguments } from '../../src/amp/commands.js';
import { silentLogger } from '../../src/log.js';
import { startJoinmarketd, type JoinmarketdServer } from '../../src/joinmarketd/server.js';
import { loadAmpTranscript, type TranscriptBox } from '../amp/transcript.js';
import { AmpTestClient, identityOf, readable } from './amp-client.js';
import { FakeCore, FakeNetwork, type CipherEntry } from './fake-core.js';

const transcript = loadAmpTranscript();
const MAKER_NICK = 'J58UfKxwjnMn8gAi';
const TAKER_NICK = 'J5C6boHYNwZjjyxT';
const MAKER_NACL_KEY = 'ad50412fa7d989c690c083cc34515d62fb6594baacdc946f179816ff8bb72d53';
const TAKER_NACL_KEY = 'cd11eccffd225b3e22c5d317e6da4004cc34cf684594de1632a78c9c7d5a4621';

function find(what: string): TranscriptBox {
  const entry = transcript.find((b) => b.what === what);
  if (entry === undefined) throw new Error(`no ${what} in the transcript`);
  return entry;
}

/** The recorded ciphertexts of auth, ioauth, tx and sig with their plaintexts. */
function cipherTable(): CipherEntry[] {
  const fill = decodeArguments('JMFill', find('JMFill').box);
  const ioauth = decodeArguments('JMIOAuth', find('JMIOAuth').box);
  const makeTx = decodeArguments('JMMakeTx', find('JMMakeTx').box);
  const sigs = decodeArguments('JMTXSigs', find('JMTXSigs').box);
  const utxos = Object.keys(ioauth.utxolist as Record<string, unknown>).join(',');
  const plaintexts: Record<string, string> = {
    auth: fill.revelation,
    ioauth: `${utxos} ${ioauth.pubkey} ${ioauth.cjaddr} ${ioauth.changeaddr} ${ioauth.pubkeysig}`,
    tx: Buffer.from(makeTx.tx).toString('base64'),
    sig: sigs.sigs[0] ?? '',
  };
  return transcript
    .filter((b) => b.what === 'JMRequestMsgSig')
    .map((b) => decodeArguments('JMRequestMsgSig', b.box))
    .filter((r) => plaintexts[r.cmd] !== undefined)
    .map((r) => ({ cmd: r.cmd, plaintext: plaintexts[r.cmd] ?? '', ciphertext: r.msg }));
}

let server: JoinmarketdServer | undefined;
let dir: string | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('joinmarketd replay of the reference transcript', () => {
  it('answers the reference jmclient as the reference daemons did, box by box', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'onionmc-jmd-'));
    const datadir = dir;
    await mkdir(path.join(datadir, 'maker1/cmtdata'), { recursive: true });
    await mkdir(path.join(datadir, 'taker1/cmtdata'), { recursive: true });
    const network = new FakeNetwork(
      cipherTable(),
      new Map([
        [MAKER_NICK, MAKER_NACL_KEY],
        [TAKER_NICK, TAKER_NACL_KEY],
      ]),
    );
    const cores: FakeCore[] = [];
    server = await startJoinmarketd({
      host: '127.0.0.1',
      port: 0,
      logger: silentLogger(),
      createCore: (context) => {
        const core = new FakeCore(network, context);
        cores.push(core);
        return core;
      },
    });
    const maker = await AmpTestClient.connect(server.port);
    const taker = await AmpTestClient.connect(server.port);
    let compared = 0;
    for (const entry of transcript) {
      const link = entry.side === 'maker' ? maker : taker;
      if (entry.from === 'client') {
        const box = new Map(entry.box);
        const location = box.get('blacklist_location');
        if (location !== undefined)
          box.set(
            'blacklist_location',
            Buffer.from(location.toString().replace('<datadir>', datadir)),
          );
        link.send(box);
        continue;
      }
      const got = await link.take(identityOf(entry.box));
      expect({ line: entry.line, ...readable(got) }).toEqual({
        line: entry.line,
        ...readable(entry.box),
      });
      compared++;
    }
    expect(compared).toBe(transcript.filter((b) => b.from === 'daemon').length);
    // Nothing more than the reference sent.
    expect(maker.received.map(identityOf)).toEqual([]);
    expect(taker.received.map(identityOf)).toEqual([]);
    // The daemons configured their channels from the clients' [MESSAGING:onion] sections.
    expect(
      cores.map((c) => [c.nick, c.context.config.serving, c.context.config.directoryNodes]),
    ).toEqual([
      [MAKER_NICK, true, ['127.0.0.1:5322']],
      [TAKER_NICK, false, ['127.0.0.1:5322']],
    ]);
    // The maker recorded the commitment it used in the client's blacklist file (JMIOAuth).
    const commitment = decodeArguments('JMAuthReceived', find('JMAuthReceived').box).commitment;
    expect(await readFile(path.join(datadir, 'maker1/cmtdata/commitmentlist'), 'ascii')).toBe(
      commitment,
    );
    maker.close();
    taker.close();
  });
});
