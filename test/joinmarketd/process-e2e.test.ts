/**
 * End to end in testing mode on processes (issue 11 point 4, as the issue is checked): a
 * directory node as `onionmc run` and one `onionmc joinmarketd --port <p> --host 127.0.0.1`
 * process per wallet, driven by the scripted wallets of scenario.ts (the same scenarios as the
 * in-process node-e2e.test.ts). Every process stops on SIGTERM with exit code 0. Uses dist/
 * (`npm run build`, built here when missing).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, CLI_PATH } from '../../src/demo/cluster.js';
import { AmpTestClient } from './amp-client.js';
import { bondScenario, Wallet, wholeNegotiation, type Rig } from './scenario.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** How long a process gets to start (log its listening line) or to stop before SIGKILL. */
const PROCESS_DEADLINE_MS = 15_000;

/** A running `onionmc joinmarketd` process. */
class JoinmarketdProcess {
  #output = '';
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly #exited: Promise<void>;

  /** The AMP port the process bound (it listens on port 0 and logs the port it got). */
  port = 0;

  private constructor(readonly child: ChildProcess) {
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (this.#output += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.#output += chunk));
    this.#exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve();
      }),
    );
  }

  /** Spawns it on port 0 and reads the port it got from its `joinmarketd listening` log line. */
  static async start(): Promise<JoinmarketdProcess> {
    const child = spawn(
      process.execPath,
      [CLI_PATH, 'joinmarketd', '--port', '0', '--host', '127.0.0.1'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const proc = new JoinmarketdProcess(child);
    live.push(proc);
    await proc.#waitFor(() => {
      const line = proc.logLines().find((l) => l.msg === 'joinmarketd listening');
      if (typeof line?.port !== 'number' || line.port === 0) return false;
      proc.port = line.port;
      return true;
    }, 'joinmarketd listening');
    return proc;
  }

  /** The JSON log lines so far. */
  logLines(): Record<string, unknown>[] {
    return this.#output
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** Waits (on output and exit events, no polling) until `predicate` holds. */
  async #waitFor(predicate: () => boolean, what: string): Promise<void> {
    const stdout = this.child.stdout;
    await new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (predicate()) done();
        else if (this.exit !== undefined) done(new Error(`exited before ${what}: ${this.#output}`));
      };
      const timer = setTimeout(() => {
        done(new Error(`timed out waiting for ${what}: ${this.#output}`));
      }, PROCESS_DEADLINE_MS);
      const done = (err?: Error): void => {
        clearTimeout(timer);
        stdout?.off('data', check);
        this.child.off('exit', check);
        if (err === undefined) resolve();
        else reject(err);
      };
      stdout?.on('data', check);
      this.child.on('exit', check);
      check();
    });
  }

  /** SIGTERM, then waits for the exit (SIGKILL after the deadline); returns the exit. */
  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.exit === undefined) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), PROCESS_DEADLINE_MS);
      await this.#exited;
      clearTimeout(timer);
    }
    return this.exit ?? { code: null, signal: null };
  }
}

const live: JoinmarketdProcess[] = [];
const links: AmpTestClient[] = [];
let cluster: Cluster | undefined;

beforeAll(async () => {
  if (!existsSync(CLI_PATH)) await promisify(execFile)('npm', ['run', 'build'], { cwd: ROOT });
});

afterEach(async () => {
  for (const link of links.splice(0)) link.close();
  await Promise.all(live.splice(0).map((p) => p.stop()));
  await cluster?.stop();
  cluster = undefined;
});

/** A directory node process; each wallet gets its own joinmarketd process. */
async function processRig(): Promise<{ rig: Rig; daemons: JoinmarketdProcess[] }> {
  cluster = await Cluster.create('onionmc-jmd-proc-');
  const directory = await cluster.start({ name: 'directory', role: 'directory' });
  const daemons: JoinmarketdProcess[] = [];
  const rig: Rig = {
    directoryLocation: `127.0.0.1:${directory.servingPort}`,
    dir: cluster.dir,
    startWallet: async () => {
      const daemon = await JoinmarketdProcess.start();
      daemons.push(daemon);
      const link = await AmpTestClient.connect(daemon.port);
      links.push(link);
      return new Wallet(link);
    },
  };
  return { rig, daemons };
}

/**
 * Stops every process of the rig with SIGTERM, the wallets still connected and the message
 * channels up, and checks each exits 0 and its wallet's link is closed.
 */
async function stopCleanly(daemons: readonly JoinmarketdProcess[]): Promise<void> {
  for (const daemon of daemons) {
    live.splice(live.indexOf(daemon), 1);
    expect(await daemon.stop()).toEqual({ code: 0, signal: null });
    expect(daemon.logLines().some((l) => l.msg === 'stopping' && l.signal === 'SIGTERM')).toBe(
      true,
    );
  }
  await Promise.all(links.map((link) => link.whenClosed()));
  expect(await cluster?.stopNode('directory')).toBe(0);
}

describe('onionmc joinmarketd processes, testing mode', () => {
  it('the whole negotiation through a directory node process and two joinmarketd processes; SIGTERM exits 0', async () => {
    const { rig, daemons } = await processRig();
    await wholeNegotiation(rig);
    expect(daemons).toHaveLength(2);
    await stopCleanly(daemons);
  }, 60_000);

  it('maker with a fidelity bond, on processes; SIGTERM exits 0', async () => {
    const { rig, daemons } = await processRig();
    await bondScenario(rig);
    await stopCleanly(daemons);
  }, 60_000);
});
