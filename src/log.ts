/**
 * Logging: one pino root logger, child loggers per component and per peer. Secrets are redacted
 * by path; message bodies are logged only at debug and only by the code that owns them.
 */
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/** Paths that must never reach a log line (keys, cookies, passwords). */
export const REDACT_PATHS: readonly string[] = [
  'privateKey',
  'key',
  'cookie',
  'password',
  'secret',
  'torControlPassword',
  '*.privateKey',
  '*.key',
  '*.cookie',
  '*.password',
  '*.secret',
  '*.torControlPassword',
];

/** Level names `--log-level` accepts. */
export const LOG_LEVELS: readonly string[] = [
  'trace',
  'debug',
  'info',
  'warn',
  'error',
  'fatal',
  'silent',
];

/**
 * Rewrites one JSON log line so that each key appears once, the last value winning (a child
 * logger's binding and a call's field of the same name, e.g. `nick` or `component`, would
 * otherwise both be printed). Lines that are not JSON pass unchanged.
 */
export function dedupeKeys(line: string): string {
  if (!line.startsWith('{')) return line;
  try {
    return `${JSON.stringify(JSON.parse(line))}\n`;
  } catch {
    return line;
  }
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** pino level name; default `info`. */
  level?: string;
  /** Pretty, human-readable output (for a TTY); default: JSON lines. */
  pretty?: boolean;
  /** Where JSON lines go; default: stdout (fd 1). */
  destination?: NodeJS.WritableStream;
}

/** Creates the root logger. JSON lines by default; `pretty` for a terminal. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const base = {
    level: options.level ?? 'info',
    redact: { paths: [...REDACT_PATHS], censor: '[redacted]' },
    hooks: { streamWrite: dedupeKeys },
  };
  if (options.pretty === true) {
    return pino({
      ...base,
      transport: {
        target: 'pino-pretty',
        options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' },
      },
    });
  }
  if (options.destination !== undefined) return pino(base, options.destination);
  return pino(base);
}

/** A logger that writes nothing: the default for library code and tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
