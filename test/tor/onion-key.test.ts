import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToNumberLE } from '@noble/curves/utils.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { sha3_256 } from '@noble/hashes/sha3.js';
import { base32nopad } from '@scure/base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasCode } from '../../src/errors.js';
import {
  HOSTNAME_FILE,
  loadOnionKey,
  loadOrCreateOnionKey,
  PUBLIC_KEY_FILE,
  SECRET_KEY_FILE,
} from '../../src/tor/onion-key.js';

let root: string;
let n = 0;
const fresh = (): string => join(root, `hs-${(n += 1)}`);

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'onionmc-key-test-'));
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

/** Independent v3 check (rend-spec-v3 §6): base32(pub ‖ checksum ‖ 0x03), checksum = SHA3-256(".onion checksum" ‖ pub ‖ 0x03)[:2]. */
function decodeV3(address: string): Uint8Array {
  expect(address).toMatch(/^[a-z2-7]{56}\.onion$/);
  const raw = base32nopad.decode(address.slice(0, 56).toUpperCase());
  expect(raw.length).toBe(35);
  expect(raw[34]).toBe(3);
  const pub = raw.subarray(0, 32);
  const sum = sha3_256(new Uint8Array([...new TextEncoder().encode('.onion checksum'), ...pub, 3]));
  expect([raw[32], raw[33]]).toEqual([sum[0], sum[1]]);
  return pub;
}

function header(text: string): number[] {
  return [...new TextEncoder().encode(text), 0, 0, 0];
}

/** Writes a HiddenServiceDir as tor would for `seed`, and returns the expected address. */
function writeTorDir(dir: string, seed: Uint8Array): string {
  const expanded = sha512(seed);
  expanded[0]! &= 248;
  expanded[31]! &= 127;
  expanded[31]! |= 64;
  const pub = ed25519.getPublicKey(seed);
  mkdirSync(dir, { mode: 0o700 });
  writeFileSync(
    join(dir, SECRET_KEY_FILE),
    new Uint8Array([...header('== ed25519v1-secret: type0 =='), ...expanded]),
    {
      mode: 0o600,
    },
  );
  writeFileSync(
    join(dir, PUBLIC_KEY_FILE),
    new Uint8Array([...header('== ed25519v1-public: type0 =='), ...pub]),
    {
      mode: 0o600,
    },
  );
  const raw = new Uint8Array(35);
  raw.set(pub);
  const sum = sha3_256(new Uint8Array([...new TextEncoder().encode('.onion checksum'), ...pub, 3]));
  raw[32] = sum[0]!;
  raw[33] = sum[1]!;
  raw[34] = 3;
  const address = `${base32nopad.encode(raw).toLowerCase()}.onion`;
  writeFileSync(join(dir, HOSTNAME_FILE), `${address}\n`, { mode: 0o600 });
  return address;
}

async function configError(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    expect(hasCode(err, 'ERR_CONFIG'), String(err)).toBe(true);
    return err as Error;
  }
  throw new Error('expected ERR_CONFIG');
}

describe('loadOrCreateOnionKey', () => {
  it('creates a 0700 directory with 0600 files in tor format, and a valid v3 address', async () => {
    const dir = join(fresh(), 'nested');
    const key = await loadOrCreateOnionKey(dir);
    expect(key.created).toBe(true);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(readdirSync(dir).sort()).toEqual(
      [HOSTNAME_FILE, PUBLIC_KEY_FILE, SECRET_KEY_FILE].sort(),
    );
    for (const name of readdirSync(dir)) expect(statSync(join(dir, name)).mode & 0o777).toBe(0o600);

    const secret = readFileSync(join(dir, SECRET_KEY_FILE));
    expect(secret.length).toBe(96);
    expect([...secret.subarray(0, 32)]).toEqual(header('== ed25519v1-secret: type0 =='));
    const publicFile = readFileSync(join(dir, PUBLIC_KEY_FILE));
    expect(publicFile.length).toBe(64);
    expect([...publicFile.subarray(0, 32)]).toEqual(header('== ed25519v1-public: type0 =='));
    expect(readFileSync(join(dir, HOSTNAME_FILE), 'utf8')).toBe(`${key.onionAddress}\n`);

    const pub = decodeV3(key.onionAddress);
    expect([...publicFile.subarray(32)]).toEqual([...pub]);
    expect(key.serviceId).toBe(key.onionAddress.slice(0, 56));
    // The blob is the expanded key of the file, its scalar clamped, and its public key matches.
    const expanded = Buffer.from(key.keyBlob, 'base64');
    expect(expanded.length).toBe(64);
    expect([...expanded]).toEqual([...secret.subarray(32)]);
    expect(expanded[0]! & 7).toBe(0);
    expect(expanded[31]! & 0xc0).toBe(0x40);
    const scalar = ed25519.Point.Fn.create(bytesToNumberLE(expanded.subarray(0, 32)));
    expect([...ed25519.Point.BASE.multiply(scalar).toBytes()]).toEqual([...pub]);
  });

  it('reloads the same key and address, and loadOnionKey agrees', async () => {
    const dir = fresh();
    const first = await loadOrCreateOnionKey(dir);
    const second = await loadOrCreateOnionKey(dir);
    expect(second).toEqual({ ...first, created: false });
    const loaded = await loadOnionKey(dir);
    expect(loaded).toEqual({
      keyBlob: first.keyBlob,
      onionAddress: first.onionAddress,
      serviceId: first.serviceId,
    });
  });

  it('makes a different key each time', async () => {
    const a = await loadOrCreateOnionKey(fresh());
    const b = await loadOrCreateOnionKey(fresh());
    expect(a.onionAddress).not.toBe(b.onionAddress);
  });

  it('leaves no temporary file behind', async () => {
    const dir = fresh();
    await loadOrCreateOnionKey(dir);
    await loadOrCreateOnionKey(dir);
    expect(readdirSync(dir).filter((f) => f.includes('tmp'))).toEqual([]);
    expect(readdirSync(dir)).toHaveLength(3);
  });

  it("keeps the address of a directory tor wrote (RFC 8032 test vector 1's seed)", async () => {
    const dir = fresh();
    const seed = Uint8Array.from(
      Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex'),
    );
    const address = writeTorDir(dir, seed);
    const key = await loadOrCreateOnionKey(dir);
    expect(key.created).toBe(false);
    expect(key.onionAddress).toBe(address);
    // RFC 8032 §7.1 test 1: this seed's public key.
    expect(Buffer.from(decodeV3(key.onionAddress)).toString('hex')).toBe(
      'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    );
  });

  it('restores missing public key and hostname files from the secret key', async () => {
    const dir = fresh();
    const key = await loadOrCreateOnionKey(dir);
    const publicBefore = readFileSync(join(dir, PUBLIC_KEY_FILE));
    rmSync(join(dir, PUBLIC_KEY_FILE));
    rmSync(join(dir, HOSTNAME_FILE));
    expect((await loadOnionKey(dir)).onionAddress).toBe(key.onionAddress);
    expect(readFileSync(join(dir, PUBLIC_KEY_FILE))).toEqual(publicBefore);
    expect(readFileSync(join(dir, HOSTNAME_FILE), 'utf8')).toBe(`${key.onionAddress}\n`);
  });

  it('refuses a directory open to group or others, naming the fix', async () => {
    const dir = fresh();
    mkdirSync(dir, { mode: 0o700 });
    chmodSync(dir, 0o750);
    const err = await configError(loadOrCreateOnionKey(dir));
    expect(err.message).toContain(dir);
    expect(err.message).toContain('750');
    expect(err.message).toContain('chmod 700');
    expect(readdirSync(dir)).toEqual([]);
    await configError(loadOnionKey(dir));
  });

  it('refuses to create a new key next to an orphan hostname or public key', async () => {
    const dir = fresh();
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(join(dir, HOSTNAME_FILE), `${'a'.repeat(56)}.onion\n`);
    const err = await configError(loadOrCreateOnionKey(dir));
    expect(err.message).toContain(SECRET_KEY_FILE);
    expect(readdirSync(dir)).toEqual([HOSTNAME_FILE]);
  });

  it('refuses corrupt files without printing key bytes', async () => {
    const dir = fresh();
    const key = await loadOrCreateOnionKey(dir);
    const secretPath = join(dir, SECRET_KEY_FILE);
    const good = readFileSync(secretPath);

    writeFileSync(secretPath, good.subarray(0, 95));
    let err = await configError(loadOnionKey(dir));
    expect(err.message).toContain(secretPath);

    const badHeader = Buffer.from(good);
    badHeader[3] = 0x45;
    writeFileSync(secretPath, badHeader);
    err = await configError(loadOnionKey(dir));
    expect(err.message).toContain(secretPath);

    writeFileSync(secretPath, good);
    const otherPub = readFileSync(join(dir, PUBLIC_KEY_FILE));
    otherPub[40] = otherPub[40]! ^ 1;
    writeFileSync(join(dir, PUBLIC_KEY_FILE), otherPub);
    err = await configError(loadOnionKey(dir));
    expect(err.message).toContain(PUBLIC_KEY_FILE);

    const blobHex = Buffer.from(key.keyBlob, 'base64').toString('hex');
    expect(err.message).not.toContain(key.keyBlob);
    expect(err.message).not.toContain(blobHex.slice(0, 16));
  });

  it('loadOnionKey reports a missing directory or key', async () => {
    const missing = fresh();
    expect((await configError(loadOnionKey(missing))).message).toContain('does not exist');
    mkdirSync(missing, { mode: 0o700 });
    expect((await configError(loadOnionKey(missing))).message).toContain(SECRET_KEY_FILE);
  });
});
