/**
 * docs/operating.md, "A directory node under systemd, from a fresh Debian machine", run as
 * written (issue 9 point 9): every ```sh block of that section, in order, through bash, as root
 * with ONIONMC_ALLOW_ROOT=1 (vitest.config.ts), in a scratch folder. The absolute paths of the
 * doc (/etc/onionmc, /var/lib/onionmc, /run, the installed package) are rewritten into the folder;
 * `onionmc` is the compiled dist/cli/main.js. What needs the machine itself is replaced by a
 * shell function that says so: apt-get, adduser and npm (packaging is tested by hand: npm pack,
 * npm install -g), `sudo -u onionmc` (runs as the current user), and systemctl, which starts the
 * copied unit's ExecStart line as systemd would (creating its RuntimeDirectory) and waits for its
 * API socket. No tor is started: the unit's control socket is a scripted tor stuck at 45 %
 * bootstrap, so the node serves its API and says it waits for tor.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listenOnFreePort, listeningFd, pollUntil, portOf } from '../../src/demo/cluster.js';
import { BootstrappingTor } from '../ops/fake-tor.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI_PATH = path.join(ROOT, 'dist/cli/main.js');
const SECTION = '## A directory node under systemd';

/** The ```sh blocks of the section, in order, with the list indentation removed. */
export function docCommands(markdown: string): string[] {
  const start = markdown.indexOf(SECTION);
  if (start < 0) throw new Error(`docs/operating.md has no "${SECTION}" section`);
  const rest = markdown.slice(start + SECTION.length);
  const end = rest.search(/^## /m);
  const section = end < 0 ? rest : rest.slice(0, end);
  const blocks: string[] = [];
  for (const m of section.matchAll(/^( *)```sh\n([\s\S]*?)^\1```$/gm)) {
    const indent = m[1] ?? '';
    blocks.push(
      (m[2] ?? '')
        .split('\n')
        .map((line) => (line.startsWith(indent) ? line.slice(indent.length) : line))
        .join('\n'),
    );
  }
  return blocks;
}

/** The shell functions that stand in for the machine (see the module header). */
function prelude(scratch: string, rewrites: readonly (readonly [string, string])[]): string {
  const sed = rewrites.map(([from, to]) => `-e 's|${from}|${to}|g'`).join(' ');
  return `set -euo pipefail
onionmc() { node ${JSON.stringify(CLI_PATH)} "$@"; }
sudo() { if [ "$1" = "-u" ]; then shift 2; fi; "$@"; }
apt-get() { echo "skipped (needs the machine): apt-get $*"; }
adduser() { echo "skipped (needs the machine): adduser $*"; }
npm() { echo "skipped (packaging is tested by hand): npm $*"; }
install() {
  local args=()
  while [ $# -gt 0 ]; do case "$1" in -o|-g) shift 2 ;; *) args+=("$1"); shift ;; esac; done
  command install "\${args[@]}"
}
systemctl() {
  case "$1" in
    daemon-reload) echo "skipped (no systemd): systemctl $*" ;;
    enable)
      local unit="${scratch}/etc/systemd/system/$3.service"
      local exec runtime
      exec=$(sed -n 's/^ExecStart=//p' "$unit" | sed ${sed} -e 's|^/usr/local/bin/onionmc|node ${CLI_PATH}|')
      runtime=$(sed -n 's/^RuntimeDirectory=//p' "$unit")
      install -d -m 0750 "${scratch}/run/$runtime"
      # The test hands the node its listening socket as fd 3, as a systemd .socket unit would.
      $exec --listen-fd 3 > "${scratch}/daemon.log" 2>&1 &
      echo $! > "${scratch}/daemon.pid"
      local socket
      socket=$(echo "$exec" | sed -n 's/.*--api unix:\\([^ ]*\\).*/\\1/p')
      for _ in $(seq 150); do [ -S "$socket" ] && return 0; sleep 0.1; done
      echo "the unit's API socket $socket did not appear" >&2; cat "${scratch}/daemon.log" >&2; return 1 ;;
    *) echo "skipped (no systemd): systemctl $*" ;;
  esac
}
`;
}

/**
 * Runs `bash file` in the repository with `listener`'s socket as the script's fd 3, then closes our
 * copy of the socket (the node the script starts keeps its own).
 * @throws Error naming the exit code and stderr when the script fails or runs over 60 s.
 */
async function runScript(file: string, listener: net.Server): Promise<{ stdout: string }> {
  const child = spawn('bash', [file], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe', listeningFd(listener)],
  });
  listener.close();
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  clearTimeout(timer);
  if (code !== 0) throw new Error(`the doc's commands failed (exit ${String(code)}): ${stderr}`);
  return { stdout };
}

describe(
  'docs/operating.md: a directory node from a fresh Debian machine, as written',
  { timeout: 90_000 },
  () => {
    let scratch = '';
    const tor = new BootstrappingTor();

    beforeAll(async () => {
      if (!existsSync(CLI_PATH)) await promisify(execFile)('npm', ['run', 'build'], { cwd: ROOT });
      scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'onionmc-doc-'));
      await fs.mkdir(path.join(scratch, 'run/tor'), { recursive: true });
      await fs.mkdir(path.join(scratch, 'etc/systemd/system'), { recursive: true });
      await tor.listen(path.join(scratch, 'run/tor/control'));
    });

    afterAll(async () => {
      const pid = Number(
        await fs.readFile(path.join(scratch, 'daemon.pid'), 'utf8').catch(() => '0'),
      );
      if (pid > 0) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await tor.close();
      await fs.rm(scratch, { recursive: true, force: true });
    });

    it('runs every command in order and ends with the node serving its API, waiting for tor', async () => {
      const blocks = docCommands(await fs.readFile(path.join(ROOT, 'docs/operating.md'), 'utf8'));
      expect(blocks.length).toBeGreaterThanOrEqual(6);
      // The node's peer port: bound here on port 0 and handed to the script as its fd 3; the
      // systemctl stand-in starts the unit's ExecStart with --listen-fd 3.
      const listener = await listenOnFreePort();
      const port = portOf(listener);
      const rewrites: [string, string][] = [
        ['/usr/local/lib/node_modules/onionmc', ROOT.replace(/\/$/, '')],
        ['/etc/onionmc', `${scratch}/etc/onionmc`],
        ['/etc/systemd/system', `${scratch}/etc/systemd/system`],
        ['/var/lib/onionmc', `${scratch}/var/lib/onionmc`],
        ['/run/', `${scratch}/run/`],
        ['onion_serving_port = 5222', `onion_serving_port = ${port}`],
      ];
      let script = blocks.join('\n');
      for (const [from, to] of rewrites) script = script.split(from).join(to);
      const file = path.join(scratch, 'doc.sh');
      await fs.writeFile(file, `${prelude(scratch, rewrites)}\n${script}\n`);
      const { stdout } = await runScript(file, listener);

      const keyDir = `${scratch}/var/lib/onionmc/directory`;
      expect((await fs.stat(keyDir)).mode & 0o777).toBe(0o700);
      const config = await fs.readFile(`${scratch}/etc/onionmc/joinmarket.cfg`, 'utf8');
      const onion = /^directory_nodes = ([a-z2-7]{56}\.onion):5222$/m.exec(config)?.[1];
      expect(onion, config).toBeDefined();
      expect(stdout).toMatch(/^role\s+directory node$/m);
      expect(stdout).toMatch(/^role\s+directory$/m);
      expect(stdout).toMatch(/^state\s+starting: waiting for tor bootstrap 45%$/m);
      expect(stdout).toContain('skipped (no systemd): systemctl daemon-reload');
      // No onion was asked of a tor that is not bootstrapped.
      expect(tor.commands.some((c) => c.startsWith('ADD_ONION'))).toBe(false);

      // The node stops on SIGTERM, as `systemctl stop` sends it, and says so last.
      const pid = Number(await fs.readFile(path.join(scratch, 'daemon.pid'), 'utf8'));
      process.kill(pid, 'SIGTERM');
      await pollUntil(
        'the node to exit',
        () => {
          try {
            process.kill(pid, 0);
            return Promise.resolve(undefined);
          } catch {
            return Promise.resolve(true);
          }
        },
        15_000,
      );
      const log = (await fs.readFile(path.join(scratch, 'daemon.log'), 'utf8'))
        .trimEnd()
        .split('\n');
      expect(JSON.parse(log.at(-1) ?? '{}')).toMatchObject({
        msg: 'onionmc stopped',
        reason: 'signal SIGTERM',
      });
    });
  },
);
