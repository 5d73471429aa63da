/**
 * The API's memory figures (src/api/memory.ts): `GET /v1/info` reports `process.memoryUsage()`,
 * and `POST /v1/gc` runs a real full collection when node exposes one, else answers 501. Driven
 * over loopback HTTP against an ApiServer on 127.0.0.1:0.
 *
 * The collector is the real one: node exposes `gc` to a new context once `--expose-gc` is set at
 * run time (`v8.setFlagsFromString`), and the test installs that function as `globalThis.gc` for
 * the test that needs it, as `node --expose-gc` would.
 */
import http from 'node:http';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiServer } from '../../src/api/server.js';
import { silentLogger } from '../../src/log.js';

let api: ApiServer;
let port = 0;

function request(method: string, urlPath: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        try {
          resolve({
            status: res.statusCode ?? 0,
            body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown,
          });
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Runs `body` with `globalThis.gc` set to `gc` (or removed), then puts back what was there. */
async function withGlobalGc(
  gc: (() => void) | undefined,
  body: () => Promise<void>,
): Promise<void> {
  const g = globalThis as { gc?: unknown };
  const had = Object.prototype.hasOwnProperty.call(g, 'gc');
  const saved = g.gc;
  if (gc === undefined) delete g.gc;
  else g.gc = gc;
  try {
    await body();
  } finally {
    if (had) g.gc = saved;
    else delete g.gc;
  }
}

/** An object only a WeakRef points to, made in its own function so nothing else holds it. */
function weaklyHeld(): WeakRef<object> {
  return new WeakRef({ payload: new Array(1_000).fill('garbage') });
}

beforeAll(async () => {
  api = new ApiServer(
    { info: () => ({ role: 'directory' }), client: undefined, directory: undefined },
    silentLogger(),
  );
  await api.listen({ kind: 'tcp', host: '127.0.0.1', port: 0 });
  const endpoint = api.endpoint;
  port = endpoint?.kind === 'tcp' ? endpoint.port : 0;
});

afterAll(async () => {
  await api.close();
});

describe('memory figures of the local API', () => {
  it('GET /v1/info adds the memory of the process, in bytes, to what the node reports', async () => {
    const res = await request('GET', '/v1/info');
    expect(res.status).toBe(200);
    const body = res.body as { role: string; memory: Record<string, number> };
    expect(body.role).toBe('directory');
    const m = body.memory;
    for (const key of [
      'rssBytes',
      'heapTotalBytes',
      'heapUsedBytes',
      'externalBytes',
      'arrayBuffersBytes',
    ])
      expect(Number.isSafeInteger(m[key]) && (m[key] ?? 0) > 0, key).toBe(true);
    expect(m.heapUsedBytes).toBeLessThanOrEqual(m.heapTotalBytes ?? 0);
    expect(m.rssBytes).toBeGreaterThan(m.heapUsedBytes ?? 0);
  });

  it('POST /v1/gc without --expose-gc is 501 ERR_API naming the flag, and the API goes on', async () => {
    await withGlobalGc(undefined, async () => {
      const res = await request('POST', '/v1/gc');
      expect(res.status).toBe(501);
      const { error } = res.body as { error: { code: string; message: string } };
      expect(error.code).toBe('ERR_API');
      expect(error.message).toContain('--expose-gc');
      expect((await request('GET', '/health')).status).toBe(200);
    });
  });

  it('POST /v1/gc with the collector exposed runs a full collection and reports the heap after it', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const ref = weaklyHeld();
    // The WeakRef's target stays alive until this job ends; the request crosses jobs.
    await withGlobalGc(gc, async () => {
      const res = await request('POST', '/v1/gc');
      expect(res.status).toBe(200);
      const body = res.body as {
        before: Record<string, number>;
        after: Record<string, number>;
        durationMs: number;
      };
      expect(body.after.heapUsedBytes).toBeGreaterThan(0);
      expect(body.after.rssBytes).toBeGreaterThan(0);
      expect(body.before.heapUsedBytes).toBeGreaterThan(0);
      expect(body.durationMs).toBeGreaterThanOrEqual(0);
      // The collection really ran: an object held only weakly is gone.
      expect(ref.deref()).toBeUndefined();
    });
  });

  it('GET /v1/gc is 405', async () => {
    const res = await request('GET', '/v1/gc');
    expect(res.status).toBe(405);
  });
});
