#!/usr/bin/env node
/**
 * What `dist/src/cli.js` is after `npm run build` (scripts/bundle.ts): it runs the CLI's bundle,
 * `dist/src/brics-env.cjs`, through V8's code cache. Compiling the bundle's code (the YAML parser
 * most of it) costs a start 20–35 ms on the 2-core machine; a cache left by an earlier run of the
 * same command skips most of that (docs/performance.md).
 *
 * The cache is only ever a shortcut: one that is missing, made for another bundle or Node, or
 * refused by V8 costs one slower start and is made again. It is written after a run that exited
 * 0, so a mistyped command or a failing run leaves nothing. One file per command, in
 * `$XDG_CACHE_HOME/brics-env/code-cache/` (default `~/.cache`); deleting it is always safe.
 *
 * Node 20 has no code cache for ES modules, so the bundle is CommonJS and compiled here with
 * `vm.Script`, as Node's own CommonJS loader would, plus the cache.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Script } from "node:vm";
import { userCacheDir } from "./paths.js";

const BUNDLE = join(dirname(fileURLToPath(import.meta.url)), "brics-env.cjs");
const TRACE = process.env["BRICS_ENV_TRACE"] === "1";

function trace(what: string): void {
  if (TRACE) process.stderr.write(`[trace ${performance.now().toFixed(0).padStart(6)} ms] code cache: ${what}\n`);
}

/**
 * The cache file for this command line: one per command word, one for a line that starts with an
 * option (`--help`, `--version`) or is empty. A mistyped command gets a name too, but exits 2.
 */
function cacheFile(): string {
  const first = process.argv[2] ?? "";
  const name = /^[a-z][a-z-]{0,39}$/.test(first) ? first : "_";
  return join(userCacheDir(), "code-cache", `${name}.bin`);
}

/**
 * What a cache is valid for, written as its first line: the bundle (path, size, time, inode), and
 * the Node that compiled it. V8 itself refuses data from another V8 or other flags, but it checks
 * only the source's length, not its text.
 */
function stampOf(bundle: string): string {
  const st = statSync(bundle);
  return `${JSON.stringify([bundle, st.size, st.mtimeMs, st.ino, process.version, process.arch])}\n`;
}

/** The cached data after the stamp, if the file is there and carries this stamp. */
function readCache(file: string, stamp: string): Buffer | undefined {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch {
    return undefined;
  }
  const head = Buffer.from(stamp);
  return data.length > head.length && data.subarray(0, head.length).equals(head) ? data.subarray(head.length) : undefined;
}

function writeCache(file: string, stamp: string, data: Buffer): void {
  // Runs of one command at once each write whole files; the last rename wins.
  const temporary = `${file}.${process.pid}`;
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(temporary, Buffer.concat([Buffer.from(stamp), data]), { mode: 0o600 });
    renameSync(temporary, file);
    trace(`wrote ${file} (${data.length} bytes)`);
  } catch (err) {
    // A read-only home or a full disk only costs the next run its compile.
    try {
      rmSync(temporary, { force: true });
    } catch {
      // Nothing was written where nothing can be.
    }
    trace(`could not write ${file}: ${(err as Error).message}`);
  }
}

const source = readFileSync(BUNDLE, "utf8");
const file = cacheFile();
const stamp = stampOf(BUNDLE);
const cached = readCache(file, stamp);
// The same wrapper Node's CommonJS loader puts around a module; the bundle starts with a #! line.
const script = new Script(`(function (exports, require, module, __filename, __dirname) { ${source.replace(/^#!.*/, "")}\n});`, {
  filename: BUNDLE,
  ...(cached !== undefined ? { cachedData: cached } : {}),
});
trace(cached === undefined ? `none in ${file}` : script.cachedDataRejected ? `${file} refused by V8` : `using ${file}`);

if (cached === undefined || script.cachedDataRejected === true) {
  process.once("exit", (code) => {
    // Made after the run, the data holds the functions it compiled, not just the top level.
    if (code === 0) writeCache(file, stamp, script.createCachedData());
  });
}

const module = { exports: {} };
(script.runInThisContext() as (...args: unknown[]) => void).call(module.exports, module.exports, createRequire(BUNDLE), module, BUNDLE, dirname(BUNDLE));
