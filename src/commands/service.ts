/**
 * `brics-env service`: writes (and with --install, installs) the systemd unit that plays an
 * environment at boot and removes its pod at shutdown. Which kind of unit is the podman version's
 * call (podmanQuirks.ts); what the unit says is plan/systemdUnit.ts's. A unit that differs from
 * the one brics-env would write now (edited by hand, or from other options) is never replaced
 * without --force: the new one goes beside it as `<unit>.new`.
 */
import { realpathSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { writeFileAtomic } from "../effects/deployDir.js";
import { imageExists, podmanVersionInfo, volumeLs } from "../effects/podman.js";
import type { Environment } from "../plan/environments.js";
import { imagesOf, zenithClientImage } from "../plan/images.js";
import { imageRef, volumeName } from "../plan/names.js";
import { CARRIED_VARIABLES, installDir, renderUnit, systemctl, UnitInputError, type Unit, type UnitKind } from "../plan/systemdUnit.js";
import { volumeKindsOf } from "../plan/volumes.js";
import { consoleOutput, displayPath, ReportedFailure, UsageError, variables, type Output } from "./common.js";
import { manifestCommand } from "./manifest.js";

export interface ServiceOptions {
  readonly install: boolean;
  readonly force: boolean;
  /** A unit running brics-env up/down even where Quadlet could play combined.yaml itself. */
  readonly plain: boolean;
  readonly publish?: readonly string[];
}

async function currentText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

/** What the unit needs at boot that `brics-env up` (or `resources`) makes: said now, not found out at boot. */
async function missingAtBoot(env: Environment): Promise<string[]> {
  const images = imagesOf(env).map((i) => imageRef(i, env.stage));
  if (env.ingress === "zenith") images.push(zenithClientImage(variables()));
  const volumes = volumeKindsOf(env).map((k) => volumeName(k, env.name));
  const [exist, present] = await Promise.all([Promise.all(images.map(imageExists)), volumeLs()]);
  return [...images.filter((_, i) => !exist[i]).map((i) => `image ${i}`), ...volumes.filter((v) => !present.includes(v)).map((v) => `volume ${v}`)];
}

function enableSteps(unit: Unit, kind: UnitKind, rootless: boolean, written: string, installed: boolean): string[] {
  const ctl = systemctl(rootless);
  const steps: string[] = [];
  if (!installed) {
    steps.push(`install it: cp ${written} ${installDir(kind, rootless, "~")}/   (or run this command again with --install)`);
  }
  steps.push(`${ctl} daemon-reload`);
  if (kind === "quadlet") {
    // Quadlet's generator makes the service at every daemon-reload and boot; [Install] is how it starts at boot.
    steps.push(`${ctl} start ${unit.serviceName}   (starts at every boot by itself; Quadlet units are not 'enable'd)`);
  } else {
    steps.push(`${ctl} enable --now ${unit.serviceName}`);
  }
  if (rootless) steps.push(`loginctl enable-linger ${process.env["USER"] ?? "$USER"}   (so that your units start at boot, before you log in)`);
  steps.push(`${ctl} status ${unit.serviceName}; journalctl${rootless ? " --user" : ""} -u ${unit.serviceName}`);
  return steps;
}

export async function serviceCommand(env: Environment, dir: string, opts: ServiceOptions, out: Output = consoleOutput): Promise<Unit> {
  const info = await podmanVersionInfo();
  if (info.remote) {
    throw new UsageError("podman here is a remote client (podman machine): a systemd unit must be installed where podman runs, not on this machine");
  }
  const kind: UnitKind = opts.plain || !info.quirks.quadletKube ? "plain" : "quadlet";
  // The unit plays combined.yaml (Quadlet) or runs `up` on this directory: it must pass check now.
  await manifestCommand(env, dir, opts.publish !== undefined ? { publish: opts.publish } : {}, out);

  const vars = variables();
  const carried = Object.fromEntries(CARRIED_VARIABLES.flatMap((n) => (vars[n] !== undefined && vars[n] !== "" ? [[n, vars[n]!]] : [])));
  const rootless = process.getuid?.() !== 0;
  let unit: Unit;
  try {
    unit = renderUnit({
      env,
      kind,
      deployDir: dir,
      rootless,
      variables: carried,
      ...(opts.publish !== undefined ? { publish: opts.publish } : {}),
      node: process.execPath,
      cli: realpathSync(process.argv[1] ?? ""),
      podmanVersion: `podman ${info.version.raw}`,
    });
  } catch (e) {
    if (e instanceof UnitInputError) throw new UsageError(e.message);
    throw e;
  }

  const targetDir = opts.install ? installDir(kind, rootless, homedir()) : dir;
  const target = join(targetDir, unit.fileName);
  const existing = await currentText(target);
  if (existing === unit.text) {
    out.say(`${displayPath(target)} is up to date`);
  } else if (existing !== undefined && !opts.force) {
    await writeFileAtomic(`${target}.new`, unit.text, { overwrite: true, mode: 0o644 });
    throw new ReportedFailure(
      `${displayPath(target)} differs from the unit brics-env would write now (changed by hand, or written with other options); ` +
        `kept it, and wrote the new one to ${displayPath(`${target}.new`)}: compare them, then run again with --force to replace it`,
    );
  } else {
    await writeFileAtomic(target, unit.text, { overwrite: true, mode: 0o644 });
    out.say(`${existing === undefined ? "wrote" : "replaced"} ${displayPath(target)}`);
  }
  out.say(
    kind === "quadlet"
      ? `a Quadlet unit (podman ${info.version.raw}): at boot podman plays ${displayPath(join(dir, "combined.yaml"))} itself`
      : `a unit running brics-env up/down (${opts.plain ? "--plain" : `podman ${info.version.raw} has no Quadlet`})`,
  );

  const missing = await missingAtBoot(env);
  if (missing.length > 0) {
    out.warn(`the unit starts nothing until these exist (brics-env up ${env.name} ${displayPath(dir)} makes them): ${missing.join(", ")}`);
  }
  out.say("Next:");
  for (const step of enableSteps(unit, kind, rootless, target, opts.install)) out.say(`  ${step}`);
  return unit;
}
