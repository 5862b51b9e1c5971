/**
 * The `brics-env` binary (src/launcher.ts, built to dist/src/cli.js) and its code cache, run as a
 * user runs it: whole processes, each with its own cache directory. What it did is read from its
 * BRICS_ENV_TRACE lines and the cache files; what the command printed must not depend on it.
 */
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { repoRoot } from "../../src/paths.js";

const cli = join(repoRoot(), "dist", "src", "cli.js");
const dir = mkdtempSync(join(tmpdir(), "brics-env-launcher-"));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The launcher's trace lines, without their times. */
  readonly cache: string[];
}

function run(cacheHome: string, args: readonly string[], trace = true): Run {
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: cacheHome };
  if (trace) env["BRICS_ENV_TRACE"] = "1";
  else delete env["BRICS_ENV_TRACE"];
  const r = spawnSync(process.execPath, [cli, ...args], { env, encoding: "utf8" });
  const cache = r.stderr
    .split("\n")
    .filter((l) => l.includes("] code cache: "))
    .map((l) => l.replace(/^.*\] code cache: /, "").replaceAll(cacheHome, "<cache>"));
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, cache };
}

const cacheOf = (home: string, name: string) => join(home, "brics-env", "code-cache", `${name}.bin`);

describe("the brics-env launcher", () => {
  before(() => {
    // tsc alone writes its own cli.js there; the launcher is bundled over it by npm run build.
    assert.match(readFileSync(cli, "utf8"), /src\/launcher\.ts/, `${cli} is not the launcher: run npm run build`);
  });

  it("writes a command's cache after its first run, uses it after, and prints the same either way", () => {
    const home = join(dir, "first");
    const first = run(home, ["list"]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.cache[0], "none in <cache>/brics-env/code-cache/list.bin");
    assert.match(first.cache[1] ?? "", /^wrote <cache>\/brics-env\/code-cache\/list\.bin \(\d+ bytes\)$/);
    assert.equal(statSync(cacheOf(home, "list")).mode & 0o777, 0o600);
    assert.equal(statSync(join(home, "brics-env", "code-cache")).mode & 0o777, 0o700);

    const second = run(home, ["list"]);
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(second.cache, ["using <cache>/brics-env/code-cache/list.bin"]);
    assert.equal(second.stdout, first.stdout);
    assert.match(second.stdout, /dev_dummyauth/);
  });

  it("keeps one cache per command, and one for a line that starts with an option", () => {
    const home = join(dir, "per-command");
    assert.equal(run(home, ["--help"]).code, 0);
    assert.equal(run(home, ["list", "--json"]).code, 0);
    assert.deepEqual(run(home, ["--version"]).cache, ["using <cache>/brics-env/code-cache/_.bin"]);
    assert.deepEqual(run(home, ["list"]).cache, ["using <cache>/brics-env/code-cache/list.bin"]);
  });

  it("writes nothing after a run that failed: a mistyped command leaves no file", () => {
    const home = join(dir, "failed");
    const typo = run(home, ["lsit"]);
    assert.equal(typo.code, 2);
    assert.deepEqual(typo.cache, ["none in <cache>/brics-env/code-cache/lsit.bin"]);
    // A deploy directory without its ConfigMap: validation errors, exit 1.
    const failed = run(home, ["check", "dev_dummyauth", mkdtempSync(join(dir, "empty-"))]);
    assert.equal(failed.code, 1, failed.stderr);
    assert.deepEqual(failed.cache, ["none in <cache>/brics-env/code-cache/check.bin"]);
    assert.throws(() => statSync(join(home, "brics-env", "code-cache", "lsit.bin")), { code: "ENOENT" });
    assert.throws(() => statSync(cacheOf(home, "check")), { code: "ENOENT" });
  });

  it("makes anew a cache that V8 refuses or that was made for another bundle", () => {
    const home = join(dir, "bad");
    const good = run(home, ["list"]);
    const file = cacheOf(home, "list");
    const data = readFileSync(file);
    const stampEnd = data.indexOf(0x0a) + 1;

    // The right stamp, but data V8 cannot use.
    writeFileSync(file, Buffer.concat([data.subarray(0, stampEnd), Buffer.alloc(4096, 0x5a)]));
    const refused = run(home, ["list"]);
    assert.equal(refused.code, 0, refused.stderr);
    assert.equal(refused.stdout, good.stdout);
    assert.equal(refused.cache[0], "<cache>/brics-env/code-cache/list.bin refused by V8");
    assert.match(refused.cache[1] ?? "", /^wrote /);
    assert.deepEqual(run(home, ["list"]).cache, ["using <cache>/brics-env/code-cache/list.bin"]);

    // Good data under the stamp of another bundle (another path, size, time or Node).
    const stamp = JSON.parse(data.subarray(0, stampEnd).toString("utf8")) as unknown[];
    stamp[0] = "/elsewhere/dist/src/brics-env.cjs";
    writeFileSync(file, Buffer.concat([Buffer.from(`${JSON.stringify(stamp)}\n`), readFileSync(file).subarray(stampEnd)]));
    const stale = run(home, ["list"]);
    assert.equal(stale.stdout, good.stdout);
    assert.equal(stale.cache[0], "none in <cache>/brics-env/code-cache/list.bin");
    assert.match(stale.cache[1] ?? "", /^wrote /);
  });

  it("takes ~/.cache when XDG_CACHE_HOME is relative, as the XDG spec says, not the working directory", () => {
    const home = mkdtempSync(join(dir, "home-"));
    const r = spawnSync(process.execPath, [cli, "list"], { cwd: home, env: { ...process.env, HOME: home, XDG_CACHE_HOME: "relative-cache" }, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(statSync(join(home, ".cache", "brics-env", "code-cache", "list.bin")).isFile());
    assert.throws(() => statSync(join(home, "relative-cache")), { code: "ENOENT" });
  });

  it("runs as well where no cache can be written, and says so only when tracing", () => {
    // A cache home under a regular file: unwritable even for root.
    const blocker = join(dir, "a-file");
    writeFileSync(blocker, "");
    const home = join(blocker, "cache");
    const traced = run(home, ["list"]);
    assert.equal(traced.code, 0, traced.stderr);
    assert.match(traced.cache[1] ?? "", /^could not write <cache>\/brics-env\/code-cache\/list\.bin: ENOTDIR/);
    const quiet = run(home, ["list"], false);
    assert.equal(quiet.code, 0);
    assert.equal(quiet.stderr, "");
    assert.equal(quiet.stdout, traced.stdout);
  });

  it("leaves no half-written file when the cache cannot be put in place", () => {
    const home = join(dir, "in-the-way");
    // A directory where the cache file goes: the temporary file is written, the rename fails.
    mkdirSync(join(cacheOf(home, "list"), "something"), { recursive: true });
    const r = run(home, ["list"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.cache[1] ?? "", /^could not write <cache>\/brics-env\/code-cache\/list\.bin: /);
    assert.deepEqual(readdirSync(join(home, "brics-env", "code-cache")), ["list.bin"]);
  });
});
