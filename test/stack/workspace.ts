/**
 * The stack test's private copy of the package, so that the dev clones (`_dev_build_data`),
 * build data and deploy directory it makes never touch a developer's checkout, and the git
 * repositories the dev stage clones, made from test fixtures (or from the real packages).
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { execFileSync } from "node:child_process";
import { repoRoot } from "../../src/paths.js";
import { JUPYTER_USER_ENV_VARIABLE } from "../../src/plan/images.js";

/** What `brics-env` needs at run time, relative to the package root. */
const PACKAGE_ENTRIES = ["package.json", "dist", "brics_jupyterhub", "brics_slurm", "build_helpers", "volumes", "examples", "bases"];
/** Generated or per-developer state that must not leak into the copy. */
const SKIPPED = new Set(["_dev_build_data", "_build_data", "deploy", "test", ".git"]);

/**
 * Names the real packages go by, the brics-env variables that point the dev clone at a repository
 * and a ref, and the tag the stand-in is (the newest public tag of the real package: the pinned
 * bricsauthenticator v0.8.0 is not public, so the stack tests build another ref, as a site whose
 * mirror lacks the pin does).
 */
export const DEV_REPOS = [
  { name: "bricsauthenticator", envVar: "BRICS_ENV_BRICSAUTHENTICATOR_GIT_URL", refVar: "BRICS_ENV_BRICSAUTHENTICATOR_REF", standInTag: "v0.7.0" },
  { name: "slurmspawner_wrappers", envVar: "BRICS_ENV_SLURMSPAWNER_WRAPPERS_GIT_URL", refVar: "BRICS_ENV_SLURMSPAWNER_WRAPPERS_REF", standInTag: "v0.2.1" },
] as const;

/**
 * Directory of Python source trees or wheels that replaces the stand-ins (acceptance runs the
 * scenario with the real packages at their pinned tags this way).
 */
export const REAL_PACKAGES_VAR = "BRICS_ENV_TEST_PYTHON_PACKAGES";

export interface Workspace {
  readonly dir: string;
  /** The copied package root. */
  readonly pkg: string;
  readonly cli: string;
  readonly deployDir: string;
  /** Where the Python packages for the images come from (BRICS_ENV_PYTHON_PACKAGES). */
  readonly pythonPackages: string;
  /** Whether those are the test stand-ins. */
  readonly standIns: boolean;
  /** Environment for every brics-env run: the seams set, nothing else changed. */
  readonly env: NodeJS.ProcessEnv;
  remove(): void;
}

function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", ["-c", "user.name=stack test", "-c", "user.email=stack-test@localhost", ...args], {
    cwd,
    encoding: "utf8",
    stdio: "pipe",
  }).trim();
}

/**
 * A git repository holding `tree`, committed and tagged `tag`, as the real package's repository
 * is at its release: setuptools-scm gives it the tag's version, and `git clone --branch <tag>`
 * gives the tree back.
 */
function gitRepoFrom(tree: string, dest: string, tag: string): string {
  cpSync(tree, dest, {
    recursive: true,
    filter: (src) => !["__pycache__", ".git", "build", "_version.py"].includes(basename(src)) && !src.endsWith(".egg-info"),
  });
  git(dest, "init", "-q", "-b", "main");
  git(dest, "add", "-A");
  git(dest, "commit", "-q", "-m", "stack test fixture");
  git(dest, "tag", tag);
  return dest;
}

/** The ref a clone is at: its tag when HEAD is exactly on one, else the commit. */
function refOf(clone: string): string {
  try {
    return git(clone, "describe", "--tags", "--exact-match", "HEAD");
  } catch {
    return git(clone, "rev-parse", "HEAD");
  }
}

/** The source tree named `name` in `dir`, matching the project's name or its dash/underscore spelling. */
function findTree(dir: string, name: string): string | undefined {
  const wanted = name.replaceAll("_", "-").toLowerCase();
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (!statSync(path).isDirectory()) continue;
    const norm = entry.replaceAll("_", "-").toLowerCase();
    if (norm === wanted || norm.startsWith(`${wanted}-`)) return path;
  }
  return undefined;
}

/**
 * A directory holding only what pip can install from `source` (source trees with a pyproject.toml
 * or setup.py, wheels, sdists): the fixtures directory also holds the stand-ins' own tests. A
 * tree that is one of `repos` (a stand-in made into a tagged repository) goes in as a clone of
 * it, as a site would hand over the real package: its version comes from the tag.
 */
function installables(source: string, dest: string, repos: ReadonlyMap<string, string>): string {
  mkdirSync(dest);
  for (const entry of readdirSync(source)) {
    const path = join(source, entry);
    const isTree = statSync(path).isDirectory() && ["pyproject.toml", "setup.py"].some((f) => existsSync(join(path, f)));
    const repo = repos.get(path);
    if (repo !== undefined) {
      git(dest, "clone", "-q", repo, entry);
    } else if (isTree || /\.(whl|tar\.gz|zip)$/.test(entry)) {
      cpSync(path, join(dest, entry), { recursive: true, filter: (p) => basename(p) !== "__pycache__" });
    }
  }
  return dest;
}

export async function makeWorkspace(): Promise<Workspace> {
  const dir = mkdtempSync(join(tmpdir(), "brics-env-stack-"));
  try {
    return await fillWorkspace(dir);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

async function fillWorkspace(dir: string): Promise<Workspace> {
  const root = repoRoot();
  const pkg = join(dir, "pkg");
  mkdirSync(pkg);
  for (const entry of PACKAGE_ENTRIES) {
    const src = join(root, entry);
    if (!existsSync(src)) continue;
    cpSync(src, join(pkg, entry), {
      recursive: true,
      filter: (p) => !SKIPPED.has(basename(p)) || p === src,
    });
  }
  symlinkSync(join(root, "node_modules"), join(pkg, "node_modules"));

  // A debugging aid: try a change to product files (as a shell script editing the copy) without
  // touching the checkout, e.g. while the fix is being made elsewhere.
  const prepare = process.env["BRICS_ENV_TEST_PREPARE"];
  if (prepare !== undefined && prepare !== "") execFileSync(prepare, [pkg], { stdio: "inherit" });

  const real = process.env[REAL_PACKAGES_VAR];
  const pythonPackages = real !== undefined && real !== "" ? real : join(root, "test", "fixtures", "python_packages");
  if (!existsSync(pythonPackages)) throw new Error(`Python packages directory ${pythonPackages} does not exist`);

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // conda-forge is out of reach: the product's offline user environment, JupyterLab from Debian.
    [JUPYTER_USER_ENV_VARIABLE]: "debian",
  };
  const repos = join(dir, "repos");
  mkdirSync(repos);
  const madeRepos = new Map<string, string>();
  for (const repo of DEV_REPOS) {
    const tree = findTree(pythonPackages, repo.name);
    if (tree === undefined) {
      throw new Error(
        `${pythonPackages} has no source tree for ${repo.name}: the dev stage reinstalls it from a clone, so a tree is needed`,
      );
    }
    const clone = existsSync(join(tree, ".git")) ? tree : gitRepoFrom(tree, join(repos, repo.name), repo.standInTag);
    if (clone !== tree) madeRepos.set(tree, clone);
    env[repo.envVar] = clone;
    // The dev clone is built at the ref the source is at (its tag), through the product's variable.
    env[repo.refVar] = refOf(clone);
  }
  env["BRICS_ENV_PYTHON_PACKAGES"] = installables(pythonPackages, join(dir, "python_packages"), madeRepos);

  return {
    dir,
    pkg,
    cli: join(pkg, "dist", "src", "cli.js"),
    deployDir: join(dir, "deploy"),
    pythonPackages,
    standIns: real === undefined || real === "",
    env,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
