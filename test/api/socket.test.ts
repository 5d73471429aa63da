/**
 * The API's unix socket (src/api/unix-socket.ts): created with its final mode by the umask around
 * bind(), never chmod-ed open afterwards (with a process umask of 0 the socket would otherwise be
 * 0777 until a chmod, and this test fails when the umask is removed); what is at the path before
 * listening: nothing, a stale socket (replaced), a live socket, a regular file or a folder
 * (refused, left alone); api_socket_group names.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiServer } from '../../src/api/server.js';
import { ApiListenError, claimSocketPath, resolveGroup } from '../../src/api/unix-socket.js';
import { silentLogger } from '../../src/log.js';

const backend = { info: () => ({}), client: undefined, directory: undefined };

/** Leaves a stale socket at `file`: bound by a process that then exits without removing it. */
function staleSocket(file: string): void {
  execFileSync(process.execPath, [
    '-e',
    `require('net').createServer().listen(${JSON.stringify(file)}, () => process.exit(0))`,
  ]);
}

describe('the API unix socket', () => {
  let dir = '';

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'onionmc-socket-'));
  });

  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('is created with its mode (0660 by default, 0600 when asked) even under a process umask of 0', async () => {
    for (const [mode, expected] of [
      [undefined, 0o660],
      [0o600, 0o600],
    ] as const) {
      const file = path.join(dir, `mode-${expected.toString(8)}.sock`);
      const server = new ApiServer(
        backend,
        silentLogger(),
        mode === undefined ? {} : { socketMode: mode },
      );
      const previous = process.umask(0);
      try {
        await server.listen({ kind: 'unix', path: file });
      } finally {
        process.umask(previous);
      }
      // The umask is restored after listen(): set it again and read back what was there.
      expect(process.umask(previous)).toBe(previous);
      expect((await fs.stat(file)).mode & 0o777).toBe(expected);
      await server.close();
    }
  });

  it('refuses a regular file and a folder, leaving them; refuses a live socket', async () => {
    const file = path.join(dir, 'file');
    await fs.writeFile(file, 'data');
    await expect(claimSocketPath(file, fs)).rejects.toMatchObject({
      failure: 'not-a-socket',
      message: expect.stringContaining(`${file} is a regular file, not a socket`) as unknown,
    });
    expect(await fs.readFile(file, 'utf8')).toBe('data');
    const folder = path.join(dir, 'folder');
    await fs.mkdir(folder);
    await expect(claimSocketPath(folder, fs)).rejects.toBeInstanceOf(ApiListenError);
    expect((await fs.stat(folder)).isDirectory()).toBe(true);

    const live = path.join(dir, 'live.sock');
    const server = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(live, resolve));
    await expect(claimSocketPath(live, fs)).rejects.toMatchObject({
      failure: 'in-use',
      message: expect.stringContaining(`another onionmc serves ${live}`) as unknown,
    });
    expect((await fs.lstat(live)).isSocket()).toBe(true);
    await new Promise<void>((resolve) =>
      server.close(() => {
        resolve();
      }),
    );
  });

  it('replaces a stale socket and takes a free path', async () => {
    const stale = path.join(dir, 'stale.sock');
    staleSocket(stale);
    expect(await claimSocketPath(stale, fs)).toBe(true);
    await expect(fs.lstat(stale)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await claimSocketPath(path.join(dir, 'free.sock'), fs)).toBe(false);
  });

  it('a second ApiServer on a live socket is refused and the first keeps serving', async () => {
    const file = path.join(dir, 'twice.sock');
    const first = new ApiServer(backend, silentLogger());
    await first.listen({ kind: 'unix', path: file });
    const second = new ApiServer(backend, silentLogger());
    await expect(second.listen({ kind: 'unix', path: file })).rejects.toMatchObject({
      failure: 'in-use',
    });
    expect((await fs.lstat(file)).isSocket()).toBe(true);
    await first.close();
  });

  it('resolves api_socket_group by name or gid, and names a missing group', async () => {
    const groupFile = path.join(dir, 'group');
    await fs.writeFile(groupFile, 'root:x:0:\nonionmc-api:x:123:alice,bob\n');
    expect(await resolveGroup('onionmc-api', groupFile)).toBe(123);
    expect(await resolveGroup('77', groupFile)).toBe(77);
    await expect(resolveGroup('wallets', groupFile)).rejects.toMatchObject({
      failure: 'group',
      message: expect.stringContaining('api_socket_group = wallets: no such group') as unknown,
    });
  });
});
