#!/usr/bin/env node
/**
 * The `onionmc` command. The only module that touches the process: arguments, signals, exit codes.
 *
 * Exit codes: 0 clean stop; 1 runtime failure; 2 configuration or usage error.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { loadConfig, parseApiEndpointValue, type OnionmcConfig } from '../config/config.js';
import { ConfigError, OnionmcError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { Daemon } from '../daemon/daemon.js';
import { runDirectoryInit } from './directory-init.js';

/** Parses `--api`: `unix:/path` or a loopback `host:port`, exactly as the config key `api`. */
export function parseApiEndpoint(value: string): NonNullable<OnionmcConfig['api']> {
  const parsed = parseApiEndpointValue(value);
  if (typeof parsed === 'string') throw new InvalidArgumentError(parsed);
  if (parsed.kind === 'unix' && !parsed.path.startsWith('/')) {
    throw new InvalidArgumentError('a unix socket path must be absolute: unix:/path');
  }
  return parsed;
}

function makeLogger(level: string, pretty: boolean | undefined): Logger {
  return createLogger({ level, pretty: pretty ?? process.stdout.isTTY });
}

async function runNode(options: {
  config: string;
  maker?: boolean;
  taker?: boolean;
  api?: NonNullable<OnionmcConfig['api']>;
  logLevel: string;
  pretty?: boolean;
}): Promise<number> {
  const config = await loadConfig(options.config);
  const logger = makeLogger(options.logLevel, options.pretty);
  for (const key of config.ignoredKeys)
    logger.warn(
      { file: config.file, section: config.section, key },
      'config key not used by onionmc',
    );
  const daemon = new Daemon({
    config,
    logger,
    clientRole: options.maker === true ? 'maker' : 'taker',
    ...(options.api !== undefined ? { api: options.api } : {}),
  });
  // Signals are handled from the start: a stop during a long start (tor uploading the onion
  // descriptor) is a clean stop, not an error.
  let stopRequested = false;
  // A call, not the variable: the signal handler sets it while start() awaits.
  const isStopRequested = (): boolean => stopRequested;
  const stopped = new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopRequested) {
        logger.warn({ signal }, 'second signal: stopping now');
        resolve(1);
        return;
      }
      stopRequested = true;
      logger.info({ signal }, 'stopping');
      daemon.stop().then(
        () => {
          resolve(0);
        },
        (err: unknown) => {
          logger.error({ err }, 'stop failed');
          resolve(1);
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  try {
    await daemon.start();
  } catch (err) {
    if (isStopRequested()) return await stopped;
    throw err;
  }
  const info = daemon.info();
  logger.info(
    {
      nick: daemon.identity.nick,
      role: daemon.role,
      location: info.location,
      api: daemon.api?.endpoint,
    },
    'onionmc running',
  );
  return await stopped;
}

/** Builds the commander program (exported for tests). */
export function buildProgram(setExitCode: (code: number) => void): Command {
  const program = new Command('onionmc')
    .description('JoinMarket onion message channel daemon: directory node, maker and taker')
    .showHelpAfterError()
    // Usage errors come back as a CommanderError, so main() can exit 2 as documented.
    .exitOverride();
  program
    .command('run')
    .description('run the node that the configuration file describes')
    .requiredOption(
      '-c, --config <file>',
      'joinmarket.cfg to read ([MESSAGING:onion] and [BLOCKCHAIN])',
    )
    .addOption(
      new Option('--maker', 'serve (a maker) when not a directory node').conflicts('taker'),
    )
    .addOption(
      new Option('--taker', 'do not serve (a taker; the default) when not a directory node'),
    )
    .option(
      '--api <endpoint>',
      'local API endpoint, unix:/path or host:port (overrides the config key api)',
      parseApiEndpoint,
    )
    .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
    .option('--pretty', 'human-readable logs (default on a terminal)')
    .action(
      async (options: {
        config: string;
        maker?: boolean;
        taker?: boolean;
        api?: NonNullable<OnionmcConfig['api']>;
        logLevel: string;
        pretty?: boolean;
      }) => {
        setExitCode(await runNode(options));
      },
    );
  const directory = program.command('directory').description('directory node administration');
  directory
    .command('init')
    .description(
      'create the persistent onion key in hidden_service_dir and print the directory_nodes line',
    )
    .requiredOption('-c, --config <file>', 'joinmarket.cfg to read')
    .action(async (options: { config: string }) => {
      setExitCode(
        await runDirectoryInit(options.config, (line) => process.stdout.write(`${line}\n`)),
      );
    });
  return program;
}

async function main(): Promise<void> {
  let exitCode = 0;
  const program = buildProgram((code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has printed the message (or the help) already.
      exitCode =
        err.code === 'commander.helpDisplayed' ||
        err.code === 'commander.version' ||
        err.exitCode === 0
          ? 0
          : 2;
    } else if (err instanceof ConfigError) {
      process.stderr.write(
        `onionmc: configuration error:\n${err.problems.map((p) => `  ${p}`).join('\n')}\n`,
      );
      exitCode = 2;
    } else if (err instanceof OnionmcError) {
      process.stderr.write(`onionmc: ${err.message}\n`);
      exitCode = 1;
    } else {
      process.stderr.write(
        `onionmc: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      exitCode = 1;
    }
  }
  process.exit(exitCode);
}

process.on('uncaughtException', (err) => {
  // A bug, not a peer's doing (peers' input is contained per connection): log and exit so that
  // systemd restarts a clean process instead of one in an unknown state.
  process.stderr.write(`onionmc: uncaught exception: ${err.stack ?? err.message}\n`);
  process.exit(1);
});

await main();
