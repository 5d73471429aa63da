/**
 * Framing benchmark: decode time of a maximum-size line arriving in 1-byte chunks (the case a
 * naive decoder makes quadratic), and of many small lines in large chunks. Prints its figures.
 *
 *   npm run build && node dist-bench/bench/framing.js   (or: npx tsx is not used; see package.json "bench")
 */
import { LineDecoder } from '../src/wire/framing.js';

function time(label: string, fn: () => number): void {
  const started = process.hrtime.bigint();
  const units = fn();
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  process.stdout.write(`${label}: ${ms.toFixed(1)} ms (${units} units)\n`);
}

time('one 65,536-byte line in 1-byte chunks', () => {
  const d = new LineDecoder();
  const one = Uint8Array.of(0x41);
  for (let i = 0; i < 65_536; i++) d.push(one);
  return d.push(Uint8Array.of(0x0d, 0x0a)).length;
});

time('100,000 lines of 300 bytes in 64 KiB chunks', () => {
  const line = Buffer.from(`${'x'.repeat(298)}\r\n`);
  const all = Buffer.concat(Array.from({ length: 100_000 }, () => line));
  const d = new LineDecoder();
  let count = 0;
  for (let i = 0; i < all.length; i += 65_536) count += d.push(all.subarray(i, i + 65_536)).length;
  return count;
});
