/**
 * The stage-prod images that no environment's `resources` builds: the prod stage of the Slurm
 * image belongs to no environment (prod drives an external Slurm host), yet it is what a site's
 * Slurm host is set up like, what the stack's external Slurm hosts run and what images.test.ts
 * inspects. Built with `podman build` and the build steps the product plans (argfile.conf, the
 * workspace's BRICS_ENV_* variables), in the workspace copy, its context staged as `resources`
 * stages it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { podman } from "./podmanProbe.js";
import type { Workspace } from "./workspace.js";
import { planImageBuilds } from "../../src/commands/resources.js";
import { stageBuildHelpers } from "../../src/effects/buildHelpers.js";
import { stagePythonPackages } from "../../src/effects/pythonPackages.js";
import { getEnvironment } from "../../src/plan/environments.js";
import type { ImageName } from "../../src/plan/names.js";

/** Builds `image`'s stage-prod as `tag`; returns how long it took, in seconds. */
export async function buildProdImage(ws: Workspace, image: ImageName, tag: string): Promise<number> {
  // dev_dummyauth's plan holds both images; only the target and the tag change for prod.
  const build = (await planImageBuilds(getEnvironment("dev_dummyauth"), ws.env)).find((b) => b.image === image);
  assert.ok(build, `the plan builds ${image}`);
  const context = join(ws.pkg, build.contextDir);
  await stageBuildHelpers(ws.pkg, context);
  await stagePythonPackages(ws.env["BRICS_ENV_PYTHON_PACKAGES"], join(context, "_build_data", "python_packages"));
  const args = Object.entries(build.buildArgs).flatMap(([k, v]) => ["--build-arg", `${k}=${v}`]);
  const t0 = Date.now();
  const r = await podman(["build", "--layers", "-f", join(ws.pkg, build.containerfile), "--target", "stage-prod", "-t", tag, ...args, context], 45 * 60_000);
  assert.equal(r.code, 0, `podman build ${image} stage-prod:\n${r.out.slice(-3000)}\n${r.err.slice(-3000)}`);
  return Math.round((Date.now() - t0) / 100) / 10;
}
