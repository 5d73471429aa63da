#!/usr/bin/env node
/**
 * The `onionmc` command. The only module that touches the process: arguments, signals, exit codes.
 *
 * Exit codes (src/cli/exit-codes.ts, docs/operating.md): 0 clean stop; 1 runtime failure; 2
 * configuration or usage error, or refused as root; 3 the local API cannot listen; 4 no daemon
 * answers a client command; 70 internal error. A failure prints one line on stderr (a list of
 * configuration problems prints one line each), never a stack trace.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ApiClient } from '../api/client.js';
import type { ApiEndpoint } from '../api/server.js';
import { ApiListenError } from '../api/unix-socket.js';
import { loadConfig, parseApiEndpointValue, type OnionmcConfig } from '../config/config.js';
import { Daemon } from '../daemon/daemon.js';
import { applyDaemonV8Flags } from '../daemon/heap-tuning.js';
import { VERSION } from '../daemon/version.js';
import { ConfigError, OnionmcError } from '../errors.js';
import { createLogger, LOG_LEVELS, type Logger } from '../log.js';
import {
  infoCommand,
  listenCommand,
  NoDaemonError,
  orderbookCommand,
  peersCommand,
  sendCommand,
  type Output,
} from './client-commands.js';
import { configCheck } from './config-check.js';
import { defaultApiSocket, ensureDatadir, resolveConfigFile, resolveDatadir } from './datadir.js';
import { runDirectoryInit } from './directory-init.js';
import { ALLOW_ROOT_ENV, CliError, refuseRoot } from './cli-error.js';
import { registerJoinmarketdCommand } from './joinmarketd.js';
import { EXIT } from './exit-codes.js';
import { parseListenFd, socketActivationFd } from './listen-fd.js';

/** Parses `--api`: `unix:/path` or a loopback `host:port`, exactly as the config key `api`. */
export function parseApiEndpoint(value: string): NonNullable<OnionmcConfig['api']> {
  const parsed = parseApiEndpointValue(value);
  if (typeof parsed === 'string') throw new InvalidArgumentError(parsed);
  if (parsed.kind === 'unix' && !parsed.path.startsWith('/')) {
    throw new InvalidArgumentError('a unix socket path must be absolute: unix:/path');
  }
  return parsed;
}

/** The logger in use, flushed before exit. */
let activeLogger: Logger | undefined;

function makeLogger(level: string, pretty: boolean | undefined): Logger {
  activeLogger = createLogger({ level, pretty: pretty ?? process.stdout.isTTY });
  return activeLogger;
}

const stdout: Output = {
  line(text) {
    process.stdout.write(`${text}\n`);
  },
};

interface LocationOptions {
  datadir?: string;
  config?: string;
}

interface RunOptions extends LocationOptions {
  maker?: boolean;
  taker?: boolean;
  api?: NonNullable<OnionmcConfig['api']>;
  listenFd?: number;
  logLevel: string;
  pretty?: boolean;
  allowRoot?: boolean;
}

async function runNode(options: RunOptions): Promise<number> {
  refuseRoot(options.allowRoot);
  applyDaemonV8Flags();
  const datadir = resolveDatadir(options.datadir);
  const config = await loadConfig(resolveConfigFile(datadir, options.config));
  const logger = makeLogger(options.logLevel, options.pretty);
  for (const key of config.ignoredKeys)
    logger.warn(
      { file: config.file, section: config.section, unusedKey: key },
      `config key not used by onionmc: ${key}`,
    );
  const listenFd = options.listenFd ?? socketActivationFd();
  let api: ApiEndpoint | undefined = options.api ?? config.api;
  if (api === undefined) {
    await ensureDatadir(datadir);
    api = { kind: 'unix', path: defaultApiSocket(datadir) };
  }
  const daemon = new Daemon({
    config,
    logger,
    clientRole: options.maker === true ? 'maker' : 'taker',
    api,
    ...(listenFd !== undefined ? { listenFd } : {}),
  });
  // Signals are handled from the start: a stop during a long start (tor bootstrapping, the
  // onion descriptor being uploaded) is a clean stop, not an error.
  let stopReason: string | undefined;
  const isStopRequested = (): boolean => stopReason !== undefined;
  const stopped = new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopReason !== undefined) {
        stopReason = `second signal ${signal}: stopped without waiting`;
        resolve(EXIT.FAILURE);
        return;
      }
      stopReason = `signal ${signal}`;
      logger.info({ signal }, 'stopping');
      daemon.stop().then(
        () => {
          resolve(EXIT.OK);
        },
        (err: unknown) => {
          stopReason = `${stopReason ?? ''}; stop failed: ${err instanceof Error ? err.message : String(err)}`;
          resolve(EXIT.FAILURE);
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  try {
    await daemon.start();
  } catch (err) {
    if (!isStopRequested()) {
      logger.error(
        { reason: err instanceof Error ? err.message : String(err), code: errorCode(err) },
        'onionmc stopped: start failed',
      );
      throw err;
    }
  }
  if (!isStopRequested()) {
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
  }
  const code = await stopped;
  logger.info({ reason: stopReason, exitCode: code }, 'onionmc stopped');
  return code;
}

function errorCode(err: unknown): string | undefined {
  return err instanceof OnionmcError ? err.code : undefined;
}

interface ClientOptions extends LocationOptions {
  socket?: string;
  json?: boolean;
}

/** The daemon's API endpoint for a client command: --socket, the config's `api`, or the datadir's. */
async function clientEndpoint(options: ClientOptions): Promise<ApiEndpoint> {
  if (options.socket !== undefined) return { kind: 'unix', path: options.socket };
  const datadir = resolveDatadir(options.datadir);
  try {
    const config = await loadConfig(resolveConfigFile(datadir, options.config));
    if (config.api !== undefined) return config.api;
  } catch (err) {
    // The config is optional here, unless it was named explicitly.
    if (options.config !== undefined) throw err;
  }
  return { kind: 'unix', path: defaultApiSocket(datadir) };
}

function addLocationOptions(command: Command): Command {
  return command
    .option(
      '-d, --datadir <dir>',
      'data directory (joinmarket.cfg, onionmc.sock); default ~/.joinmarket',
    )
    .option('-c, --config <file>', 'configuration file; default <datadir>/joinmarket.cfg');
}

function addClientOptions(command: Command): Command {
  return addLocationOptions(command)
    .option(
      '-s, --socket <path>',
      "the daemon's API socket; default the config's api or <datadir>/onionmc.sock",
    )
    .option('--json', 'print JSON instead of tables');
}

/** Builds the commander program (exported for tests). */
export function buildProgram(setExitCode: (code: number) => void): Command {
  const program = new Command('onionmc')
    .description('JoinMarket onion message channel daemon: directory node, maker and taker')
    .version(VERSION, '-V, --version', 'print the version')
    // One line per usage error (commander's "error: ..." text), pointing at --help.
    .configureOutput({
      outputError: (text, write) => {
        write(`onionmc: ${text.replace(/^error: /, '').trim()} (see --help)\n`);
      },
    })
    // Usage errors come back as a CommanderError, so main() can exit 2 as documented.
    .exitOverride();
  addLocationOptions(
    program.command('run').description('run the node that the configuration file describes'),
  )
    .addOption(
      new Option('--maker', 'serve (a maker) when not a directory node').conflicts('taker'),
    )
    .addOption(
      new Option('--taker', 'do not serve (a taker; the default) when not a directory node'),
    )
    .option(
      '--api <endpoint>',
      'local API endpoint, unix:/path or host:port (overrides the config key api; default unix:<datadir>/onionmc.sock)',
      parseApiEndpoint,
    )
    .option(
      '--listen-fd <fd>',
      'accept peers on this already-listening socket instead of binding onion_serving_host:port (default: the socket systemd passes, LISTEN_FDS=1)',
      parseListenFd,
    )
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info'))
    .option('--pretty', 'human-readable logs (default on a terminal)')
    .option('--allow-root', `run as root anyway (containers, CI; also ${ALLOW_ROOT_ENV}=1)`)
    .action(async (options: RunOptions) => {
      setExitCode(await runNode(options));
    });

  const directory = program.command('directory').description('directory node administration');
  addLocationOptions(
    directory
      .command('init')
      .description(
        'create the persistent onion key in hidden_service_dir and print the directory_nodes line',
      ),
  )
    .option('--allow-root', `run as root anyway (also ${ALLOW_ROOT_ENV}=1)`)
    .action(async (options: LocationOptions & { allowRoot?: boolean }) => {
      refuseRoot(options.allowRoot);
      const file = resolveConfigFile(resolveDatadir(options.datadir), options.config);
      setExitCode(
        await runDirectoryInit(file, (line) => {
          stdout.line(line);
        }),
      );
    });
  registerJoinmarketdCommand(program, setExitCode);

  const config = program.command('config').description('configuration');
  addLocationOptions(
    config
      .command('check')
      .description(
        'load the configuration, print the effective [MESSAGING:onion] values and the role; exit 2 on any problem',
      ),
  ).action(async (options: LocationOptions) => {
    const datadir = resolveDatadir(options.datadir);
    const loaded = await loadConfig(resolveConfigFile(datadir, options.config));
    const { problems } = await configCheck(loaded, defaultApiSocket(datadir), stdout);
    for (const problem of problems) process.stderr.write(`onionmc: ${problem}\n`);
    setExitCode(problems.length === 0 ? EXIT.OK : EXIT.USAGE);
  });

  addClientOptions(program.command('info').description("a running daemon's state")).action(
    async (options: ClientOptions) => {
      await infoCommand(
        new ApiClient(await clientEndpoint(options)),
        options.json === true,
        stdout,
      );
    },
  );
  addClientOptions(program.command('peers').description("a running daemon's peers")).action(
    async (options: ClientOptions) => {
      await peersCommand(
        new ApiClient(await clientEndpoint(options)),
        options.json === true,
        stdout,
      );
    },
  );
  addClientOptions(
    program.command('orderbook').description('the offers a running maker or taker has seen'),
  ).action(async (options: ClientOptions) => {
    await orderbookCommand(
      new ApiClient(await clientEndpoint(options)),
      options.json === true,
      stdout,
    );
  });
  addClientOptions(
    program
      .command('send')
      .description('send a privmsg (NICK CMD [BODY...]) or, with --pubmsg, a pubmsg')
      .argument('[nick]', 'recipient nick')
      .argument('[cmd]', 'command without "!", e.g. fill')
      .argument('[body...]', 'the body'),
  )
    .option('--pubmsg <message>', "a public message, e.g. '!orderbook'")
    .addOption(
      new Option('--route <route>', 'any (direct link if there is one) or directory')
        .choices(['any', 'directory'])
        .default('any'),
    )
    .option('--allow-root', `run as root anyway (also ${ALLOW_ROOT_ENV}=1)`)
    .action(
      async (
        nick: string | undefined,
        cmd: string | undefined,
        body: string[],
        options: ClientOptions & {
          pubmsg?: string;
          route: 'any' | 'directory';
          allowRoot?: boolean;
        },
      ) => {
        refuseRoot(options.allowRoot);
        let message;
        if (options.pubmsg !== undefined) {
          if (nick !== undefined)
            throw new CliError(EXIT.USAGE, 'send: give either --pubmsg or NICK CMD, not both');
          message = { pubmsg: options.pubmsg };
        } else {
          if (nick === undefined || cmd === undefined)
            throw new CliError(EXIT.USAGE, 'send: NICK and CMD are required (or --pubmsg MESSAGE)');
          message = { to: nick, cmd, body: body.join(' '), route: options.route };
        }
        await sendCommand(
          new ApiClient(await clientEndpoint(options)),
          message,
          options.json === true,
          stdout,
        );
      },
    );
  addClientOptions(
    program
      .command('listen')
      .description("stream a running daemon's events (one line each) until interrupted")
      .argument('[events...]', 'only these events (privmsg, pubmsg, relay, ...)'),
  ).action(async (names: string[], options: ClientOptions) => {
    const endpoint = await clientEndpoint(options);
    const controller = new AbortController();
    const stop = (): void => {
      controller.abort();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    await listenCommand(endpoint, names, options.json === true, stdout, controller.signal, () => {
      const where = endpoint.kind === 'unix' ? endpoint.path : `${endpoint.host}:${endpoint.port}`;
      process.stderr.write(`onionmc: listening to the events of ${where} (Ctrl-C stops)\n`);
    });
  });
  return program;
}

/** The exit code and the stderr line of an error that ended a command. */
export function describeFailure(err: unknown): { code: number; lines: string[] } {
  if (err instanceof CliError) return { code: err.exitCode, lines: [err.message] };
  if (err instanceof ConfigError) {
    return err.problems.length === 1
      ? { code: EXIT.USAGE, lines: [`configuration error: ${err.problems[0] ?? ''}`] }
      : { code: EXIT.USAGE, lines: ['configuration error:', ...err.problems.map((p) => `  ${p}`)] };
  }
  if (err instanceof ApiListenError) return { code: EXIT.API_UNAVAILABLE, lines: [err.message] };
  if (err instanceof NoDaemonError) return { code: EXIT.NO_DAEMON, lines: [err.message] };
  if (err instanceof OnionmcError) return { code: EXIT.FAILURE, lines: [err.message] };
  const message = err instanceof Error ? err.message : String(err);
  return {
    code: EXIT.INTERNAL,
    lines: [`internal error: ${message} (a bug: please report it with the log)`],
  };
}

async function exit(code: number): Promise<never> {
  const logger = activeLogger;
  if (logger !== undefined) {
    await new Promise<void>((resolve) => {
      logger.flush(() => {
        resolve();
      });
    });
  }
  process.exit(code);
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
      // commander has printed the message (or the help, or the version) already.
      exitCode =
        err.code === 'commander.helpDisplayed' ||
        err.code === 'commander.version' ||
        err.exitCode === 0
          ? EXIT.OK
          : EXIT.USAGE;
    } else {
      const failure = describeFailure(err);
      // One line (a list of configuration problems: one each); the stack only in a debug log.
      activeLogger?.debug({ err }, 'failure');
      for (const line of failure.lines)
        process.stderr.write(`${line.startsWith('  ') ? '' : 'onionmc: '}${line}\n`);
      exitCode = failure.code;
    }
  }
  await exit(exitCode);
}

process.on('uncaughtException', (err) => {
  // A bug, not a peer's doing (peers' input is contained per connection): log and exit so that
  // systemd restarts a clean process instead of one in an unknown state.
  activeLogger?.fatal({ err }, 'onionmc stopped: uncaught exception');
  process.stderr.write(
    `onionmc: internal error: ${err.message} (a bug: please report it with the log)\n`,
  );
  activeLogger?.flush();
  process.exit(EXIT.INTERNAL);
});

await main();
