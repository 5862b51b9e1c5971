import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { parseDescribe, pretendVersionVariable, versionFromDescribe, versionWithoutTag } from "../../src/plan/scmVersion.js";
import { sdistFacts, sourceTreeFacts, wheelFacts } from "../../src/plan/pythonSource.js";
import { packageLabels, packagesFromLabels, requirementProvenance } from "../../src/plan/packageLabels.js";
import { describeSource, PythonPackageError, stageDevCloneVersion, stagePythonPackages } from "../../src/effects/pythonPackages.js";

const DAY = new Date("2026-11-26T12:00:00Z");

describe("setuptools-scm versions from git describe", () => {
  it("is the tag's version exactly on a clean tag, with or without v", () => {
    assert.equal(versionFromDescribe(parseDescribe("v0.7.0-0-g52a711b\n"), DAY), "0.7.0");
    assert.equal(versionFromDescribe(parseDescribe("0.2.1-0-g287142c"), DAY), "0.2.1");
  });

  it("guesses the next version, as a dev release with the commit, past a tag", () => {
    assert.equal(versionFromDescribe(parseDescribe("v0.7.0-3-gabc1234"), DAY), "0.7.1.dev3+gabc1234");
    assert.equal(versionFromDescribe(parseDescribe("v1.0rc1-2-gabc1234"), DAY), "1.0rc2.dev2+gabc1234");
  });

  it("adds the date for uncommitted changes, also on the tag itself", () => {
    assert.equal(versionFromDescribe(parseDescribe("v0.7.0-0-g52a711b-dirty"), DAY), "0.7.1.dev0+g52a711b.d20261126");
    assert.equal(versionFromDescribe(parseDescribe("v0.7.0-2-g52a711b-dirty"), DAY), "0.7.1.dev2+g52a711b.d20261126");
  });

  it("falls back to 0.1.devN without a version tag, and refuses tags that are not versions", () => {
    assert.equal(versionWithoutTag(12, "52a711b", false, DAY), "0.1.dev12+g52a711b");
    assert.throws(() => versionFromDescribe(parseDescribe("release-candidate-0-g52a711b"), DAY), /not a version tag/);
    assert.throws(() => parseDescribe("v0.7.0"), /unexpected 'git describe' output/);
  });

  it("names the per-distribution override as setuptools-scm reads it", () => {
    assert.equal(pretendVersionVariable("slurmspawner_wrappers"), "SETUPTOOLS_SCM_PRETEND_VERSION_FOR_SLURMSPAWNER_WRAPPERS");
    assert.equal(pretendVersionVariable("my-pkg.name"), "SETUPTOOLS_SCM_PRETEND_VERSION_FOR_MY_PKG_NAME");
  });
});

describe("where a package's version comes from", () => {
  const scmPyproject = `[build-system]\nrequires = ["setuptools", "setuptools-scm"]\n\n[project]\nname = "bricsauthenticator"\ndynamic = ["version"]\ndependencies = [\n  "jupyterhub >= 5.0",  # comment\n]\n\n[tool.setuptools_scm]\nversion_file = "src/x/_version.py"\n`;

  it("reads name and setuptools-scm from pyproject.toml", () => {
    assert.deepEqual(sourceTreeFacts({ pyproject: scmPyproject }), { name: "bricsauthenticator", version: { kind: "scm" } });
    assert.deepEqual(sourceTreeFacts({ pyproject: `[build-system]\nrequires = [\n  "setuptools",\n  "setuptools_scm>=8",\n]\n[project]\nname = 'x'\ndynamic = ["version"]\n` }), {
      name: "x",
      version: { kind: "scm" },
    });
  });

  it("takes a static version, PKG-INFO, or says it does not know (setup.py only)", () => {
    assert.deepEqual(sourceTreeFacts({ pyproject: `[project]\nname = "batchspawner"\nversion = "1.3.0+standin"\n` }), {
      name: "batchspawner",
      version: { kind: "static", version: "1.3.0+standin" },
    });
    assert.deepEqual(sourceTreeFacts({ pyproject: scmPyproject, pkgInfo: "Metadata-Version: 2.1\nName: bricsauthenticator\nVersion: 0.7.0\n" }), {
      name: "bricsauthenticator",
      version: { kind: "static", version: "0.7.0" },
    });
    assert.deepEqual(sourceTreeFacts({ pyproject: `[build-system]\nrequires = ["setuptools", "wheel"]\n`, setupPy: 'setup(version="1.3.0")' }), {
      name: undefined,
      version: { kind: "unknown" },
    });
  });

  it("reads wheel and sdist file names", () => {
    assert.deepEqual(wheelFacts("slurmspawner_wrappers-0.2.1-py3-none-any.whl"), { name: "slurmspawner_wrappers", version: { kind: "static", version: "0.2.1" } });
    assert.deepEqual(sdistFacts("batchspawner-1.3.0.tar.gz"), { name: "batchspawner", version: { kind: "static", version: "1.3.0" } });
    assert.deepEqual(sdistFacts("my-pkg-2.0rc1.zip"), { name: "my-pkg", version: { kind: "static", version: "2.0rc1" } });
    assert.equal(wheelFacts("notes.txt"), undefined);
  });
});

describe("image labels", () => {
  it("round-trip name, version and ref, and keep credentials out of a requirement", () => {
    const labels = packageLabels([
      { name: "slurmspawner_wrappers", version: "0.2.1", ref: "v0.2.1" },
      { name: "batchspawner", ref: "source tree" },
    ]);
    assert.deepEqual(labels, {
      "org.brics-env.package.slurmspawner-wrappers.version": "0.2.1",
      "org.brics-env.package.slurmspawner-wrappers.ref": "v0.2.1",
      "org.brics-env.package.batchspawner.ref": "source tree",
    });
    assert.deepEqual(packagesFromLabels({ ...labels, "io.other": "x" }), {
      "slurmspawner-wrappers": { version: "0.2.1", ref: "v0.2.1" },
      batchspawner: { ref: "source tree" },
    });
    assert.deepEqual(requirementProvenance("bricsauthenticator @ git+https://user:tok@example.org/b.git@v0.8.0"), {
      name: "bricsauthenticator",
      ref: "bricsauthenticator @ git+https://example.org/b.git@v0.8.0",
    });
  });
});

describe("staging packages for an image build", () => {
  const dir = mkdtempSync(join(tmpdir(), "brics-env-pkgs-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const git = (cwd: string, ...args: string[]) =>
    execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@localhost", ...args], { cwd, encoding: "utf8", stdio: "pipe" });

  function scmTree(path: string, name: string): string {
    mkdirSync(join(path, "src", name), { recursive: true });
    writeFileSync(join(path, "pyproject.toml"), `[build-system]\nrequires = ["setuptools", "setuptools-scm"]\n[project]\nname = "${name}"\ndynamic = ["version"]\n`);
    writeFileSync(join(path, "src", name, "__init__.py"), "from ._version import __version__\n");
    return path;
  }

  it("versions a clone from its tag, and a clone past the tag as setuptools-scm would", async () => {
    const repo = scmTree(join(dir, "wrappers"), "slurmspawner_wrappers");
    git(repo, "init", "-q", "-b", "main");
    git(repo, "add", "-A");
    git(repo, "commit", "-q", "-m", "one");
    git(repo, "tag", "v0.2.1");
    const exact = await describeSource(repo);
    assert.deepEqual([exact?.name, exact?.version, exact?.ref, exact?.entry], ["slurmspawner-wrappers", "0.2.1", "v0.2.1", "wrappers"]);
    writeFileSync(join(repo, "README.md"), "x\n");
    git(repo, "add", "-A");
    git(repo, "commit", "-q", "-m", "two");
    const past = await describeSource(repo);
    assert.match(past?.version ?? "", /^0\.2\.2\.dev1\+g[0-9a-f]{7,}$/);
  });

  it("refuses a setuptools-scm tree that is not a clone, naming the package and what to provide", async () => {
    const tree = scmTree(join(dir, "plain"), "bricsauthenticator");
    await assert.rejects(describeSource(tree, {}), (e: unknown) => {
      assert.ok(e instanceof PythonPackageError);
      assert.match(e.message, /bricsauthenticator takes its version from git tags/);
      assert.match(e.message, /git clone --branch vX\.Y\.Z/);
      assert.match(e.message, /SETUPTOOLS_SCM_PRETEND_VERSION_FOR_BRICSAUTHENTICATOR=X\.Y\.Z/);
      return true;
    });
    const given = await describeSource(tree, { SETUPTOOLS_SCM_PRETEND_VERSION_FOR_BRICSAUTHENTICATOR: "0.7.0" });
    assert.equal(given?.version, "0.7.0");
  });

  it("copies the packages without .git, writes the manifest, and changes nothing when it refuses", async () => {
    const source = join(dir, "packages");
    mkdirSync(source);
    const repo = scmTree(join(source, "slurmspawner_wrappers"), "slurmspawner_wrappers");
    git(repo, "init", "-q", "-b", "main");
    git(repo, "add", "-A");
    git(repo, "commit", "-q", "-m", "one");
    git(repo, "tag", "v0.2.1");
    mkdirSync(join(source, "batchspawner"));
    writeFileSync(join(source, "batchspawner", "pyproject.toml"), `[project]\nname = "batchspawner"\nversion = "1.3.0"\n`);
    writeFileSync(join(source, "README"), "not a package\n");
    const dest = join(dir, "staged");
    mkdirSync(join(dest, "oldpackage"), { recursive: true });
    const staged = await stagePythonPackages(source, dest);
    assert.ok(!existsSync(join(dest, "oldpackage")), "what an earlier staging left is gone");
    assert.deepEqual(staged.map((s) => [s.entry, s.name, s.version]), [
      ["batchspawner", "batchspawner", "1.3.0"],
      ["slurmspawner_wrappers", "slurmspawner-wrappers", "0.2.1"],
    ]);
    assert.equal(readFileSync(join(dest, ".brics-packages"), "utf8"), "batchspawner batchspawner 1.3.0\nslurmspawner_wrappers slurmspawner-wrappers 0.2.1\n");
    assert.ok(existsSync(join(dest, "slurmspawner_wrappers", "pyproject.toml")));
    assert.ok(!existsSync(join(dest, "slurmspawner_wrappers", ".git")));

    scmTree(join(source, "bricsauthenticator"), "bricsauthenticator");
    await assert.rejects(stagePythonPackages(source, dest), /bricsauthenticator takes its version from git tags/);
    assert.equal(readFileSync(join(dest, ".brics-packages"), "utf8"), "batchspawner batchspawner 1.3.0\nslurmspawner_wrappers slurmspawner-wrappers 0.2.1\n", "the staged directory is left as it was");
  });

  it("writes a dev clone's version beside it, never into it", async () => {
    const devData = join(dir, "_dev_build_data");
    const repo = scmTree(join(devData, "slurmspawner_wrappers"), "slurmspawner_wrappers");
    git(repo, "init", "-q", "-b", "main");
    git(repo, "add", "-A");
    git(repo, "commit", "-q", "-m", "one");
    git(repo, "tag", "v0.2.1");
    await stageDevCloneVersion(repo);
    assert.equal(readFileSync(join(devData, "brics-packages"), "utf8"), "slurmspawner_wrappers slurmspawner-wrappers 0.2.1\n");
    assert.equal(git(repo, "status", "--porcelain"), "");
  });
});
