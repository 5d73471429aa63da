/**
 * POST /v1/privmsg answers 200 only once the route confirmed the privmsg, and an error when it
 * could not (docs/api.md "Delivery"): a taker behind the API, linked to a scripted directory node
 * on loopback whose lines the test reads and answers.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/api/client.js';
import { ApiServer } from '../../src/api/server.js';
import { silentLogger } from '../../src/log.js';
import type { ClientNode, ClientNodeOptions } from '../../src/node/client-node.js';
import type { ScriptedPeer } from '../integration/transcript.js';
import { PEER, takerWithDirectories } from '../node/harness.js';

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

const PING = '{"type": 798, "line": ""}';
const PONG = '{"type": 799, "line": ""}';

/** The API of a taker linked to one scripted directory node. */
async function apiOfTaker(
  options: { ping?: boolean; client?: Partial<ClientNodeOptions> } = {},
): Promise<{
  api: ApiClient;
  server: ApiServer;
  taker: ClientNode;
  link: ScriptedPeer;
  location: string;
}> {
  const { taker, links, locations } = await takerWithDirectories(stops, 1, options);
  const server = new ApiServer(
    { info: () => ({}), client: taker, directory: undefined },
    silentLogger(),
  );
  await server.listen({ kind: 'tcp', host: '127.0.0.1', port: 0 });
  stops.push(() => server.close());
  const endpoint = server.endpoint;
  if (endpoint === undefined) throw new Error('the API did not listen');
  return {
    api: new ApiClient(endpoint),
    server,
    taker,
    link: links[0] as ScriptedPeer,
    location: locations[0] ?? '',
  };
}

const post = (api: ApiClient, body: string) =>
  api.request('POST', '/v1/privmsg', { to: PEER, cmd: 'error', body });

describe('POST /v1/privmsg', () => {
  it('answers 200 with confirmed: true only after the pong to the 798 written behind the privmsg', async () => {
    const { api, link, location } = await apiOfTaker();
    let answered = false;
    const answer = post(api, 'hello').finally(() => {
      answered = true;
    });
    expect(await link.next()).toMatch(/^\{"type": 685, "line": "J5\w+!J5\w+!error hello /);
    expect(await link.next()).toBe(PING);
    expect(answered).toBe(false);
    link.send(PONG);
    expect(await answer).toEqual({
      status: 200,
      body: { via: { kind: 'directory', location }, confirmed: true, attempts: 1 },
    });
  });

  it('answers 502 ERR_NOT_DELIVERED when the route closes first and no other exists', async () => {
    const { api, link } = await apiOfTaker();
    const answer = post(api, 'lost');
    await link.next();
    expect(await link.next()).toBe(PING);
    link.end();
    expect(await answer).toMatchObject({
      status: 502,
      body: { error: { code: 'ERR_NOT_DELIVERED' } },
    });
  });

  it('answers 504 ERR_TIMEOUT when the route does not confirm in time', async () => {
    const { api, link } = await apiOfTaker({ client: { privmsgConfirmTimeoutMs: 100 } });
    const answer = post(api, 'slow');
    await link.next();
    expect(await link.next()).toBe(PING);
    expect(await answer).toMatchObject({ status: 504, body: { error: { code: 'ERR_TIMEOUT' } } });
  });

  it('answers 503 ERR_BUSY when too many privmsgs wait for confirmation', async () => {
    const { api, link } = await apiOfTaker({ client: { maxPendingConfirmations: 1 } });
    const first = post(api, 'first');
    await link.next();
    expect(await link.next()).toBe(PING);
    expect(await post(api, 'second')).toMatchObject({
      status: 503,
      body: { error: { code: 'ERR_BUSY' } },
    });
    link.send(PONG);
    expect((await first).status).toBe(200);
  });

  it('answers 200 with confirmed: false at once through a directory node without ping', async () => {
    const { api, location } = await apiOfTaker({ ping: false });
    expect(await post(api, 'reference')).toEqual({
      status: 200,
      body: { via: { kind: 'directory', location }, confirmed: false, attempts: 1 },
    });
  });

  it('closing the API answers a privmsg still waiting with 503 ERR_CLOSED instead of waiting for it', async () => {
    const { api, server, link } = await apiOfTaker();
    const answer = post(api, 'closing');
    await link.next();
    expect(await link.next()).toBe(PING);
    // The pong never comes; the default deadline is 60 s, the test's own timeout 5 s.
    await server.close();
    expect(await answer).toMatchObject({ status: 503, body: { error: { code: 'ERR_CLOSED' } } });
  });

  it('still answers 409 ERR_NOT_ROUTABLE for a nick without a route', async () => {
    const { api } = await apiOfTaker();
    expect(
      await api.request('POST', '/v1/privmsg', { to: 'J5xxxxxxxxxxxxxx', cmd: 'error', body: 'x' }),
    ).toMatchObject({ status: 409, body: { error: { code: 'ERR_NOT_ROUTABLE' } } });
  });
});

describe('POST /v1/pubmsg', () => {
  const pub = (api: ApiClient, message: string) => api.request('POST', '/v1/pubmsg', { message });

  it('answers 200 with confirmed: true only after a directory node answered the 798 behind it', async () => {
    const { api, link } = await apiOfTaker();
    let answered = false;
    const answer = pub(api, '!orderbook').finally(() => {
      answered = true;
    });
    expect(await link.next()).toMatch(/^\{"type": 687, "line": "J5\w+!PUBLIC!orderbook"\}$/);
    expect(await link.next()).toBe(PING);
    expect(answered).toBe(false);
    link.send(PONG);
    expect(await answer).toEqual({ status: 200, body: { directories: 1, confirmed: true } });
  });

  it('answers 502 ERR_NOT_DELIVERED when every directory node closes before confirming', async () => {
    const { api, link } = await apiOfTaker();
    const answer = pub(api, '!orderbook');
    await link.next();
    expect(await link.next()).toBe(PING);
    link.end();
    expect(await answer).toMatchObject({
      status: 502,
      body: { error: { code: 'ERR_NOT_DELIVERED' } },
    });
  });

  it('is confirmed by one directory node when another closes', async () => {
    const { taker, links } = await takerWithDirectories(stops, 2);
    const [first, second] = links as [ScriptedPeer, ScriptedPeer];
    const answer = taker.pubmsgConfirmed('!orderbook');
    for (const link of [first, second]) {
      await link.next();
      expect(await link.next()).toBe(PING);
    }
    first.end();
    second.send(PONG);
    expect(await answer).toEqual({ directories: 2, confirmed: true });
  });

  it('answers 200 with confirmed: false at once through a directory node without ping', async () => {
    const { api } = await apiOfTaker({ ping: false });
    expect(await pub(api, '!orderbook')).toEqual({
      status: 200,
      body: { directories: 1, confirmed: false },
    });
  });
});
