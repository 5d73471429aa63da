/**
 * Repository hygiene, part of `npm test` and so of `npm run check`:
 * - no file under src/, test/, bench/, docs/ or README.md names a path outside the repository on a
 *   build machine (a home or root folder, the build farm's folders, the shared folder beside the
 *   clone): nobody who clones the repository has them;
 * - every protocol section cited in src/, test/, bench/ and docs/ ("docs/protocol.md §X.Y",
 *   "spec §X.Y", or a bare "§X.Y" that does not follow another document's name such as
 *   "control-spec" or "RFC 1928") exists as a heading of docs/protocol.md.
 *
 * The patterns below are assembled so that this file does not match them itself.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Folders and files scanned; everything under the folders except build output. */
const SCANNED = ['src', 'test', 'bench', 'docs', 'README.md'];
const SKIPPED_DIRS = new Set(['node_modules', 'dist', 'dist-bench']);

/**
 * Paths that exist only on build machines. An absolute path must start at a boundary (not inside
 * a URL or a longer path), so `/run/tor/control`, `/var/lib/onionmc`, `/usr/bin/chromium`,
 * `/proc/...`, `/tmp/...`, `/opt/onionmc` and a URL whose path starts with home are not hits.
 */
const MACHINE_PATH = new RegExp(
  [
    // the build machines' work, farm and root folders
    String.raw`(?<![\w.:/~-])/(?:work|farm|root)/`,
    // /home/<user>, /Users/<user>
    String.raw`(?<![\w.:/~-])/(?:home|Users)/[A-Za-z0-9_.-]+`,
    // the shared folder beside the clone, one or more levels up
    String.raw`(?:\.\./)+shared\b`,
    // the shared folder's documents, named from any base
    String.raw`\bshared/(?:protocol|tor|LIBRARIES|STYLE)\b`,
  ].join('|'),
);

function listFiles(path: string): string[] {
  const full = join(ROOT, path);
  if (!statSync(full).isDirectory()) return [path];
  return readdirSync(full, { withFileTypes: true }).flatMap((entry) => {
    if (entry.isDirectory() && SKIPPED_DIRS.has(entry.name)) return [];
    return listFiles(join(path, entry.name));
  });
}

function scannedFiles(): string[] {
  return SCANNED.flatMap(listFiles).filter((f) => !f.endsWith('.png') && !f.endsWith('.gz'));
}

/** `file:line: text` for every line of `files` matching `pattern`. */
function linesMatching(files: readonly string[], pattern: RegExp): string[] {
  const hits: string[] = [];
  for (const file of files) {
    const lines = readFileSync(join(ROOT, file), 'utf8').split('\n');
    lines.forEach((line, i) => {
      if (pattern.test(line)) hits.push(`${file}:${String(i + 1)}: ${line.trim()}`);
    });
  }
  return hits;
}

/** Section numbers that are headings of docs/protocol.md: `## 4. ...` gives 4, `### 4.3 ...` 4.3. */
function protocolSections(): Set<string> {
  const text = readFileSync(join(ROOT, 'docs/protocol.md'), 'utf8');
  const sections = new Set<string>();
  for (const m of text.matchAll(/^#{2,3} (\d+(?:\.\d+)?)\.?\s/gm)) sections.add(m[1] ?? '');
  return sections;
}

/**
 * A run of section references: `§4.1`, `§4.1-§4.4`, `§2.5, §9.2`, and `§§3.1, 3.2` (only after
 * `§§` may a number of the list go without its own `§`).
 */
const SECTION_GROUP =
  /§§\d+(?:\.\d+)*(?:\s*(?:[-–,&]|and)\s*\d+(?:\.\d+)*)*|§\d+(?:\.\d+)*(?:\s*(?:[-–,/&]|and)\s*§\d+(?:\.\d+)*)*/g;
/** The group follows another document's name: its sections are that document's. */
const FOREIGN_DOCUMENT = /(?:\bRFC\s*\d+|[\w-]+-spec[\w-]*|\bproposal\s+\d+)[\s,]*$/i;

/** This file: its examples of citations are not citations. */
const THIS_FILE = 'test/repo/comments.test.ts';

/**
 * The protocol sections `text` cites that are not in `sections`, with their 0-based offsets.
 * Comment leaders (` * `, `// `) at the start of lines are blanked first, so a list of sections
 * may continue on the next comment line (`control-spec §3.27,` then ` * §3.28`).
 */
function uncitedSections(
  text: string,
  sections: ReadonlySet<string>,
): { ref: string; index: number }[] {
  const flat = text.replace(
    /(^|\n)([ \t]*)(\*|\/\/)/g,
    (_m, nl: string, ws: string, lead: string) => `${nl}${ws}${' '.repeat(lead.length)}`,
  );
  const out: { ref: string; index: number }[] = [];
  for (const group of flat.matchAll(SECTION_GROUP)) {
    if (FOREIGN_DOCUMENT.test(flat.slice(Math.max(0, group.index - 40), group.index))) continue;
    for (const ref of group[0].matchAll(/\d+(?:\.\d+)*/g)) {
      if (!sections.has(ref[0])) out.push({ ref: ref[0], index: group.index });
    }
  }
  return out;
}

/** `file:line: §X.Y` for every cited protocol section of `files` that docs/protocol.md lacks. */
function missingSections(files: readonly string[], sections: ReadonlySet<string>): string[] {
  const missing: string[] = [];
  for (const file of files) {
    if (file === THIS_FILE || !/\.(ts|md|js)$/.test(file)) continue;
    const text = readFileSync(join(ROOT, file), 'utf8');
    for (const { ref, index } of uncitedSections(text, sections)) {
      const line = text.slice(0, index).split('\n').length;
      missing.push(`${file}:${String(line)}: §${ref}`);
    }
  }
  return missing;
}

describe('repository hygiene', () => {
  it('names no path of a build machine (src, test, bench, docs, README.md)', () => {
    const files = scannedFiles();
    expect(files.length).toBeGreaterThan(50);
    expect(linesMatching(files, MACHINE_PATH)).toEqual([]);
  });

  it('the machine-path pattern hits build-machine paths and spares system paths', () => {
    const hits = [
      '/' + 'work/shared/x.md',
      'see /' + 'home/alice/notes',
      '/' + 'root/.cache',
      '/' + 'farm/run-3/out',
      'copied from ..' + '/shared/',
      'the ' + 'shared' + '/protocol/ folder',
    ];
    const spared = [
      '/run/tor/control',
      '/var/lib/onionmc',
      '/usr/bin/chromium',
      '/proc/self/status',
      '/tmp/onionmc-x',
      '/opt/onionmc/dist/cli/main.js',
      'unix:/run/onionmc/api.sock',
      ['https://example.org', 'home', 'page'].join('/'),
      'sharedSecret/protocolVersion',
    ];
    expect(hits.filter((t) => !MACHINE_PATH.test(t))).toEqual([]);
    expect(spared.filter((t) => MACHINE_PATH.test(t))).toEqual([]);
  });

  it('cites only sections that docs/protocol.md has', () => {
    const sections = protocolSections();
    for (const s of ['1', '1.1', '4.7', '9.6', '11.8', '12', '13']) expect(sections).toContain(s);
    const files = scannedFiles();
    expect(missingSections(files, sections)).toEqual([]);
  });

  it('the citation check reads ranges and lists, and skips other documents', () => {
    const sections = new Set(['2', '2.1', '2.2', '2.3']);
    const probe = (text: string): string[] => uncitedSections(text, sections).map((m) => m.ref);
    expect(probe('(spec §2.1-§2.3, §2)')).toEqual([]);
    expect(probe('docs/protocol.md §2.4')).toEqual(['2.4']);
    expect(probe('handshake (§2.1, §9.9)')).toEqual(['9.9']);
    expect(probe('spec §§2.1, 2.7')).toEqual(['2.7']);
    expect(probe('control-spec §3.24 AUTHCHALLENGE; RFC 1928 §4-§5; rend-spec-v3 §6')).toEqual([]);
    expect(probe('(control-spec §3.27; spec §8.1)')).toEqual(['8.1']);
    expect(probe('/**\n * control-spec §3.27,\n * §3.28), and spec §2.2\n */')).toEqual([]);
    expect(probe('// see\n// §7.1 there')).toEqual(['7.1']);
  });
});
