/**
 * The status page (`GET /`, issue 9 point 6) in headless Chromium (Debian's `chromium`, driven by
 * playwright-core): a directory node runs as a process; a taker runs in this process with its API
 * on 127.0.0.1:0; the page is loaded, then a maker starts and announces an offer, and the test
 * waits for the offer's row to appear in the page's orderbook table without a reload (the page
 * follows /v1/events). Without chromium the suite is skipped with the reason in its name; with
 * CI=true it fails instead.
 */
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/config.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { Cluster, pollUntil } from '../../src/demo/cluster.js';
import { silentLogger } from '../../src/log.js';
import { BoundServer } from '../helpers/ports.js';

const CHROMIUM = '/usr/bin/chromium';
const WAIT_MS = 20_000;
const reason = existsSync(CHROMIUM)
  ? undefined
  : `${CHROMIUM} is missing (apt-get install chromium)`;
if (reason !== undefined && process.env.CI === 'true')
  throw new Error(`the status page test cannot run in CI: ${reason}`);
if (reason !== undefined) console.warn(`skipping the status page test: ${reason}`);

describe.skipIf(reason !== undefined)(
  `the status page in headless Chromium${reason !== undefined ? ` [skipped: ${reason}]` : ''}`,
  { timeout: 60_000 },
  () => {
    let cluster: Cluster;
    let taker: Daemon;
    let context: BrowserContext | undefined;
    let userDataDir = '';
    let directoryLocation = '';
    let pageUrl = '';

    let serving: BoundServer | undefined;
    beforeAll(async () => {
      cluster = await Cluster.create('onionmc-page-');
      const directory = await cluster.start({ name: 'directory', role: 'directory' });
      directoryLocation = ((await directory.api.call('GET', '/v1/info')) as { location: string })
        .location;
      // A taker serves nothing; its serving port is still ours, bound on port 0.
      serving = await BoundServer.listen();
      taker = new Daemon({
        server: serving,
        config: parseConfig(
          [
            '[BLOCKCHAIN]',
            'network = testnet',
            '[MESSAGING:onion]',
            'type = onion',
            `onion_serving_port = ${serving.port}`,
            `directory_nodes = ${directoryLocation}`,
            'regtest_count = 1,1',
          ].join('\n'),
          path.join(cluster.dir, 'taker.cfg'),
        ),
        logger: silentLogger(),
        api: { kind: 'tcp', host: '127.0.0.1', port: 0 },
      });
      await taker.start();
      const endpoint = taker.api?.endpoint;
      if (endpoint?.kind !== 'tcp') throw new Error('the taker has no TCP API');
      pageUrl = `http://127.0.0.1:${endpoint.port}/`;
      userDataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'onionmc-chromium-'));
      context = await chromium.launchPersistentContext(userDataDir, {
        executablePath: CHROMIUM,
        headless: true,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
    });

    afterAll(async () => {
      await context?.close();
      await taker.stop();
      await serving?.close();
      await cluster.stop();
      if (userDataDir !== '') await fs.rm(userDataDir, { recursive: true, force: true });
    });

    it("shows the node, its directory node, and a maker's offer as it arrives", async () => {
      if (context === undefined) throw new Error('no browser');
      const page = await context.newPage();
      const requests: string[] = [];
      page.on('request', (request) => requests.push(request.url()));
      const errors: string[] = [];
      page.on('pageerror', (err) => errors.push(err.message));
      await page.goto(pageUrl);
      await page.locator('#summary', { hasText: 'taker' }).waitFor({ timeout: WAIT_MS });
      await page
        .locator('#directories tbody tr', { hasText: directoryLocation })
        .filter({ hasText: 'handshaked' })
        .waitFor({ timeout: WAIT_MS });
      await page.locator('#live', { hasText: 'events: live' }).waitFor({ timeout: WAIT_MS });
      expect(await page.locator('#orderbook tbody tr').count()).toBe(0);

      // A maker appears after the page loaded and announces its offer.
      const maker = await cluster.start({
        name: 'maker',
        role: 'maker',
        directories: [directoryLocation],
      });
      const makerNick = ((await maker.api.call('GET', '/v1/info')) as { nick: string }).nick;
      await pollUntil(
        'the maker handshaked with the directory node',
        async () => {
          const info = (await maker.api.call('GET', '/v1/info')) as {
            directories: { state: string }[];
          };
          return info.directories.every((d) => d.state === 'handshaked') ? true : undefined;
        },
        WAIT_MS,
      );
      await maker.api.call('PUT', '/v1/offers', {
        offers: [
          {
            type: 'sw0reloffer',
            oid: 7,
            minsize: 27300,
            maxsize: 1000000,
            txfee: 0,
            cjfee: '0.00002',
          },
        ],
      });
      const row = page.locator('#orderbook tbody tr', { hasText: makerNick });
      await row.waitFor({ timeout: WAIT_MS });
      expect(await row.locator('td').allTextContents()).toEqual([
        makerNick,
        'sw0reloffer',
        '7',
        '27300',
        '1000000',
        '0',
        '0.002000 %',
      ]);
      expect(errors).toEqual([]);
      // Everything the page loaded came from the node itself.
      expect(requests.every((url) => url.startsWith(pageUrl))).toBe(true);
    });
  },
);
