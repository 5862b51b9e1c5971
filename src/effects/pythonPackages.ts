/**
 * The Python packages an image build installs from local sources — the BRICS_ENV_PYTHON_PACKAGES
 * directory and the dev clones — staged into the build context together with the version each
 * must get. Versions that setuptools-scm would take from git are computed here, on the host
 * (git is a prerequisite of brics-env), and handed to the build in a manifest (`brics-packages`:
 * "<entry> <distribution> <version or ->" lines): the build exports them as
 * SETUPTOOLS_SCM_PRETEND_VERSION_FOR_<NAME> for its pip only and checks the installed versions
 * against them. So a build needs neither git nor the clone's history.
 */
import { existsSync, mkdirSync } from "node:fs";
import { readFile, readdir, stat, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { runAllowFailure } from "./exec.js";
import { removeOthers, syncTree } from "./syncTree.js";
import {
  normaliseName,
  SAFE_VERSION,
  sdistFacts,
  sourceTreeFacts,
  wheelFacts,
  type PythonSourceFacts,
} from "../plan/pythonSource.js";
import { parseDescribe, pretendVersionVariable, ScmVersionError, versionFromDescribe, versionWithoutTag } from "../plan/scmVersion.js";

/** Where a package an image installs comes from, and the version it must have. */
export interface PackageSource {
  /** The file or directory name it has in the staged directory. */
  readonly entry: string;
  /** Normalised distribution name (PEP 503). */
  readonly name: string;
  /** The version the build must install; undefined when only pip can tell (setup.py-only trees). */
  readonly version: string | undefined;
  /** What it was built from: a git description (tag, or tag-N-g<hash>), a file name, or "source tree". */
  readonly ref: string;
  /** The path it was read from, for messages. */
  readonly path: string;
}

export class PythonPackageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PythonPackageError";
  }
}

/** The manifest's name: `.brics-packages` inside the packages directory, `brics-packages` beside a dev clone. */
export const MANIFEST_FILE = "brics-packages";

/** Entry names go into a space-separated manifest and a shell loop. */
const SAFE_ENTRY = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

async function readIfPresent(path: string): Promise<string | undefined> {
  return existsSync(path) ? readFile(path, "utf8") : undefined;
}

function git(dir: string, args: string[]) {
  // safe.directory: a clone owned by another user (a CI checkout, sudo) is still only read.
  return runAllowFailure("git", ["-c", `safe.directory=${dir}`, "-C", dir, ...args], { env: { GIT_TERMINAL_PROMPT: "0" } });
}

/** setuptools-scm's version of a git checkout, and a short description of the commit. */
export async function gitVersion(dir: string): Promise<{ version: string; describe: string }> {
  const described = await git(dir, ["describe", "--tags", "--long", "--dirty", "--match", "*[0-9]*"]);
  if (described.exitCode === 0) {
    const d = parseDescribe(described.stdout);
    const describe = d.distance === 0 ? `${d.tag}${d.dirty ? " (with uncommitted changes)" : ""}` : described.stdout.trim();
    return { version: versionFromDescribe(d), describe };
  }
  const head = await git(dir, ["rev-parse", "--short", "HEAD"]);
  if (head.exitCode !== 0) {
    throw new PythonPackageError(`${dir} is not a usable git clone: ${(head.stderr || described.stderr).trim()}`);
  }
  const shallow = await git(dir, ["rev-parse", "--is-shallow-repository"]);
  if (shallow.stdout.trim() === "true") {
    throw new PythonPackageError(
      `${dir} is a shallow clone with no version tag in reach, so its version cannot be told; ` +
        `fetch its history and tags (git -C ${dir} fetch --unshallow --tags) or clone it at a tag`,
    );
  }
  const count = await git(dir, ["rev-list", "--count", "HEAD"]);
  const status = await git(dir, ["status", "--porcelain", "--untracked-files=no"]);
  const node = head.stdout.trim();
  return { version: versionWithoutTag(Number(count.stdout.trim()), node, status.stdout.trim() !== ""), describe: `${node} (no version tag)` };
}

function checkedVersion(version: string, where: string): string {
  if (!SAFE_VERSION.test(version)) throw new PythonPackageError(`${where}: version ${JSON.stringify(version)} is not a version`);
  return version;
}

/** The version and origin of one installable entry (a source tree, wheel or sdist), or undefined for anything else. */
export async function describeSource(path: string, env: Readonly<Record<string, string | undefined>> = process.env): Promise<PackageSource | undefined> {
  const entry = basename(path);
  const st = await stat(path);
  const known = (facts: { name: string; version: string | undefined; ref: string }): PackageSource => {
    if (!SAFE_ENTRY.test(entry)) {
      throw new PythonPackageError(`${path}: rename it: a package's file or directory name may hold only letters, digits and . _ + -`);
    }
    return { entry, path, ...facts };
  };
  let facts: PythonSourceFacts | undefined;
  let tree = false;
  if (st.isFile()) {
    facts = entry.endsWith(".whl") ? wheelFacts(entry) : sdistFacts(entry);
    if (facts === undefined) return undefined;
  } else if (st.isDirectory() && (existsSync(join(path, "pyproject.toml")) || existsSync(join(path, "setup.py")))) {
    tree = true;
    facts = sourceTreeFacts({
      pyproject: await readIfPresent(join(path, "pyproject.toml")),
      pkgInfo: await readIfPresent(join(path, "PKG-INFO")),
      setupPy: await readIfPresent(join(path, "setup.py")),
      setupCfg: await readIfPresent(join(path, "setup.cfg")),
    });
  } else {
    return undefined;
  }
  const declared = facts.name ?? entry;
  const name = normaliseName(declared);
  const source = tree ? (existsSync(join(path, "PKG-INFO")) ? "unpacked sdist" : "source tree") : entry;
  if (facts.version.kind === "static") return known({ name, version: checkedVersion(facts.version.version, path), ref: source });
  if (facts.version.kind === "unknown") return known({ name, version: undefined, ref: source });

  // setuptools-scm: a version given for it wins, as it does in setuptools-scm itself.
  const given = env[pretendVersionVariable(declared)];
  if (given !== undefined && given !== "") {
    return known({ name, version: checkedVersion(given, pretendVersionVariable(declared)), ref: `${pretendVersionVariable(declared)}=${given}` });
  }
  if (!existsSync(join(path, ".git"))) {
    throw new PythonPackageError(
      `${path}: ${declared} takes its version from git tags (setuptools-scm), but this tree is neither a git clone ` +
        `nor an unpacked sdist (no PKG-INFO), so its version cannot be known. Provide a git clone checked out at a tag ` +
        `(git clone --branch vX.Y.Z …), an sdist or a wheel of it, or set ${pretendVersionVariable(declared)}=X.Y.Z`,
    );
  }
  try {
    const { version, describe } = await gitVersion(path);
    return known({ name, version, ref: describe });
  } catch (err) {
    if (err instanceof ScmVersionError) throw new PythonPackageError(`${path}: ${err.message}`);
    throw err;
  }
}

/** The manifest a build reads: one "<entry> <distribution> <version or ->" line per package. */
export function manifestText(sources: readonly PackageSource[]): string {
  return sources.map((s) => `${s.entry} ${s.name} ${s.version ?? "-"}\n`).join("");
}

/** The entries of a packages directory and the packages among them, with their versions. */
export interface DescribedPackages {
  readonly entries: readonly string[];
  readonly sources: readonly PackageSource[];
}

/**
 * What stagePythonPackages copies and the versions it writes, found once for every build
 * context the directory is staged into (a clone's version costs git processes).
 */
export async function describePythonPackages(source: string | undefined): Promise<DescribedPackages> {
  const entries = source === undefined ? [] : (await readdir(source)).filter((e) => !e.startsWith(".")).sort();
  const described = await Promise.allSettled(entries.map((entry) => describeSource(join(source!, entry))));
  // The first entry that cannot be described is the one reported, whichever failed first.
  const failed = described.find((d): d is PromiseRejectedResult => d.status === "rejected");
  if (failed !== undefined) throw failed.reason;
  const sources = described.flatMap((d) => (d.status === "fulfilled" && d.value !== undefined ? [d.value] : []));
  return { entries, sources };
}

/**
 * Mirrors `source` (BRICS_ENV_PYTHON_PACKAGES) into `dest` (the context's
 * `_build_data/python_packages`), leaving out each clone's `.git`, and writes the versions the
 * build must install. `dest` always exists afterwards (empty when there is no source), so the
 * Containerfile can always COPY it. Refuses, before copying anything, a package whose version
 * cannot be known. `described`: describePythonPackages(source), when the caller has it.
 */
export async function stagePythonPackages(source: string | undefined, dest: string, described?: DescribedPackages): Promise<PackageSource[]> {
  const { entries, sources } = described ?? (await describePythonPackages(source));
  mkdirSync(dest, { recursive: true });
  removeOthers(dest, new Set([...entries, `.${MANIFEST_FILE}`]));
  for (const entry of entries) {
    const from = join(source!, entry);
    syncTree(from, join(dest, entry), (p) => p === join(from, ".git"));
  }
  await writeFile(join(dest, `.${MANIFEST_FILE}`), manifestText(sources));
  return [...sources];
}

/**
 * The version a dev clone builds as, written next to it (`<dir>/../brics-packages`) for the dev
 * stage. The clone itself is never written to.
 */
export async function stageDevCloneVersion(cloneDir: string): Promise<PackageSource> {
  const described = await describeSource(cloneDir);
  if (described === undefined) {
    throw new PythonPackageError(`${cloneDir} is not a Python source tree (no pyproject.toml or setup.py)`);
  }
  await writeFile(join(cloneDir, "..", MANIFEST_FILE), manifestText([described]));
  return described;
}
