/**
 * `brics-env resources`: what must exist before the pod can be played — dev clones, the python
 * packages directory, images, and volumes filled from the repository's trees. Never destroys
 * anything: existing clones and volumes are kept and said so.
 */
import { existsSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Environment } from "../plan/environments.js";
import { BASE_IMAGE_VARIABLE, imageBuilds, imagesOf, OFFLINE_BUILD_ADVICE, zenithClientImage, ZENITH_CLIENT_IMAGE_VARIABLE, type ImageBuild } from "../plan/images.js";
import { imageRef, type ImageName } from "../plan/names.js";
import { podmanObjectsOf } from "../plan/podmanObjects.js";
import { volumesOf, type VolumePlan } from "../plan/volumes.js";
import { normaliseName } from "../plan/pythonSource.js";
import { packageLabels, requirementProvenance, type PackageProvenance } from "../plan/packageLabels.js";
import { cloneIsAt, cloneUnlessPresent } from "../effects/git.js";
import { stageBuildHelpers } from "../effects/buildHelpers.js";
import { BUILD_KEY_LABEL, buildKey } from "../effects/buildKey.js";
import {
  describePythonPackages,
  PythonPackageError,
  stageDevCloneVersion,
  stagePythonPackages,
  type DescribedPackages,
  type PackageSource,
} from "../effects/pythonPackages.js";
import { buildImage, ensureImage, imageId, imagesFacts, inspectObjects, removeReplacedImage, slurmVersionOfImage, type ImageFacts, type PodState, volumeCreate, volumeImport, volumeRm } from "../effects/podman.js";
import { SLURM_VERSION_LABEL } from "../plan/slurmCapabilities.js";
import { repoRoot } from "../paths.js";
import { consoleOutput, displayPath, heldOutput, UsageError, variables, type HeldOutput, type Output } from "./common.js";

export const PYTHON_PACKAGES_VARIABLE = "BRICS_ENV_PYTHON_PACKAGES";

/** The labels resources puts on the images it builds and reads back: build key, Slurm version. */
const IMAGE_LABELS = [BUILD_KEY_LABEL, SLURM_VERSION_LABEL] as const;

export interface ResourcesOptions {
  /** Skip image builds and what only they need (dev clones, python packages): volumes only. */
  readonly build?: boolean;
}

/** `vars`: the BRICS_ENV_* variables to apply; this process's environment unless given. */
export async function planImageBuilds(env: Environment, vars: Readonly<Record<string, string | undefined>> = variables()): Promise<ImageBuild[]> {
  const root = repoRoot();
  const argfiles: Partial<Record<ImageName, string>> = {};
  for (const image of ["brics_jupyterhub", "brics_slurm"] as const) {
    const file = join(root, image, "argfile.conf");
    if (existsSync(file)) argfiles[image] = await readFile(file, "utf8");
  }
  return imageBuilds(env, { argfiles, variables: vars });
}

/** The BRICS_ENV_PYTHON_PACKAGES directory (undefined when unset) and its packages with their versions. */
interface GivenPackages {
  readonly given: string | undefined;
  readonly described: DescribedPackages;
}

/** BRICS_ENV_PYTHON_PACKAGES, checked and described once for both build contexts. */
async function describeGivenPackages(): Promise<GivenPackages> {
  const source = process.env[PYTHON_PACKAGES_VARIABLE];
  const given = source === undefined || source === "" ? undefined : source;
  if (given !== undefined) {
    const st = await stat(given).catch(() => undefined);
    if (st === undefined || !st.isDirectory()) throw new UsageError(`${PYTHON_PACKAGES_VARIABLE}=${given} is not a directory`);
  }
  const described = await describePythonPackages(given).catch((err: unknown) => {
    if (err instanceof PythonPackageError) throw new PythonPackageError(`${PYTHON_PACKAGES_VARIABLE}: ${err.message}`);
    throw err;
  });
  return { given, described };
}

/**
 * Stages BRICS_ENV_PYTHON_PACKAGES into the image's `_build_data/python_packages` with the
 * version each package must get (the directory always exists, empty when the variable is unset,
 * so the Containerfile can always COPY it).
 */
async function preparePythonPackages(contextDir: string, givenPackages: Promise<GivenPackages>): Promise<{ staged: PackageSource[]; said?: string }> {
  const dest = join(contextDir, "_build_data", "python_packages");
  const { given, described } = await givenPackages;
  const staged = await stagePythonPackages(given, dest, described);
  return given === undefined ? { staged } : { staged, said: `copied python packages from ${given} into ${displayPath(dest)}` };
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

/**
 * What `resources` decides on, as podman holds it: base image ids, the build keys on the images,
 * which volumes and which Zenith client image exist; and the environment's pod, which `up`
 * decides on. Only reads, in one podman process where it can (effects/podman.ts inspectObjects),
 * so `up` can start it while it does other things.
 */
export interface ResourcesLookup {
  readonly baseIds: ReadonlyArray<string | undefined>;
  readonly labels: ReadonlyArray<string | undefined>;
  readonly volumesPresent: readonly boolean[];
  readonly zenithPresent: boolean | undefined;
  /**
   * The environment's volumes that exist (its data volumes and those podman makes for its
   * Secrets), with their mount points: kube play needs them on old podman.
   */
  readonly volumes: ReadonlyMap<string, string>;
  /**
   * The environment's own images as they were before any build: id, build key and Slurm version
   * label (what `up` decides the play on, so it asks no further podman process when nothing is built).
   */
  readonly images: ReadonlyMap<string, ImageFacts>;
  readonly pod: PodState | undefined;
}

async function lookupResources(env: Environment, opts: ResourcesOptions, toBuild: readonly ImageBuild[]): Promise<ResourcesLookup> {
  const zenith = zenithImageOf(env, opts);
  const bases = toBuild.map((b) => b.buildArgs["BASE_IMAGE"] || undefined);
  const own = imagesOf(env).map((image) => imageRef(image, env.stage));
  const refs = [...bases, ...own, zenith].filter((r): r is string => r !== undefined);
  const objects = podmanObjectsOf(env);
  const { pod, images, volumes } = await inspectObjects({ pod: objects.pod, images: refs, imageLabels: IMAGE_LABELS, volumes: objects.volumes });
  return {
    baseIds: bases.map((b) => (b === undefined ? undefined : images.get(b)?.id)),
    labels: toBuild.map((b) => images.get(b.tag)?.labels[BUILD_KEY_LABEL]),
    volumesPresent: volumesOf(env, variables()).map((v) => volumes.has(v.name)),
    zenithPresent: zenith === undefined ? undefined : images.has(zenith),
    volumes,
    images: new Map(own.flatMap((ref) => (images.has(ref) ? [[ref, images.get(ref)!] as const] : []))),
    pod,
  };
}

function zenithImageOf(env: Environment, opts: ResourcesOptions): string | undefined {
  return env.ingress === "zenith" && opts.build !== false ? zenithClientImage(variables()) : undefined;
}

/** Pulls the base images that are missing (one at a time: offline, the first failure is the answer); returns all ids. */
async function ensureBases(builds: readonly ImageBuild[], known: ReadonlyArray<string | undefined>, out: Output): Promise<Array<string | undefined>> {
  const bases = builds.map((b) => b.buildArgs["BASE_IMAGE"] || undefined);
  const ids = [...known];
  for (const [i, build] of builds.entries()) {
    const base = bases[i];
    if (base === undefined || ids[i] !== undefined) continue;
    const how = await ensureImage(base, BASE_IMAGE_VARIABLE[build.image], { moreHelp: OFFLINE_BUILD_ADVICE });
    if (how === "pulled") out.say(`pulled base image ${base}`);
    ids[i] = await imageId(base);
  }
  return ids;
}

/**
 * Builds what changed, concurrently: a build whose key (buildKey.ts: Containerfile, context as
 * staged, build args, target, base image) is already on the image is skipped.
 */
async function buildChanged(
  root: string,
  builds: readonly ImageBuild[],
  baseIds: ReadonlyArray<string | undefined>,
  labels: ReadonlyArray<string | undefined>,
  provenance: ReadonlyMap<ImageBuild, PackageProvenance[]>,
  out: Output,
): Promise<string[]> {
  const plans = await Promise.all(
    builds.map(async (build, i) => {
      const spec = {
        containerfile: join(root, build.containerfile),
        context: join(root, build.contextDir),
        tag: build.tag,
        target: build.target,
        buildArgs: build.buildArgs,
      };
      const baseImageId = baseIds[i];
      const key = await buildKey({ ...spec, ...(baseImageId !== undefined ? { baseImageId } : {}) });
      return { build, spec, key, current: labels[i] };
    }),
  );
  const results = await Promise.allSettled(
    plans.map(async ({ build, spec, key, current }) => {
      if (current === key) {
        out.say(`image ${build.tag} is up to date (build key ${key.slice(0, 12)})`);
        return undefined;
      }
      out.progress(`building ${build.tag} (${build.target}) from ${displayPath(spec.containerfile)} ...`);
      const started = Date.now();
      const failures: string[] = [];
      if (build.secrets.length > 0) {
        const index = build.buildArgs["PIP_INDEX_URL"] ?? "";
        out.say(`${build.tag}: pip logs in to the package index ${index} with the URL's user name and password, given as a build secret (not a build argument, never in the image)`);
      }
      try {
        await buildImage({
          ...spec,
          secrets: build.secrets,
          labels: { ...packageLabels(provenance.get(build) ?? []), ...(await slurmVersionLabel(build, out)), [BUILD_KEY_LABEL]: key },
          onLine: (line) => {
            const failure = BUILD_FAILURE.exec(line)?.[1];
            if (failure !== undefined) failures.push(failure);
            out.progress(`  [${build.image}] ${line}`);
          },
        });
      } catch (err) {
        if (failures.length === 0) throw err;
        throw new Error(`building ${build.tag} failed:\n${failures.map((x) => `    ${x}`).join("\n")}\n(the build output above has the details)`);
      }
      out.say(`built ${build.tag} in ${Math.round((Date.now() - started) / 1000)} s`);
      return build.tag;
    }),
  );
  // Both builds run to their end, so a failure of one never leaves the other half-done behind.
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed !== undefined) throw failed.reason;
  return results.flatMap((r) => (r.status === "fulfilled" && r.value !== undefined ? [r.value] : []));
}

/**
 * The images the builds took their names from are removed when nothing uses them: every rebuild
 * would leave one behind otherwise, taking disk and slowing podman's every image lookup as they
 * pile up (its inspect took twice as long with 200 of them).
 */
async function removeReplaced(built: readonly string[], before: ReadonlyMap<string, ImageFacts>, after: ReadonlyMap<string, ImageFacts>, out: Output): Promise<void> {
  await Promise.all(
    built.map(async (tag) => {
      const old = before.get(tag)?.id;
      if (old === undefined || old === after.get(tag)?.id) return;
      const what = `the image ${tag} replaced (${old.slice(0, 12)})`;
      const fate = await removeReplacedImage(old);
      if (fate === "removed") out.say(`removed ${what}: nothing used it`);
      else if (fate === "in use") out.say(`kept ${what}: a container uses it ('podman image prune' removes it once none does)`);
      else if (fate === "named") out.say(`kept ${what}: it has another name`);
    }),
  );
}

/**
 * The Slurm image records the Slurm version of its base (where Slurm comes from), so that `up`
 * grants CAP_SYS_ADMIN only where that Slurm needs it (plan/slurmCapabilities.ts).
 */
async function slurmVersionLabel(build: ImageBuild, out: Output): Promise<Record<string, string>> {
  const base = build.buildArgs["BASE_IMAGE"];
  if (build.image !== "brics_slurm" || base === undefined || base === "") return {};
  const version = await slurmVersionOfImage(base);
  if (version === undefined) {
    out.warn(`could not read the Slurm version of ${base} (slurmd -V); up will ask the built image instead`);
    return {};
  }
  out.say(`${base} has Slurm ${version}`);
  return { [SLURM_VERSION_LABEL]: version };
}

/** The environment's images once resources is done: ref -> facts (a missing image is absent). */
export type ImagesAfter = ReadonlyMap<string, ImageFacts>;

/**
 * Readies one image's build context: its dev clones (made when missing, kept otherwise), the
 * Python packages and the build helpers staged into it. What it will be built from, said and returned.
 */
async function prepareContext(root: string, build: ImageBuild, givenPackages: Promise<GivenPackages>, out: Output): Promise<PackageProvenance[]> {
  const contextDir = join(root, build.contextDir);
  // Staged while the dev clones are looked at (git processes); said after them.
  const staging = Promise.all([preparePythonPackages(contextDir, givenPackages), stageBuildHelpers(root, contextDir)]);
  staging.catch(() => undefined);
  const dev: PackageSource[] = [];
  for (const repo of build.devRepos) {
    const dir = join(root, repo.dest);
    const result = await cloneUnlessPresent({ url: repo.url, ref: repo.ref, dir, urlOverrideVar: repo.urlVariable, refOverrideVar: repo.refVariable });
    if (result.kind === "cloned") out.say(`cloned ${repo.url} at ${repo.ref} into ${displayPath(dir)}`);
    // Where a kept clone stands and the version it builds as: git processes, asked side by side.
    const [atRef, described] = await Promise.all([
      result.kind === "cloned" ? true : cloneIsAt(dir, repo.ref),
      stageDevCloneVersion(dir).catch((err: unknown) => {
        if (err instanceof PythonPackageError) throw new PythonPackageError(`dev clone of ${repo.name}: ${err.message}`);
        throw err;
      }),
    ]);
    if (result.kind !== "cloned") {
      out.say(
        atRef
          ? `kept existing clone at ${displayPath(dir)} (local changes are built in)`
          : `kept existing clone at ${displayPath(dir)}, which is not at ${repo.ref}: it is built as it is ` +
              `(check out ${repo.ref} in it, or remove it to clone afresh)`,
      );
    }
    dev.push(described);
  }
  const [{ staged, said }] = await staging;
  if (said !== undefined) out.say(said);
  const packages = provenanceOf(build, staged, dev);
  out.say(`${build.tag} will be built from: ${describeProvenance(packages) || "(no Python packages)"}`);
  return packages;
}

/**
 * The build contexts readied ahead of a command, while podman answers its lookup: only when no
 * dev clone must be fetched (a fetch waits until the base images are there, since on a machine
 * without registry access those are what fails, and should fail before anything is fetched).
 * What readying says is held until the command gets there, also when it fails.
 */
export interface ReadiedContexts {
  readonly packages: Promise<PackageProvenance[][]>;
  readonly said: HeldOutput;
}

function readyContextsAhead(toBuild: readonly ImageBuild[]): ReadiedContexts | undefined {
  const root = repoRoot();
  if (toBuild.some((b) => b.devRepos.some((r) => !existsSync(join(root, r.dest))))) return undefined;
  const said = heldOutput();
  const packages = readyContexts(root, toBuild, said);
  packages.catch(() => undefined);
  return { packages, said };
}

/** Dev clones, staged packages and helpers of each build context; what each image will be built from. */
function readyContexts(root: string, toBuild: readonly ImageBuild[], out: Output): Promise<PackageProvenance[][]> {
  const givenPackages = describeGivenPackages();
  givenPackages.catch(() => undefined);
  return Promise.all(toBuild.map((build) => prepareContext(root, build, givenPackages, out)));
}

/**
 * What resources starts before it says anything, and `up` starts first thing: the images to build
 * (none with --no-build), the lookup of what podman holds, the build contexts readied ahead.
 */
export interface StartedAhead {
  readonly toBuild: Promise<readonly ImageBuild[]>;
  readonly lookup: Promise<ResourcesLookup>;
  readonly contexts: Promise<ReadiedContexts | undefined>;
}

export function startAhead(env: Environment, opts: ResourcesOptions): StartedAhead {
  const toBuild = opts.build === false ? Promise.resolve([]) : planImageBuilds(env);
  const started = { toBuild, lookup: toBuild.then((b) => lookupResources(env, opts, b)), contexts: toBuild.then(readyContextsAhead) };
  // Awaited later; until then a failure must not count as unhandled.
  for (const p of Object.values(started)) p.catch(() => undefined);
  return started;
}

export async function resourcesCommand(env: Environment, opts: ResourcesOptions = {}, out: Output = consoleOutput, ahead: StartedAhead = startAhead(env, opts)): Promise<ImagesAfter> {
  const root = repoRoot();
  const volumes = volumesOf(env, variables());
  const toBuild = await ahead.toBuild;
  const { baseIds: knownBaseIds, labels, volumesPresent: present, zenithPresent, images: before } = await ahead.lookup;
  const baseIds = await ensureBases(toBuild, knownBaseIds, out);
  const zenith = zenithImageOf(env, opts);
  if (zenith !== undefined) {
    const how = zenithPresent === true ? "present" : await ensureImage(zenith, ZENITH_CLIENT_IMAGE_VARIABLE);
    out.say(how === "pulled" ? `pulled ${zenith}` : `image ${zenith} present`);
  }
  const readied = await ahead.contexts;
  const packages = await (readied?.packages.finally(() => readied.said.replay(out)) ?? readyContexts(root, toBuild, out));
  const provenance = new Map<ImageBuild, PackageProvenance[]>(packages.map((p, i) => [toBuild[i]!, p]));

  const built = await buildChanged(root, toBuild, baseIds, labels, provenance, out);
  const images = new Map(before);
  if (built.length > 0) {
    for (const [ref, facts] of await imagesFacts(built, IMAGE_LABELS)) images.set(ref, facts);
    await removeReplaced(built, before, images, out);
  }

  for (const [i, v] of volumes.entries()) {
    if (present[i]) {
      out.say(`kept existing volume ${v.name} (remove it with 'brics-env down ${env.name} --force' to start from the initial contents)`);
      continue;
    }
    await createVolumeFromTree(env, v, out);
  }
  return images;
}

/** Creates volume `v` filled with its tree in the package (volumes/<kind>/, tracked files only). */
export async function createVolumeFromTree(env: Environment, v: VolumePlan, out: Output): Promise<void> {
  const root = repoRoot();
  const source = join(root, v.sourceDir);
  if (!existsSync(source)) throw new Error(`initial contents for volume ${v.name} not found at ${source}`);
  // Loaded here: only a volume being filled needs the tar writer.
  const { trackedVolumeFiles, volumeTarStream } = await import("../effects/volumeArchive.js");
  const files = await trackedVolumeFiles(root, v);
  await volumeCreate(v.name, { "org.brics-env.environment": env.name });
  try {
    await volumeImport(v.name, volumeTarStream(source, { uid: v.owner.uid, gid: v.owner.gid, uname: v.owner.user, gname: v.owner.group }, files));
  } catch (err) {
    // A volume left empty would be "kept" by the next run; remove it so a retry fills it.
    await volumeRm(v.name, true).catch(() => undefined);
    throw err;
  }
  out.say(`created volume ${v.name} from ${v.sourceDir} (owner ${v.owner.user}:${v.owner.group}, ${v.owner.uid}:${v.owner.gid})`);
}
