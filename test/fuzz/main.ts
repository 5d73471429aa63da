/**
 * `npm run fuzz`: runs every fuzz property of test/fuzz/props/ with its full run count (times
 * env FUZZ_SCALE, default 1), one after the other on one core, and prints the cases run per
 * property, the total and the time taken. Exits 1 when a property fails, after printing
 * fast-check's report (seed, path, counterexample) and running the others.
 *
 * Options: `--only <text>` runs the properties whose name contains the text; `--seed <n>` replays
 * a seed from a failure report.
 */
import { checkProperty, scaledRuns, type FuzzProperty } from './property.js';
import { ampProperties } from './props/amp.js';
import { apiProperties } from './props/api.js';
import { configProperties } from './props/config.js';
import { messageProperties } from './props/message.js';
import { nodeProperties } from './props/node.js';
import { torProperties } from './props/tor.js';
import { torReplyProperties } from './props/tor-replies.js';
import { wireProperties } from './props/wire.js';

const ALL: readonly FuzzProperty[] = [
  ...wireProperties,
  ...messageProperties,
  ...nodeProperties,
  ...torProperties,
  ...torReplyProperties,
  ...configProperties,
  ...apiProperties,
  ...ampProperties,
];

function option(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i === -1 ? undefined : process.argv[i + 1];
}

async function main(): Promise<number> {
  const scale = process.env.FUZZ_SCALE === undefined ? 1 : Number(process.env.FUZZ_SCALE);
  if (!(scale > 0)) throw new Error('FUZZ_SCALE must be a positive number');
  const only = option('--only');
  const seedText = option('--seed');
  const seed = seedText === undefined ? undefined : Number(seedText);
  const selected = ALL.filter((p) => only === undefined || p.name.includes(only));
  const started = performance.now();
  let total = 0;
  let failures = 0;
  console.log(`fuzz: ${selected.length} properties, scale ${scale}`);
  for (const p of selected) {
    const runs = scaledRuns(p, scale);
    const t0 = performance.now();
    try {
      const ran = await checkProperty(p, runs, seed);
      total += ran;
      const s = (performance.now() - t0) / 1000;
      console.log(`${String(ran).padStart(8)} cases ${s.toFixed(1).padStart(6)} s  ${p.name}`);
    } catch (err) {
      failures++;
      console.log(`  FAILED              ${p.name}`);
      console.error(err instanceof Error ? err.message : String(err));
    }
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(`fuzz total: ${total} cases in ${seconds.toFixed(1)} s, ${failures} failed`);
  return failures === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
