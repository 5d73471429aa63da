/**
 * `npm run demo`: one directory node, two makers and a taker as separate `onionmc` processes on
 * loopback in testing mode. The makers announce offers by pubmsg; the taker sends `!orderbook`;
 * the makers answer with signed privmsg offers; the taker verifies them and prints the orderbook;
 * the taker and maker2 run `!fill` → `!pubkey` → `!auth` → `!ioauth` → `!tx` → `!sig` through the
 * directory node, whose relay events show it carried only ciphertext for the last four (payloads
 * are test data, not real transactions); then the taker and maker1 talk over a direct link. Exit 0 with a summary, or
 * non-zero with the failed step and the nodes' log tails.
 *
 * `--directory HOST:PORT` (repeatable) uses running directory nodes instead of starting one.
 */
import { parseArgs } from 'node:util';
import type { ApiEvent } from '../api/client.js';
import type { OrderbookEntry } from '../node/offers.js';
import { publicKeyHexFromPrivateKey, signMessage, verifyMessage } from '../message/signing.js';
import { Cluster, pollUntil } from './cluster.js';

/** Demo-data keys (never funds): maker2's utxo key, maker1's fidelity-bond key. */
const MAKER2_UTXO_KEY = new Uint8Array(32).fill(0x1c);
const MAKER1_BOND_KEY = new Uint8Array(32).fill(0x2d);

const STEP_TIMEOUT_MS = 20_000;

interface InfoShape {
  nick: string;
  location: string;
  directories?: { location: string; state: string }[];
  peers?: { nick: string; direction: string }[];
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { directory: { type: 'string', multiple: true }, keep: { type: 'boolean' } },
  });
  const external = values.directory ?? [];
  const cluster = await Cluster.create('onionmc-demo-');
  let step = 'starting';
  try {
    let directories = external;
    if (directories.length === 0) {
      step = 'start the directory node';
      const dn = await cluster.start({ name: 'directory', role: 'directory' });
      const info = (await dn.api.call('GET', '/v1/info')) as InfoShape;
      directories = [info.location];
      say(`directory node ${info.nick} at ${info.location}`);
    } else {
      say(`using directory nodes ${directories.join(', ')}`);
    }

    step = 'start the makers and the taker';
    const [maker1, maker2, taker] = await Promise.all([
      // maker1's application answers !orderbook itself, to add a bond proof made for the taker.
      cluster.start({
        name: 'maker1',
        role: 'maker',
        directories,
        extra: { answer_orderbook: 'false' },
      }),
      cluster.start({ name: 'maker2', role: 'maker', directories }),
      cluster.start({ name: 'taker', role: 'taker', directories }),
    ]);
    const nodes = { maker1, maker2, taker };
    const infos = new Map<string, InfoShape>();
    for (const [name, node] of Object.entries(nodes)) {
      step = `${name} handshakes with a directory node`;
      const info = await pollUntil(
        step,
        async () => {
          const current = (await node.api.call('GET', '/v1/info')) as InfoShape;
          return current.directories?.some((d) => d.state === 'handshaked') === true
            ? current
            : undefined;
        },
        STEP_TIMEOUT_MS,
      );
      infos.set(name, info);
      say(`${name.padEnd(6)} ${info.nick} at ${info.location}: handshaked`);
    }
    const nick = (name: string): string => infos.get(name)?.nick ?? '';
    const takerEvents = await taker.api.events();
    const maker1Events = await maker1.api.events();

    step = 'makers announce offers by pubmsg';
    await maker1.api.call('PUT', '/v1/offers', {
      offers: [
        {
          type: 'sw0reloffer',
          oid: 0,
          minsize: 27300,
          maxsize: 1000000,
          txfee: 0,
          cjfee: '0.00002',
        },
      ],
    });
    await maker2.api.call('PUT', '/v1/offers', {
      offers: [
        { type: 'sw0absoffer', oid: 0, minsize: 50000, maxsize: 5000000, txfee: 0, cjfee: '250' },
        {
          type: 'sw0reloffer',
          oid: 1,
          minsize: 100000,
          maxsize: 20000000,
          txfee: 0,
          cjfee: '0.0001',
        },
      ],
    });
    for (const maker of ['maker1', 'maker2']) {
      await takerEvents.waitFor(
        `${maker}'s offer pubmsg`,
        (e) => e.event === 'pubmsg' && (e.data as { from: string }).from === nick(maker),
        STEP_TIMEOUT_MS,
      );
    }
    say('taker heard both makers announce their offers by pubmsg');

    step = 'taker sends !orderbook and collects signed offers';
    await taker.api.call('POST', '/v1/pubmsg', { message: '!orderbook' });
    const request = await maker1Events.waitFor(
      'the orderbook request at maker1',
      (e) => e.event === 'orderbookRequest',
      STEP_TIMEOUT_MS,
    );
    const requester = (request.data as { from: string }).from;
    const bondFor = (takerNick: string): string =>
      Buffer.from(
        `${publicKeyHexFromPrivateKey(MAKER1_BOND_KEY)}|${signMessage(MAKER1_BOND_KEY, takerNick)}`,
      ).toString('base64');
    await maker1.api.call('POST', '/v1/orderbook/answer', {
      to: requester,
      fidelityBond: bondFor(requester),
    });
    const offers = await pollUntil(
      step,
      async () => {
        const book = (await taker.api.call('GET', '/v1/orderbook')) as { offers: OrderbookEntry[] };
        const signed = book.offers.filter((o) => o.source === 'privmsg');
        return signed.length === 3 ? signed : undefined;
      },
      STEP_TIMEOUT_MS,
    );
    const bond = offers.find((o) => o.nick === nick('maker1'))?.fidelityBond;
    const [bondPub, bondSig] = Buffer.from(bond ?? '', 'base64')
      .toString()
      .split('|');
    if (!verifyMessage(bondPub ?? '', bondSig ?? '', nick('taker')))
      throw new Error("maker1's bond proof is not made for the taker");
    say('orderbook collected by the taker (signed privmsg offers, signatures verified):');
    say('  maker             type         oid     minsize      maxsize  txfee  cjfee');
    for (const o of offers) {
      say(
        `  ${o.nick}  ${o.type.padEnd(11)}  ${String(o.oid).padStart(3)}  ${String(o.minsize).padStart(10)}  ${String(o.maxsize).padStart(11)}  ${String(o.txfee).padStart(5)}  ${o.cjfee}`,
      );
    }

    step = 'encrypted session with maker2 through the directory node';
    const dnEvents =
      external.length === 0 ? await cluster.node('directory').api.events() : undefined;
    const maker2Events = await maker2.api.events();
    const viaDirectory = { route: 'directory' };
    const marker = 'demo-plaintext';
    // maker2 signs its own session key (`ownKeyHex` of its !fill event) with its utxo key as
    // btc_sig; the taker checks it over the key of maker2's !pubkey (`peerKeyHex`).
    const keys = { makerOwn: '', takerSeen: '' };
    const maker2AuthPub = publicKeyHexFromPrivateKey(MAKER2_UTXO_KEY);
    const exchange: [string, 'taker' | 'maker2', () => string][] = [
      ['fill', 'taker', () => `0 1000000 P${'cd'.repeat(32)}`],
      ['pubkey', 'maker2', () => ''],
      ['auth', 'taker', () => `${marker}-auth ${'0'.repeat(63)}1:0|02${'11'.repeat(32)}`],
      [
        'ioauth',
        'maker2',
        () =>
          `${marker}-ioauth ${maker2AuthPub} cjaddr changeaddr ${signMessage(MAKER2_UTXO_KEY, keys.makerOwn)}`,
      ],
      [
        'tx',
        'taker',
        () => `${marker}-tx ${Buffer.from('unsigned transaction bytes').toString('base64')}`,
      ],
      [
        'sig',
        'maker2',
        () => `${marker}-sig ${Buffer.from('signature script').toString('base64')}`,
      ],
    ];
    for (const [cmd, sender, makeBody] of exchange) {
      const body = makeBody();
      const [from, to, events] =
        sender === 'taker' ? [taker, 'maker2', maker2Events] : [maker2, 'taker', takerEvents];
      const sent = (await from.api.call('POST', '/v1/privmsg', {
        to: nick(to),
        cmd,
        body,
        ...viaDirectory,
      })) as { via: { kind: string } };
      const got = await events.waitFor(
        `!${cmd} at ${to}`,
        (e) => isPrivmsg(e, nick(sender), cmd),
        STEP_TIMEOUT_MS,
      );
      const data = got.data as {
        body: string;
        encrypted: boolean;
        via: { kind: string };
        ownKeyHex?: string;
        peerKeyHex?: string;
      };
      if (data.body !== body)
        throw new Error(`!${cmd} arrived as "${data.body}", sent as "${body}"`);
      if (cmd === 'fill') keys.makerOwn = data.ownKeyHex ?? '';
      if (cmd === 'pubkey') keys.takerSeen = data.peerKeyHex ?? '';
      if (cmd === 'ioauth') {
        const [, authPub, , , btcSig] = data.body.split(' ');
        if (
          keys.takerSeen !== keys.makerOwn ||
          !verifyMessage(authPub ?? '', btcSig ?? '', keys.takerSeen)
        )
          throw new Error("maker2's btc_sig does not verify over its session key");
        say('taker checked btc_sig: maker2 signed its NaCl session key with its utxo key');
      }
      say(
        `${sender.padEnd(6)} -> ${to.padEnd(6)} !${cmd.padEnd(6)} via ${sent.via.kind}${data.encrypted ? ', encrypted end to end, decrypted by the receiving daemon' : ''}`,
      );
    }
    step = 'taker hands maker2 a commitment with !hp2 (always through a directory node)';
    const hp2 = (await taker.api.call('POST', '/v1/privmsg', {
      to: nick('maker2'),
      cmd: 'hp2',
      body: 'ef'.repeat(32),
    })) as { via: { kind: string } };
    await maker2Events.waitFor(
      'the !hp2 at maker2',
      (e) => isPrivmsg(e, nick('taker'), 'hp2'),
      STEP_TIMEOUT_MS,
    );
    say(`taker  -> maker2 !hp2    via ${hp2.via.kind}`);
    if (dnEvents !== undefined) {
      step = 'the directory node saw only ciphertext';
      const encrypted = ['auth', 'ioauth', 'tx', 'sig'];
      const relays = await pollUntil(
        "the directory's relay events",
        () => {
          const seen = dnEvents.received.filter(
            (e) => e.event === 'relay' && encrypted.includes((e.data as { cmd: string }).cmd),
          );
          return Promise.resolve(seen.length === 4 ? seen : undefined);
        },
        STEP_TIMEOUT_MS,
      );
      for (const relay of relays) {
        const line = (relay.data as { line: string }).line;
        if (line.includes(marker))
          throw new Error(`the directory relayed plaintext: ${line.slice(0, 80)}`);
      }
      say(
        `directory node relayed ${relays.length} encrypted privmsgs (${encrypted.join(', ')}): ciphertext only, no plaintext seen`,
      );
      dnEvents.close();
    }
    maker2Events.close();

    step = 'taker sends !fill to maker1 through the directory and dials maker1';
    const fillBody = `0 1000000 P${'ab'.repeat(32)}`;
    const first = (await taker.api.call('POST', '/v1/privmsg', {
      to: nick('maker1'),
      cmd: 'fill',
      body: fillBody,
    })) as { via: { kind: string } };
    await maker1Events.waitFor(
      'the !fill at maker1',
      (e) => isPrivmsg(e, nick('taker'), 'fill'),
      STEP_TIMEOUT_MS,
    );
    say(`taker -> maker1 !fill delivered via ${first.via.kind}`);
    await takerEvents.waitFor(
      'a direct link from the taker to maker1',
      (e) =>
        e.event === 'peer' &&
        (e.data as { nick: string; up: boolean }).nick === nick('maker1') &&
        (e.data as { up: boolean }).up,
      STEP_TIMEOUT_MS,
    );
    // Each side marks the link handshaked when the other's 793 arrives: wait for maker1's side
    // too, or its reply below may still go through the directory.
    await maker1Events.waitFor(
      'the direct link at maker1',
      (e) =>
        e.event === 'peer' &&
        (e.data as { nick: string; up: boolean }).nick === nick('taker') &&
        (e.data as { up: boolean }).up,
      STEP_TIMEOUT_MS,
    );
    say('taker and maker1 are handshaked over a direct link (793 both ways)');

    step = 'maker1 answers over the direct link';
    const reply = (await maker1.api.call('POST', '/v1/privmsg', {
      to: nick('taker'),
      cmd: 'pubkey',
      body: '',
    })) as { via: { kind: string } };
    const got = await takerEvents.waitFor(
      "maker1's !pubkey at the taker",
      (e) => isPrivmsg(e, nick('maker1'), 'pubkey'),
      STEP_TIMEOUT_MS,
    );
    say(
      `maker1 -> taker !pubkey sent via ${reply.via.kind}, received via ${(got.data as { via: { kind: string } }).via.kind}`,
    );
    step = 'taker sends !auth over the direct link';
    const second = (await taker.api.call('POST', '/v1/privmsg', {
      to: nick('maker1'),
      cmd: 'auth',
      body: `${marker}-direct`,
    })) as { via: { kind: string } };
    const viaDirect = await maker1Events.waitFor(
      'the !auth at maker1',
      (e) => isPrivmsg(e, nick('taker'), 'auth'),
      STEP_TIMEOUT_MS,
    );
    say(
      `taker -> maker1 !auth sent via ${second.via.kind}, received via ${(viaDirect.data as { via: { kind: string } }).via.kind} (session began with a !fill through the directory)`,
    );
    if (reply.via.kind !== 'direct' || second.via.kind !== 'direct')
      throw new Error('the direct link was not used');
    takerEvents.close();
    maker1Events.close();

    say('');
    say(
      `demo OK: ${external.length === 0 ? '1 directory node' : `${external.length} external directory node(s)`}, 2 makers, 1 taker; ${offers.length} signed offers verified; fill..sig encrypted end to end; direct link used both ways; btc_sig over the maker's session key verified; fidelity bond made for the taker verified`,
    );
    return 0;
  } catch (err) {
    process.stderr.write(
      `demo FAILED at step "${step}": ${err instanceof Error ? err.message : String(err)}\n`,
    );
    for (const name of cluster.nodes.keys()) {
      process.stderr.write(`--- last log lines of ${name} ---\n${await cluster.tail(name, 15)}\n`);
    }
    return 1;
  } finally {
    await cluster.stop(values.keep === true);
  }
}

function isPrivmsg(event: ApiEvent, from: string, cmd: string): boolean {
  if (event.event !== 'privmsg') return false;
  const data = event.data as { from: string; cmd: string };
  return data.from === from && data.cmd === cmd;
}

process.exitCode = await main();
