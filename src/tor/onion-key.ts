/**
 * Persistent onion service keys in `hidden_service_dir`, in tor's own HiddenServiceDir format, so
 * a directory node that ran under tor (or the reference's txtorcon-launched tor, docs/protocol.md §8.2) keeps
 * its onion address when it moves to onionmc's ADD_ONION, and back.
 *
 * Files (tor: src/feature/hs/hs_service.c, crypto_write_tagged_contents_to_file):
 *
 * | file                    | bytes | content                                                           |
 * | ----------------------- | ----- | ----------------------------------------------------------------- |
 * | `hs_ed25519_secret_key` | 96    | `== ed25519v1-secret: type0 ==` NUL-padded to 32, expanded key (64) |
 * | `hs_ed25519_public_key` | 64    | `== ed25519v1-public: type0 ==` NUL-padded to 32, public key (32)  |
 * | `hostname`              | 63    | `<56 base32 chars>.onion\n`                                        |
 *
 * The expanded key is what tor keeps and what ADD_ONION's `ED25519-V3:` takes (base64): SHA-512
 * of a 32-byte seed with the first half clamped (RFC 8032 §5.1.5): bytes 0-31 the secret scalar,
 * bytes 32-63 the signing prefix. The public key is scalar·B.
 *
 * Permissions: the directory must be 0700 and is created so; an existing directory with any
 * group or other bit set is refused with a `ConfigError` (tor refuses such a HiddenServiceDir
 * too, and the reference documents 700, docs/protocol.md §8.2), rather than silently tightened. Files are
 * written 0600, atomically (temporary file in the same directory, fsync, rename or link, fsync of
 * the directory); the secret key file is never overwritten.
 *
 * Key bytes never appear in logs or error messages.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, link, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToNumberLE } from '@noble/curves/utils.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { ConfigError } from '../errors.js';
import { onionAddressFromPublicKey } from '../wire/location.js';

/** Name of the secret key file in a HiddenServiceDir (tor). */
export const SECRET_KEY_FILE = 'hs_ed25519_secret_key';
/** Name of the public key file in a HiddenServiceDir (tor). */
export const PUBLIC_KEY_FILE = 'hs_ed25519_public_key';
/** Name of the hostname file in a HiddenServiceDir (tor). */
export const HOSTNAME_FILE = 'hostname';

/** Length of the tag header of tor's key files, in bytes (tor: crypto_format.c). */
export const KEY_FILE_HEADER_BYTES = 32;
/** Length of tor's expanded ed25519 secret key, in bytes. */
export const EXPANDED_SECRET_KEY_BYTES = 64;
/** Length of an ed25519 public key, in bytes. */
export const PUBLIC_KEY_BYTES = 32;

/** Header text of the secret key file, before NUL padding (tor: "== %s: %s ==" with tag type0). */
const SECRET_HEADER = '== ed25519v1-secret: type0 ==';
/** Header text of the public key file, before NUL padding. */
const PUBLIC_HEADER = '== ed25519v1-public: type0 ==';

/** Mode of hidden_service_dir (docs/protocol.md §8.2: "Directory permissions: 700"). */
export const HIDDEN_SERVICE_DIR_MODE = 0o700;
/** Mode of every file written in it. */
export const KEY_FILE_MODE = 0o600;

/** A loaded onion key. */
export interface OnionKey {
  /** base64 of the 64-byte expanded secret key, as ADD_ONION's `ED25519-V3:` wants it. A secret. */
  keyBlob: string;
  /** `<56 chars>.onion`. */
  onionAddress: string;
  /** The onion address without `.onion`, as ADD_ONION's ServiceID gives it. */
  serviceId: string;
}

function header(text: string): Uint8Array {
  const out = new Uint8Array(KEY_FILE_HEADER_BYTES);
  out.set(new TextEncoder().encode(text));
  return out;
}

function tagged(text: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(KEY_FILE_HEADER_BYTES + body.length);
  out.set(header(text), 0);
  out.set(body, KEY_FILE_HEADER_BYTES);
  return out;
}

function hasHeader(bytes: Uint8Array, text: string): boolean {
  const expected = header(text);
  if (bytes.length < expected.length) return false;
  for (let i = 0; i < expected.length; i += 1) if (bytes[i] !== expected[i]) return false;
  return true;
}

function problem(message: string): ConfigError {
  return new ConfigError([message]);
}

function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string')
    return err.code;
  return undefined;
}

/** The public key of tor's expanded secret key: (first 32 bytes as a little-endian scalar mod L)·B. */
function publicKeyOf(expanded: Uint8Array): Uint8Array {
  const scalar = ed25519.Point.Fn.create(bytesToNumberLE(expanded.subarray(0, 32)));
  if (scalar === 0n) throw new Error('degenerate ed25519 scalar');
  return ed25519.Point.BASE.multiply(scalar).toBytes();
}

/** A new expanded key: SHA-512 of a random seed, first half clamped (RFC 8032 §5.1.5). */
function newExpandedKey(): Uint8Array {
  const seed = randomBytes(32);
  const expanded = sha512(seed);
  seed.fill(0);
  expanded[0] = expanded[0]! & 248;
  expanded[31] = (expanded[31]! & 127) | 64;
  return expanded;
}

/**
 * Checks `dir` is a directory with no group or other permission bits.
 * @returns false when it does not exist.
 * @throws ConfigError when it is not a directory or is too open.
 */
async function checkDir(dir: string): Promise<boolean> {
  let info;
  try {
    info = await stat(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw problem(`hidden_service_dir ${dir} cannot be read (${errnoCode(err) ?? String(err)})`);
  }
  if (!info.isDirectory()) throw problem(`hidden_service_dir ${dir} is not a directory`);
  if ((info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(3, '0');
    throw problem(
      `hidden_service_dir ${dir} has mode ${mode}, but it holds an onion secret key and must be private (700):` +
        ` run "chmod 700 ${dir}" (tor refuses such a HiddenServiceDir too)`,
    );
  }
  return true;
}

/** Reads a file, or undefined when it does not exist. */
async function readOptional(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw problem(`cannot read ${path} (${errnoCode(err) ?? String(err)})`);
  }
}

/**
 * Writes `bytes` to `dir/name` atomically with mode 0600: a temporary file in the same directory,
 * fsync, then rename (or, with `noClobber`, link, which fails if the file exists), and fsync of
 * the directory. The temporary file is removed on failure.
 * @returns false when `noClobber` and the file already exists.
 */
async function writeAtomic(
  dir: string,
  name: string,
  bytes: Uint8Array,
  noClobber: boolean,
): Promise<boolean> {
  const finalPath = join(dir, name);
  const tempPath = join(dir, `.${name}.tmp-${randomBytes(6).toString('hex')}`);
  const handle = await open(
    tempPath,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL,
    KEY_FILE_MODE,
  );
  let linked = true;
  try {
    try {
      await handle.writeFile(bytes);
      await handle.chmod(KEY_FILE_MODE);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (noClobber) {
      try {
        await link(tempPath, finalPath);
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST') throw err;
        linked = false;
      }
      await unlink(tempPath);
    } else {
      await rename(tempPath, finalPath);
    }
  } catch (err) {
    await unlink(tempPath).catch(() => undefined);
    throw problem(`cannot write ${finalPath} (${errnoCode(err) ?? String(err)})`);
  }
  const dirHandle = await open(dir, constants.O_RDONLY);
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
  return linked;
}

/** Parses and checks the secret key file; returns the expanded key. */
function parseSecretKeyFile(path: string, bytes: Uint8Array): Uint8Array {
  if (
    bytes.length !== KEY_FILE_HEADER_BYTES + EXPANDED_SECRET_KEY_BYTES ||
    !hasHeader(bytes, SECRET_HEADER)
  ) {
    throw problem(
      `${path} is not a tor v3 onion secret key (expected ${KEY_FILE_HEADER_BYTES + EXPANDED_SECRET_KEY_BYTES} bytes` +
        ` starting with "${SECRET_HEADER}")`,
    );
  }
  // A copy (Buffer#slice would share memory with the file buffer, which is wiped).
  return Uint8Array.from(bytes.subarray(KEY_FILE_HEADER_BYTES));
}

/**
 * Loads the key of `dir`, checks its public key and hostname files when present, and writes
 * missing ones (as tor does).
 */
async function loadFrom(dir: string): Promise<OnionKey | undefined> {
  const secretPath = join(dir, SECRET_KEY_FILE);
  const secretFile = await readOptional(secretPath);
  if (secretFile === undefined) return undefined;
  const expanded = parseSecretKeyFile(secretPath, secretFile);
  secretFile.fill(0);
  let publicKey: Uint8Array;
  try {
    publicKey = publicKeyOf(expanded);
  } catch {
    expanded.fill(0);
    throw problem(`${secretPath} holds an invalid ed25519 secret key`);
  }
  const onionAddress = onionAddressFromPublicKey(publicKey);

  const publicPath = join(dir, PUBLIC_KEY_FILE);
  const publicFile = await readOptional(publicPath);
  const expectedPublic = tagged(PUBLIC_HEADER, publicKey);
  if (publicFile === undefined) {
    await writeAtomic(dir, PUBLIC_KEY_FILE, expectedPublic, false);
  } else if (!Buffer.from(publicFile).equals(expectedPublic)) {
    expanded.fill(0);
    throw problem(
      `${publicPath} does not match ${secretPath}: the directory mixes files of two onion services`,
    );
  }

  const hostnamePath = join(dir, HOSTNAME_FILE);
  const hostname = await readOptional(hostnamePath);
  if (hostname === undefined) {
    await writeAtomic(dir, HOSTNAME_FILE, new TextEncoder().encode(`${onionAddress}\n`), false);
  } else if (hostname.toString('utf8').trim() !== onionAddress) {
    expanded.fill(0);
    throw problem(
      `${hostnamePath} names another address than the key in ${secretPath} gives (${onionAddress})`,
    );
  }

  const keyBlob = Buffer.from(expanded).toString('base64');
  expanded.fill(0);
  return { keyBlob, onionAddress, serviceId: onionAddress.slice(0, -'.onion'.length) };
}

/**
 * Loads the onion key of `dir` (a tor HiddenServiceDir).
 * @throws ConfigError when the directory is missing, not private (0700), or has no secret key
 *   file, or when a file is corrupt or the files disagree. Messages name files, never key bytes.
 */
export async function loadOnionKey(dir: string): Promise<OnionKey> {
  if (!(await checkDir(dir))) throw problem(`hidden_service_dir ${dir} does not exist`);
  const key = await loadFrom(dir);
  if (key === undefined) {
    throw problem(`hidden_service_dir ${dir} has no ${SECRET_KEY_FILE}`);
  }
  return key;
}

/**
 * Loads the onion key of `dir`, or creates the directory (0700) and a new key (files 0600) when
 * there is none. Refuses to create a key where a public key or hostname file already exists, since
 * that would change a known address.
 * @returns the key, and `created: true` when it was made now.
 * @throws ConfigError as {@link loadOnionKey}, or when the directory or files cannot be written.
 */
export async function loadOrCreateOnionKey(dir: string): Promise<OnionKey & { created: boolean }> {
  if (!(await checkDir(dir))) {
    try {
      await mkdir(dir, { recursive: true, mode: HIDDEN_SERVICE_DIR_MODE });
      await chmod(dir, HIDDEN_SERVICE_DIR_MODE);
    } catch (err) {
      throw problem(`cannot create hidden_service_dir ${dir} (${errnoCode(err) ?? String(err)})`);
    }
  }
  const existing = await loadFrom(dir);
  if (existing !== undefined) return { ...existing, created: false };

  for (const name of [PUBLIC_KEY_FILE, HOSTNAME_FILE]) {
    if ((await readOptional(join(dir, name))) !== undefined) {
      throw problem(
        `hidden_service_dir ${dir} has ${name} but no ${SECRET_KEY_FILE}: restore the secret key` +
          ' (a new one would change the onion address)',
      );
    }
  }

  let expanded = newExpandedKey();
  // A clamped scalar is 0 mod L with negligible probability; draw again if it ever is.
  while (ed25519.Point.Fn.create(bytesToNumberLE(expanded.subarray(0, 32))) === 0n)
    expanded = newExpandedKey();
  const file = tagged(SECRET_HEADER, expanded);
  expanded.fill(0);
  const written = await writeAtomic(dir, SECRET_KEY_FILE, file, true);
  file.fill(0);
  // Lost a race with another writer: its key wins, ours is dropped.
  const key = await loadFrom(dir);
  if (key === undefined)
    throw problem(`${join(dir, SECRET_KEY_FILE)} vanished after it was written`);
  return { ...key, created: written };
}
