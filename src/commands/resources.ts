/**
 * `brics-env resources`: what must exist before the pod can be played — dev clones, the python
 * packages directory, images, and volumes filled from the repository's trees. Never destroys
 * anything: existing clones and volumes are kept and said so.
 */
import { existsSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Environment } from "../plan/environments.js";
import { BASE_IMAGE_VARIABLE, imageBuilds, zenithClientImage, ZENITH_CLIENT_IMAGE_VARIABLE, type ImageBuild } from "../plan/images.js";
import type { ImageName } from "../plan/names.js";
import { volumesOf } from "../plan/volumes.js";
import { normaliseName } from "../plan/pythonSource.js";
import { packageLabels, requirementProvenance, type PackageProvenance } from "../plan/packageLabels.js";
import { cloneIsAt, cloneUnlessPresent } from "../effects/git.js";
import { stageBuildHelpers } from "../effects/buildHelpers.js";
import { PythonPackageError, stageDevCloneVersion, stagePythonPackages, type PackageSource } from "../effects/pythonPackages.js";
import { buildImage, ensureImage, volumeCreate, volumeExists, volumeImport, volumeRm } from "../effects/podman.js";
import { volumeTarStream } from "../effects/volumeArchive.js";
import { repoRoot } from "../paths.js";
import { consoleOutput, displayPath, UsageError, variables, type Output } from "./common.js";

export const PYTHON_PACKAGES_VARIABLE = "BRICS_ENV_PYTHON_PACKAGES";

/** What an offline or air-gapped site can do instead of pulling the public base images. */
const OFFLINE_HELP: readonly string[] = [
  "or build Debian-based equivalents offline with `brics-env bootstrap-bases` and export the BRICS_ENV_*_BASE_IMAGE lines it prints",
  "the image builds also fetch Python packages and (dev stage) git repositories: set BRICS_ENV_PIP_INDEX_URL to a package " +
    "index mirror or BRICS_ENV_PYTHON_PACKAGES to a directory of packages, and BRICS_ENV_BRICSAUTHENTICATOR_GIT_URL / " +
    "BRICS_ENV_SLURMSPAWNER_WRAPPERS_GIT_URL to reachable clones (or put clones in <image>/_dev_build_data/ yourself), " +
    "with BRICS_ENV_BRICSAUTHENTICATOR_REF / BRICS_ENV_SLURMSPAWNER_WRAPPERS_REF naming a tag or commit your copies have",
];

export interface ResourcesOptions {
  /** Skip image builds and what only they need (dev clones, python packages): volumes only. */
  readonly build?: boolean;
}

export async function planImageBuilds(env: Environment): Promise<ImageBuild[]> {
  const root = repoRoot();
  const argfiles: Partial<Record<ImageName, string>> = {};
  for (const image of ["brics_jupyterhub", "brics_slurm"] as const) {
    const file = join(root, image, "argfile.conf");
    if (existsSync(file)) argfiles[image] = await readFile(file, "utf8");
  }
  return imageBuilds(env, { argfiles, variables: variables() });
}

/**
 * Stages BRICS_ENV_PYTHON_PACKAGES into the image's `_build_data/python_packages` with the
 * version each package must get (the directory always exists, empty when the variable is unset,
 * so the Containerfile can always COPY it).
 */
async function preparePythonPackages(contextDir: string, out: Output): Promise<PackageSource[]> {
  const dest = join(contextDir, "_build_data", "python_packages");
  const source = process.env[PYTHON_PACKAGES_VARIABLE];
  const given = source === undefined || source === "" ? undefined : source;
  if (given !== undefined) {
    const st = await stat(given).catch(() => undefined);
    if (st === undefined || !st.isDirectory()) throw new UsageError(`${PYTHON_PACKAGES_VARIABLE}=${given} is not a directory`);
  }
  const sources = await stagePythonPackages(given, dest).catch((err: unknown) => {
    if (err instanceof PythonPackageError) throw new PythonPackageError(`${PYTHON_PACKAGES_VARIABLE}: ${err.message}`);
    throw err;
  });
  if (given !== undefined) out.say(`copied python packages from ${given} into ${displayPath(dest)}`);
  return sources;
}

/** What an image is built from: the staged packages it installs (or its requirement), then its dev clone. */
function provenanceOf(build: ImageBuild, staged: readonly PackageSource[], dev: readonly PackageSource[]): PackageProvenance[] {
  const only = build.installsOnly?.map(normaliseName);
  const fromPackages = staged.filter((p) => only === undefined || only.includes(p.name));
  const requirement = build.requirement === undefined ? undefined : requirementProvenance(build.requirement);
  const base: PackageProvenance[] = staged.length > 0 ? fromPackages : requirement === undefined ? [] : [requirement];
  const devNames = new Set(dev.map((d) => d.name));
  return [...base.filter((p) => !devNames.has(normaliseName(p.name))), ...dev.map((d) => ({ name: d.name, version: d.version, ref: `${d.ref} (dev clone)` }))];
}

function describeProvenance(packages: readonly PackageProvenance[]): string {
  return packages.map((p) => `${p.name}${p.version === undefined ? "" : ` ${p.version}`} from ${p.ref}`).join("; ");
}

/** The "<tool>: FAILED: …" lines the build helpers print, which say what broke better than podman's last lines. */
const BUILD_FAILURE = /([\w.-]+: FAILED: .*)$/;

export async function resourcesCommand(env: Environment, opts: ResourcesOptions = {}, out: Output = consoleOutput): Promise<void> {
  const root = repoRoot();
  const builds = await planImageBuilds(env);
  const volumes = volumesOf(env, variables());

  const toBuild = opts.build === false ? [] : builds;
  // Images first: on a machine without registry access this is what fails, and it should fail
  // before anything else is done, with what to do about it.
  for (const build of toBuild) {
    const base = build.buildArgs["BASE_IMAGE"];
    if (base === undefined || base === "") continue;
    const how = await ensureImage(base, BASE_IMAGE_VARIABLE[build.image], { moreHelp: OFFLINE_HELP });
    if (how === "pulled") out.say(`pulled base image ${base}`);
  }
  if (env.ingress === "zenith" && opts.build !== false) {
    const ref = zenithClientImage(variables());
    const how = await ensureImage(ref, ZENITH_CLIENT_IMAGE_VARIABLE);
    out.say(how === "pulled" ? `pulled ${ref}` : `image ${ref} present`);
  }

  const provenance = new Map<ImageBuild, PackageProvenance[]>();
  for (const build of toBuild) {
    const contextDir = join(root, build.contextDir);
    const dev: PackageSource[] = [];
    for (const repo of build.devRepos) {
      const dir = join(root, repo.dest);
      const result = await cloneUnlessPresent({ url: repo.url, ref: repo.ref, dir, urlOverrideVar: repo.urlVariable, refOverrideVar: repo.refVariable });
      if (result.kind === "cloned") {
        out.say(`cloned ${repo.url} at ${repo.ref} into ${displayPath(dir)}`);
      } else if (await cloneIsAt(dir, repo.ref)) {
        out.say(`kept existing clone at ${displayPath(dir)} (local changes are built in)`);
      } else {
        out.say(
          `kept existing clone at ${displayPath(dir)}, which is not at ${repo.ref}: it is built as it is ` +
            `(check out ${repo.ref} in it, or remove it to clone afresh)`,
        );
      }
      const described = await stageDevCloneVersion(dir).catch((err: unknown) => {
        if (err instanceof PythonPackageError) throw new PythonPackageError(`dev clone of ${repo.name}: ${err.message}`);
        throw err;
      });
      dev.push(described);
    }
    const staged = await preparePythonPackages(contextDir, out);
    await stageBuildHelpers(root, contextDir);
    const packages = provenanceOf(build, staged, dev);
    provenance.set(build, packages);
    out.say(`${build.tag} will be built from: ${describeProvenance(packages) || "(no Python packages)"}`);
  }

  for (const build of toBuild) {
    const contextDir = join(root, build.contextDir);
    out.progress(`building ${build.tag} (${build.target}) from ${displayPath(join(root, build.containerfile))} ...`);
    const started = Date.now();
    const failures: string[] = [];
    try {
      await buildImage({
        containerfile: join(root, build.containerfile),
        context: contextDir,
        tag: build.tag,
        target: build.target,
        buildArgs: build.buildArgs,
        labels: packageLabels(provenance.get(build) ?? []),
        onLine: (line) => {
          const failure = BUILD_FAILURE.exec(line)?.[1];
          if (failure !== undefined) failures.push(failure);
          out.progress(`  [${build.image}] ${line}`);
        },
      });
    } catch (err) {
      if (failures.length === 0) throw err;
      throw new Error(`building ${build.tag} failed:\n${failures.map((f) => `    ${f}`).join("\n")}\n(the build output above has the details)`);
    }
    out.say(`built ${build.tag} in ${Math.round((Date.now() - started) / 1000)} s`);
  }

  for (const v of volumes) {
    if (await volumeExists(v.name)) {
      out.say(`kept existing volume ${v.name} (remove it with 'brics-env down ${env.name} --force' to start from the initial contents)`);
      continue;
    }
    const source = join(root, v.sourceDir);
    if (!existsSync(source)) throw new Error(`initial contents for volume ${v.name} not found at ${source}`);
    await volumeCreate(v.name, { "org.brics-env.environment": env.name });
    try {
      await volumeImport(v.name, volumeTarStream(source, { uid: v.owner.uid, gid: v.owner.gid, uname: v.owner.user, gname: v.owner.group }));
    } catch (err) {
      // A volume left empty would be "kept" by the next run; remove it so a retry fills it.
      await volumeRm(v.name, true).catch(() => undefined);
      throw err;
    }
    out.say(`created volume ${v.name} from ${v.sourceDir} (owner ${v.owner.user}:${v.owner.group}, ${v.owner.uid}:${v.owner.gid})`);
  }
}
