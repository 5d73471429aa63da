/**
 * The maker's answer to `!orderbook` (src/node/offers-part.ts `MakerResponder.answer`, behind
 * `POST /v1/orderbook/answer`): every line is checked against the 40,000-byte send limit before
 * any is sent. A directory node, a maker and a taker on loopback.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { hasCode } from '../../src/errors.js';
import { formatSignedPrivmsgLine } from '../../src/message/privmsg.js';
import type { ClientNode } from '../../src/node/client-node.js';
import { encodeEnvelope } from '../../src/wire/envelope.js';
import { MAX_SEND_LINE_BYTES } from '../../src/wire/framing.js';
import { MessageType } from '../../src/wire/message-types.js';
import { startClient, startDirectory } from './harness.js';

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

const SHORT = {
  type: 'sw0reloffer',
  oid: 0,
  minsize: 27_300,
  maxsize: 5_000_000,
  txfee: 0,
  cjfee: '0.0002',
};
// 200 more characters of fee than the first offer: its line is 200 bytes longer.
const LONG = { ...SHORT, type: 'sw0reloffer', oid: 1, cjfee: `0.0002${'1'.repeat(200)}` };

describe('MakerResponder.answer', () => {
  it('checks every line before sending any: a later offer over 40,000 bytes sends none', async () => {
    // The first offer's privmsg went out before the second one's line was found too long.
    const directory = await startDirectory();
    stops.push(() => directory.node.stop());
    const maker = await startClient('maker', [directory.location], { answerOrderbook: false });
    stops.push(() => maker.node.stop());
    const taker = await startClient('taker', [directory.location]);
    stops.push(() => taker.node.stop());
    maker.node.setOffers([SHORT, LONG]);
    const requested = new Promise<void>((resolve) => {
      maker.node.on('orderbookRequest', () => {
        resolve();
      });
    });
    taker.node.pubmsg('!orderbook');
    await requested;
    const node: ClientNode = maker.node;
    // A bond that leaves the first offer's line 100 bytes under the limit even with the longest
    // signature: the second one's is then 100 bytes over.
    const line = (bond: string): number =>
      Buffer.byteLength(
        encodeEnvelope(
          MessageType.PRIVMSG,
          formatSignedPrivmsgLine(
            node.nick,
            taker.node.nick,
            SHORT.type,
            `0 27300 5000000 0 0.0002!tbond ${bond}`,
            '0'.repeat(66),
            'A'.repeat(96),
          ),
        ),
      );
    const bond = 'A'.repeat(MAX_SEND_LINE_BYTES - 100 - line(''));
    expect(line(bond)).toBe(MAX_SEND_LINE_BYTES - 100);
    let thrown: unknown;
    try {
      node.answerOrderbook(taker.node.nick, bond);
    } catch (err) {
      thrown = err;
    }
    expect(hasCode(thrown, 'ERR_LINE_TOO_LONG')).toBe(true);
    // Answered again with a short bond: the first offer the taker gets carries that one, so the
    // refused answer sent nothing before it (one route, in order).
    expect(node.answerOrderbook(taker.node.nick, 'QUJD')).toBe(2);
    const first = await taker.events.waitFor('an offer from the maker', (e) => {
      const data = e.data as { from?: string };
      return e.name === 'privmsg' && data.from === node.nick;
    });
    expect((first.data as { body: string }).body).toMatch(/!tbond QUJD/);
  });
});
