import { describe, it, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { removeOthers, syncTree } from "../../src/effects/syncTree.js";

let dir: string;
let src: string;
let dest: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "brics-sync-"));
  src = join(dir, "src");
  dest = join(dir, "staged", "dest");
  mkdirSync(join(src, "pkg", "sub"), { recursive: true });
  writeFileSync(join(src, "pkg", "setup.py"), "print('setup')\n");
  writeFileSync(join(src, "pkg", "sub", "run.sh"), "#!/bin/sh\n");
  chmodSync(join(src, "pkg", "sub", "run.sh"), 0o755);
  symlinkSync("sub/run.sh", join(src, "pkg", "link"));
  mkdirSync(join(src, "pkg", "__pycache__"));
  writeFileSync(join(src, "pkg", "__pycache__", "x.pyc"), "bytes");
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

const skipCache = (p: string) => p.endsWith("__pycache__");

describe("syncTree", () => {
  it("copies files, directories, permissions and links as written, leaving out what is skipped", () => {
    syncTree(src, dest, skipCache);
    assert.equal(readFileSync(join(dest, "pkg", "setup.py"), "utf8"), "print('setup')\n");
    assert.equal(statSync(join(dest, "pkg", "sub", "run.sh")).mode & 0o777, 0o755);
    assert.equal(readlinkSync(join(dest, "pkg", "link")), "sub/run.sh", "a relative link stays relative");
    assert.ok(!existsSync(join(dest, "pkg", "__pycache__")));
    assert.ok(Math.abs(statSync(join(dest, "pkg", "setup.py")).mtimeMs - statSync(join(src, "pkg", "setup.py")).mtimeMs) < 1, "a copy keeps its source's time");
  });

  it("writes nothing when staging an unchanged tree again", () => {
    syncTree(src, dest, skipCache);
    const before = lstatSync(join(dest, "pkg", "setup.py"));
    const linkBefore = lstatSync(join(dest, "pkg", "link"));
    syncTree(src, dest, skipCache);
    const after = lstatSync(join(dest, "pkg", "setup.py"));
    assert.equal(after.ino, before.ino);
    assert.equal(after.ctimeMs, before.ctimeMs, "the file was neither rewritten nor changed");
    assert.equal(lstatSync(join(dest, "pkg", "link")).ino, linkBefore.ino);
  });

  it("follows every kind of change in the source", () => {
    syncTree(src, dest, skipCache);
    writeFileSync(join(src, "pkg", "setup.py"), "print('other')\n");
    utimesSync(join(src, "pkg", "setup.py"), new Date(2020, 0, 1), new Date(2020, 0, 1));
    rmSync(join(src, "pkg", "sub"), { recursive: true });
    writeFileSync(join(src, "pkg", "sub"), "now a file\n");
    rmSync(join(src, "pkg", "link"));
    symlinkSync("setup.py", join(src, "pkg", "link"));
    chmodSync(join(src, "pkg", "setup.py"), 0o600);
    writeFileSync(join(dest, "pkg", "stray"), "left over\n");
    mkdirSync(join(dest, "pkg", "__pycache__"));
    syncTree(src, dest, skipCache);
    assert.equal(readFileSync(join(dest, "pkg", "setup.py"), "utf8"), "print('other')\n");
    assert.equal(statSync(join(dest, "pkg", "setup.py")).mode & 0o777, 0o600);
    assert.equal(readFileSync(join(dest, "pkg", "sub"), "utf8"), "now a file\n");
    assert.equal(readlinkSync(join(dest, "pkg", "link")), "setup.py");
    assert.ok(!existsSync(join(dest, "pkg", "stray")));
    assert.ok(!existsSync(join(dest, "pkg", "__pycache__")), "a skipped name is removed from the copy");
  });

  it("copies a file whose size or time differs, even with the same time or size", () => {
    syncTree(src, dest, skipCache);
    const file = join(src, "pkg", "setup.py");
    const { mtime } = statSync(file);
    writeFileSync(file, "print('setup', 2)\n");
    utimesSync(file, mtime, mtime);
    syncTree(src, dest, skipCache);
    assert.equal(readFileSync(join(dest, "pkg", "setup.py"), "utf8"), "print('setup', 2)\n");
  });

  it("refuses what is not a file, directory or link, naming it", () => {
    execFileSync("mkfifo", [join(src, "pkg", "pipe")]);
    assert.throws(() => syncTree(src, dest, skipCache), /pkg\/pipe is not a file, directory or symbolic link/);
  });

  it("removeOthers keeps only the named entries", () => {
    removeOthers(join(src, "pkg"), new Set(["setup.py"]));
    assert.deepEqual(existsSync(join(src, "pkg", "sub")), false);
    assert.ok(existsSync(join(src, "pkg", "setup.py")));
  });
});
