/**
 * `onionmc joinmarketd [--port 27183] [--host 127.0.0.1]`: serves JoinMarket's client-daemon AMP
 * link (jmdaemon's `scripts/joinmarketd.py`) so that a JoinMarket wallet with `no_daemon = 0`
 * runs its CoinJoins through onionmc (docs/joinmarketd.md).
 *
 * Exit codes as `onionmc run`: 0 clean stop; 1 runtime failure (port in use); 2 usage or
 * configuration error (bad port, a non-loopback host without `--allow-remote`, TLS files).
 */
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { ConfigError } from '../errors.js';
import { ALLOW_ROOT_ENV, refuseRoot } from './cli-error.js';
import { createLogger, type Logger } from '../log.js';
import type { CoreFactory } from '../joinmarketd/core.js';
import { nodeCoreFactory } from '../joinmarketd/node-core.js';
import {
  isLoopbackHost,
  JOINMARKETD_DEFAULT_HOST,
  JOINMARKETD_DEFAULT_PORT,
  startJoinmarketd,
} from '../joinmarketd/server.js';

/** Options of the subcommand, as commander parses them. */
interface JoinmarketdOptions {
  port: number;
  host: string;
  allowRemote?: boolean;
  tlsKey?: string;
  tlsCert?: string;
  logLevel: string;
  pretty?: boolean;
  allowRoot?: boolean;
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!/^[0-9]{1,5}$/.test(value) || n > 65_535)
    throw new InvalidArgumentError('not a port number');
  return n;
}

/**
 * Registers `joinmarketd` on the program.
 * @param setExitCode - receives the exit code when the server stops.
 * @param deps - the core factory (default {@link nodeCoreFactory}: onionmc's maker/taker node,
 *   configured from JMInit's `chan_configs`) and logger maker; tests pass their own.
 */
export function registerJoinmarketdCommand(
  program: Command,
  setExitCode: (code: number) => void,
  deps: { createCore?: CoreFactory; makeLogger?: (level: string, pretty?: boolean) => Logger } = {},
): Command {
  return program
    .command('joinmarketd')
    .description(
      "serve JoinMarket's client-daemon link (AMP, as jmdaemon's joinmarketd.py) to jmclient wallets",
    )
    .option(
      '--port <port>',
      'TCP port (joinmarket.cfg daemon_port)',
      parsePort,
      JOINMARKETD_DEFAULT_PORT,
    )
    .option(
      '--host <address>',
      'address to listen on (joinmarket.cfg daemon_host)',
      JOINMARKETD_DEFAULT_HOST,
    )
    .option('--allow-remote', 'allow a --host that is not loopback (the link is unauthenticated)')
    .option('--tls-key <file>', 'PEM private key: serve TLS (use_ssl = true in joinmarket.cfg)')
    .option('--tls-cert <file>', 'PEM certificate for --tls-key')
    .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
    .option('--pretty', 'human-readable logs (default on a terminal)')
    .option('--allow-root', `run as root anyway (containers, CI; also ${ALLOW_ROOT_ENV}=1)`)
    .addHelpText(
      'after',
      [
        '',
        "Each wallet's message channel is onionmc's own node, configured from the wallet's",
        '[MESSAGING:onion] section (JMInit chan_configs): Tor (socks5_port, tor_control_port),',
        'or testing mode on loopback when regtest_count is not 0,0. IRC sections are refused.',
        'In joinmarket.cfg [DAEMON]: no_daemon = 0, daemon_port = the --port here.',
        'Exit codes: 0 clean stop (SIGINT/SIGTERM), 1 runtime failure (port in use),',
        '2 usage or configuration error, or refused as root. See docs/joinmarketd.md.',
      ].join('\n'),
    )
    .action(async (options: JoinmarketdOptions) => {
      setExitCode(await runJoinmarketd(options, deps));
    });
}

async function runJoinmarketd(
  options: JoinmarketdOptions,
  deps: { createCore?: CoreFactory; makeLogger?: (level: string, pretty?: boolean) => Logger },
): Promise<number> {
  // It writes the wallet's commitment blacklist file, which must stay the wallet user's.
  refuseRoot(options.allowRoot);
  if (!isLoopbackHost(options.host) && options.allowRemote !== true)
    throw new ConfigError([
      `--host ${options.host} is not loopback: the AMP link has no authentication; ` +
        'add --allow-remote (and --tls-key/--tls-cert) to listen there',
    ]);
  if ((options.tlsKey === undefined) !== (options.tlsCert === undefined))
    throw new ConfigError(['--tls-key and --tls-cert go together']);
  let tls: { key: Buffer; cert: Buffer } | undefined;
  if (options.tlsKey !== undefined && options.tlsCert !== undefined) {
    try {
      tls = { key: await readFile(options.tlsKey), cert: await readFile(options.tlsCert) };
    } catch (err) {
      throw new ConfigError([
        `cannot read the TLS files: ${err instanceof Error ? err.message : String(err)}`,
      ]);
    }
  }
  const logger = (
    deps.makeLogger ??
    ((level, pretty) => createLogger({ level, pretty: pretty ?? process.stdout.isTTY }))
  )(options.logLevel, options.pretty);
  const server = await startJoinmarketd({
    host: options.host,
    port: options.port,
    allowNonLoopback: options.allowRemote === true,
    ...(tls !== undefined ? { tls } : {}),
    createCore: deps.createCore ?? nodeCoreFactory({ logger }),
    logger,
  });
  logger.info(
    { host: server.host, port: server.port, tls: tls !== undefined },
    'joinmarketd listening',
  );
  return await new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: stopping now');
        resolve(1);
        return;
      }
      stopping = true;
      logger.info({ signal }, 'stopping');
      server.close().then(
        () => {
          resolve(0);
        },
        () => {
          resolve(1);
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
