/**
 * The API's unix socket: checking the path before listening (never removing anything but a
 * stale socket), creating the socket with its final permissions, and giving it a group.
 *
 * A unix socket file is created by `bind()` with mode `0777 & ~umask`; the umask is set around
 * the synchronous `listen()` call so that the socket never exists with wider permissions than
 * asked for. With a group, the socket is created owner-only, given the group, and only then
 * opened to the group: at no moment can a user outside the group connect.
 */
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { OnionmcError } from '../errors.js';

/** How long a connection attempt to an existing socket may take before it counts as stale, ms. */
export const SOCKET_PROBE_TIMEOUT_MS = 2_000;

/** Why the API could not listen. */
export type ApiListenFailure =
  /** Something that is not a socket is at the path: it is left alone. */
  | 'not-a-socket'
  /** A live process answers on the socket (another onionmc): it is left alone. */
  | 'in-use'
  /** The group of `api_socket_group` does not exist or cannot be given. */
  | 'group'
  /** listen() failed (EADDRINUSE on a TCP port, EACCES, a missing folder). */
  | 'listen';

/** The local API cannot listen where it was told to; the message names the endpoint and why. */
export class ApiListenError extends OnionmcError {
  readonly failure: ApiListenFailure;

  constructor(failure: ApiListenFailure, message: string, options?: { cause?: unknown }) {
    super('ERR_API', message, options);
    this.failure = failure;
  }
}

/** What is at a socket path that exists. */
type Probe = 'alive' | 'stale';

/** Connects to the unix socket at `path`: `alive` when something accepts, `stale` when refused. */
function probe(path: string): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('alive'); // something holds the socket but is slow: do not take it over
    }, SOCKET_PROBE_TIMEOUT_MS);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve('alive');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ECONNREFUSED') resolve('stale');
      else reject(err);
    });
  });
}

/**
 * Makes `path` free for a new socket: nothing there is fine; a stale socket (nobody listening) is
 * removed; anything else is refused and left as it is.
 * @param lstat and unlink: the fs functions (node:fs/promises).
 * @returns true when a stale socket was removed.
 * @throws ApiListenError `not-a-socket` naming the path and what is there; `in-use` when a
 *   process answers on the socket ("another onionmc serves PATH"); `listen` for other errors.
 */
export async function claimSocketPath(
  path: string,
  fs: {
    lstat(p: string): Promise<{ isSocket(): boolean; isDirectory(): boolean; isFile(): boolean }>;
    unlink(p: string): Promise<void>;
  },
): Promise<boolean> {
  let stat;
  try {
    stat = await fs.lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new ApiListenError('listen', `cannot use ${path} for the local API: ${errText(err)}`, {
      cause: err,
    });
  }
  if (!stat.isSocket()) {
    const what = stat.isDirectory()
      ? 'a directory'
      : stat.isFile()
        ? 'a regular file'
        : 'not a socket';
    throw new ApiListenError(
      'not-a-socket',
      `${path} is ${what}, not a socket: refusing to replace it; remove it or choose another API path`,
    );
  }
  let state: Probe;
  try {
    state = await probe(path);
  } catch (err) {
    throw new ApiListenError('listen', `cannot check the socket ${path}: ${errText(err)}`, {
      cause: err,
    });
  }
  if (state === 'alive') {
    throw new ApiListenError(
      'in-use',
      `another onionmc serves ${path}: stop it first, or give this one another API path (--api, --datadir)`,
    );
  }
  await fs.unlink(path);
  return true;
}

/**
 * Resolves `group` (a name from /etc/group, or a numeric gid) to a gid.
 * @throws ApiListenError `group` when there is no such group.
 */
export async function resolveGroup(group: string, groupFile = '/etc/group'): Promise<number> {
  if (/^\d+$/.test(group)) return Number(group);
  let text = '';
  try {
    text = await readFile(groupFile, 'utf8');
  } catch (err) {
    throw new ApiListenError(
      'group',
      `cannot read ${groupFile} to find group ${group}: ${errText(err)}`,
    );
  }
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new ApiListenError(
    'group',
    `api_socket_group = ${group}: no such group (create it, e.g. addgroup --system ${group})`,
  );
}

/** Runs `fn` (which must create the socket synchronously) with `umask` set, then restores it. */
export function withUmask<T>(umask: number, fn: () => T): T {
  const previous = process.umask(umask);
  try {
    return fn();
  } finally {
    process.umask(previous);
  }
}

function errText(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const message = err instanceof Error ? err.message : String(err);
  return code !== undefined && !message.includes(code) ? `${code}: ${message}` : message;
}
