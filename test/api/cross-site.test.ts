/**
 * Requests a web page could make to the local API on a TCP port (docs/api.md "Web pages"): a
 * foreign `Origin` (a page posting a "simple" text/plain request, no CORS preflight) and a `Host`
 * that is not a loopback name or the listen address (DNS rebinding) are refused 403 `ERR_API`;
 * curl-like requests and the API's own origin are served; a unix socket is not checked. Node's
 * `http` over loopback, with the headers a browser would send.
 */
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiServer, type ApiEndpoint } from '../../src/api/server.js';
import { silentLogger } from '../../src/log.js';
import type { ClientNode } from '../../src/node/client-node.js';

const servers: ApiServer[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const api of servers.splice(0)) await api.close();
  for (const dir of dirs.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

/** The pubmsgs the API handed to its node. */
const sent: string[] = [];

/** An API server on `endpoint`, its node a taker that records each pubmsg it is asked to send. */
async function serve(endpoint: ApiEndpoint): Promise<ApiEndpoint> {
  sent.length = 0;
  const client = {
    role: 'taker',
    pubmsgConfirmed: (message: string) => {
      sent.push(message);
      return Promise.resolve({ directories: 1, confirmed: true });
    },
  } as unknown as ClientNode;
  const api = new ApiServer({ info: () => ({}), client, directory: undefined }, silentLogger());
  servers.push(api);
  await api.listen(endpoint);
  if (api.endpoint === undefined) throw new Error('the API did not listen');
  return api.endpoint;
}

/** One request with exactly `headers` (Host included); the status and the parsed JSON body. */
function ask(
  endpoint: ApiEndpoint,
  method: string,
  urlPath: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const where =
      endpoint.kind === 'unix'
        ? { socketPath: endpoint.path }
        : { host: endpoint.host, port: endpoint.port };
    const req = http.request({ ...where, method, path: urlPath, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        resolve({
          status: res.statusCode ?? 0,
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown,
        });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The error code and message of an answer. */
function errorOf(body: unknown): { code?: string; message?: string } | undefined {
  return (body as { error?: { code?: string; message?: string } }).error;
}

const PUBMSG = JSON.stringify({ message: '!orderbook' });

describe('the API on a TCP port', () => {
  it('refuses a text/plain POST /v1/pubmsg from another origin with 403 ERR_API; nothing is sent', async () => {
    const api = await serve({ kind: 'tcp', host: '127.0.0.1', port: 0 });
    if (api.kind !== 'tcp') throw new Error('not TCP');
    const res = await ask(
      api,
      'POST',
      '/v1/pubmsg',
      {
        host: `127.0.0.1:${api.port}`,
        origin: 'http://evil.example',
        'content-type': 'text/plain',
      },
      PUBMSG,
    );
    expect(res.status).toBe(403);
    expect(errorOf(res.body)?.code).toBe('ERR_API');
    expect(errorOf(res.body)?.message).toMatch(
      /^cross-origin request refused: Origin "http:\/\/evil\.example" is not the API's own origin/,
    );
    expect(sent).toEqual([]);
  });

  it.each(['null', `http://localhost`, 'https://127.0.0.1', 'not a URL'])(
    'refuses the Origin %s on 127.0.0.1',
    async (origin) => {
      const api = await serve({ kind: 'tcp', host: '127.0.0.1', port: 0 });
      if (api.kind !== 'tcp') throw new Error('not TCP');
      const res = await ask(api, 'GET', '/v1/info', { host: `127.0.0.1:${api.port}`, origin });
      expect(res.status).toBe(403);
      expect(errorOf(res.body)?.message).toMatch(/^cross-origin request refused/);
    },
  );

  it.each(['evil.example', 'evil.example:PORT', '127.0.0.2:PORT', 'user@127.0.0.1:PORT', '::1'])(
    'refuses Host %s (DNS rebinding) with 403 ERR_API naming it',
    async (hostTemplate) => {
      const api = await serve({ kind: 'tcp', host: '127.0.0.1', port: 0 });
      if (api.kind !== 'tcp') throw new Error('not TCP');
      const host = hostTemplate.replace('PORT', String(api.port));
      for (const [method, urlPath] of [
        ['GET', '/v1/info'],
        ['GET', '/v1/orderbook'],
        ['GET', '/v1/events'],
      ] as const) {
        const res = await ask(api, method, urlPath, { host });
        expect(res.status, `${method} ${urlPath}`).toBe(403);
        expect(errorOf(res.body)?.code).toBe('ERR_API');
        expect(errorOf(res.body)?.message).toBe(
          `Host ${JSON.stringify(host)} refused: the API answers only requests to a loopback name or address (localhost, 127.0.0.1, [::1]) or its listen address, so that no web page reaches it under another name (DNS rebinding)`,
        );
      }
    },
  );

  it('serves loopback Hosts with or without port, no Origin (curl), and its own origin (the status page)', async () => {
    const api = await serve({ kind: 'tcp', host: '127.0.0.1', port: 0 });
    if (api.kind !== 'tcp') throw new Error('not TCP');
    for (const host of [
      `127.0.0.1:${api.port}`,
      '127.0.0.1',
      `localhost:${api.port}`,
      'LOCALHOST',
      `[::1]:${api.port}`,
    ]) {
      const res = await ask(api, 'GET', '/health', { host });
      expect(res, host).toEqual({ status: 200, body: { status: 'ok' } });
    }
    // What the status page's own POST would carry: its own origin.
    const own = `http://localhost:${api.port}`;
    const res = await ask(
      api,
      'POST',
      '/v1/pubmsg',
      { host: `localhost:${api.port}`, origin: own, 'content-type': 'application/json' },
      PUBMSG,
    );
    expect(res).toEqual({ status: 200, body: { directories: 1, confirmed: true } });
    expect(sent).toEqual(['!orderbook']);
  });

  it('serves its listen address as Host when it is another loopback address', async () => {
    const api = await serve({ kind: 'tcp', host: '127.0.0.2', port: 0 });
    if (api.kind !== 'tcp') throw new Error('not TCP');
    const res = await ask(api, 'GET', '/health', {
      host: `127.0.0.2:${api.port}`,
      origin: `http://127.0.0.2:${api.port}`,
    });
    expect(res).toEqual({ status: 200, body: { status: 'ok' } });
  });
});

describe('the API on a unix socket', () => {
  it('checks neither Host nor Origin: no web page reaches it', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'onionmc-cross-site-'));
    dirs.push(dir);
    const api = await serve({ kind: 'unix', path: path.join(dir, 'api.sock') });
    const res = await ask(api, 'GET', '/health', {
      host: 'evil.example',
      origin: 'http://evil.example',
    });
    expect(res).toEqual({ status: 200, body: { status: 'ok' } });
  });
});
