/**
 * Log lines name each key once (a child logger's `component` or `nick` binding and a call's field
 * of the same name used to both be printed), and secrets stay redacted.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, dedupeKeys } from '../../src/log.js';

function collect(): { destination: Writable; lines: string[] } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l !== ''),
      );
      callback();
    },
  });
  return { destination, lines };
}

describe('log lines', () => {
  it('repeat no key: the innermost value wins', () => {
    const { destination, lines } = collect();
    const logger = createLogger({ destination });
    logger
      .child({ component: 'node', nick: 'J5outer' })
      .child({ component: 'peer' })
      .info({ nick: 'J5inner', password: 'hunter2' }, 'hello');
    expect(lines).toHaveLength(1);
    const line = lines[0] ?? '';
    expect(line.match(/"component":/g)).toHaveLength(1);
    expect(line.match(/"nick":/g)).toHaveLength(1);
    expect(JSON.parse(line)).toMatchObject({
      component: 'peer',
      nick: 'J5inner',
      password: '[redacted]',
    });
    expect(line).not.toContain('hunter2');
  });

  it('dedupeKeys leaves other text alone', () => {
    expect(dedupeKeys('not json\n')).toBe('not json\n');
    expect(dedupeKeys('{"a":1,"a":2}\n')).toBe('{"a":2}\n');
  });
});
