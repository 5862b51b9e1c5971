/**
 * The units `brics-env service` writes: both kinds pass `systemd-analyze verify` (Debian's systemd);
 * the Quadlet `.kube` file is turned into its service by a real quadlet binary when this machine
 * has one (podman >= 4.4), and otherwise checked for the structure Quadlet reads — the output says
 * which was done.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it, type TestContext } from "node:test";
import { getEnvironment } from "../../src/plan/environments.js";
import { CARRIED_VARIABLES, installDir, renderUnit, UnitInputError, type UnitRequest } from "../../src/plan/systemdUnit.js";
import { repoRoot } from "../../src/paths.js";

const scratch = mkdtempSync(join(tmpdir(), "brics-env-units-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

const CLI = join(repoRoot(), "dist", "src", "cli.js");
const base = (over: Partial<UnitRequest> = {}): UnitRequest => ({
  env: getEnvironment("prod"),
  kind: "plain",
  deployDir: "/srv/brics/deploy/prod",
  rootless: false,
  variables: {},
  node: process.execPath,
  cli: CLI,
  podmanVersion: "podman 4.3.1",
  ...over,
});

/** `systemd-analyze verify` of a unit file: fails on any complaint, warnings included (they exit 0). */
function verify(file: string): void {
  const r = spawnSync("systemd-analyze", ["verify", file], { encoding: "utf8" });
  assert.ok(r.error === undefined, `systemd-analyze could not run (${String(r.error)}): install Debian's systemd package (scripts/setup-host.sh does)`);
  const said = `${r.stdout}${r.stderr}`.trim();
  assert.equal(r.status, 0, said);
  assert.equal(said, "", `systemd-analyze verify ${file} complained`);
}

function writeUnit(name: string, text: string): string {
  const dir = mkdtempSync(join(scratch, "u-"));
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** Sections and their keys, in order, as systemd's parser sees them (comments and blanks dropped). */
function sections(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current = "";
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const head = /^\[(\w+)\]$/.exec(line);
    if (head) {
      current = head[1]!;
      out.set(current, []);
      continue;
    }
    assert.match(line, /^[A-Za-z]+=\S.*$/, `a Key=value line: ${line}`);
    out.get(current)!.push(line);
  }
  return out;
}

describe("the plain unit (podman without Quadlet, or --plain)", () => {
  it("runs brics-env up --no-build at start and down at stop, by absolute paths, and passes systemd-analyze verify", () => {
    const unit = renderUnit(base({ publish: ["127.0.0.1:8000:8000"], variables: { BRICS_ENV_PODMAN: "/usr/bin/podman", JUPYTERUSER_UID: "1000" } }));
    assert.equal(unit.fileName, "jupyterhub-slurm-prod.service");
    assert.equal(unit.serviceName, "jupyterhub-slurm-prod.service");
    const s = sections(unit.text);
    assert.deepEqual([...s.keys()], ["Unit", "Service", "Install"]);
    const service = s.get("Service")!;
    assert.ok(service.includes(`ExecStart=${process.execPath} ${CLI} up prod /srv/brics/deploy/prod --no-build --timeout 600 --publish 127.0.0.1:8000:8000`));
    assert.ok(service.includes(`ExecStop=${process.execPath} ${CLI} down prod /srv/brics/deploy/prod`));
    assert.ok(service.includes("Type=oneshot") && service.includes("RemainAfterExit=yes"));
    assert.ok(service.includes("Environment=BRICS_ENV_PODMAN=/usr/bin/podman") && service.includes("Environment=JUPYTERUSER_UID=1000"));
    assert.deepEqual(s.get("Install"), ["WantedBy=multi-user.target"]);
    verify(writeUnit(unit.fileName, unit.text));
  });

  it("is a user unit wanted by default.target when not root", () => {
    const unit = renderUnit(base({ rootless: true, env: getEnvironment("dev_dummyauth"), deployDir: "/home/op/deploy/" }));
    assert.deepEqual(sections(unit.text).get("Install"), ["WantedBy=default.target"]);
    assert.match(unit.text, /up dev_dummyauth \/home\/op\/deploy --no-build/);
    assert.equal(installDir("plain", true, "/home/op"), "/home/op/.config/systemd/user");
    assert.equal(installDir("plain", false, "/root"), "/etc/systemd/system");
    verify(writeUnit(unit.fileName, unit.text));
  });

  it("carries only what up and down read, and never a build secret such as a package index URL", () => {
    assert.ok(CARRIED_VARIABLES.includes("SLURMGROUP_GID") && CARRIED_VARIABLES.includes("CONTAINERS_CONF"));
    assert.ok(!CARRIED_VARIABLES.includes("BRICS_ENV_PIP_INDEX_URL"));
    const text = renderUnit(base({ variables: { BRICS_ENV_PIP_INDEX_URL: "https://user:pw@mirror/simple" } })).text;
    assert.doesNotMatch(text, /pw@mirror/);
  });
});

describe("the Quadlet unit (podman >= 4.4)", () => {
  const kube = () => renderUnit(base({ kind: "quadlet", variables: { CONTAINERS_CONF: "/etc/brics/containers.conf", BRICS_ENV_PODMAN: "/x" } }));

  it("plays combined.yaml with the deploy ConfigMap, using only [Kube] keys Quadlet 4.4 knows", () => {
    const unit = kube();
    assert.equal(unit.fileName, "jupyterhub-slurm-prod.kube");
    assert.equal(unit.serviceName, "jupyterhub-slurm-prod.service", "Quadlet names the service after the file");
    const s = sections(unit.text);
    assert.deepEqual([...s.keys()], ["Unit", "Kube", "Service", "Install"]);
    assert.deepEqual(s.get("Kube"), ["Yaml=/srv/brics/deploy/prod/combined.yaml", "ConfigMap=/srv/brics/deploy/prod/deploy-configmap.yaml"]);
    // Quadlet 4.4's [Kube] keys: Yaml, ConfigMap, Network, PublishPort, RemapUid/Gid/Users/UidSize.
    for (const line of s.get("Kube")!) assert.match(line, /^(Yaml|ConfigMap)=\//);
    assert.ok(s.get("Service")!.includes("Environment=CONTAINERS_CONF=/etc/brics/containers.conf"), "podman at boot reads the same settings");
    assert.ok(!unit.text.includes("BRICS_ENV_PODMAN"), "podman, not brics-env, runs in this unit");
    assert.ok(!/ExecStart|ExecStop/.test(unit.text), "Quadlet writes the commands");
    assert.deepEqual(s.get("Install"), ["WantedBy=multi-user.target"]);
    assert.equal(installDir("quadlet", false, "/root"), "/etc/containers/systemd");
    assert.equal(installDir("quadlet", true, "/home/op"), "/home/op/.config/containers/systemd");
  });

  it("gives a service that passes systemd-analyze verify (made by quadlet when this machine has it)", (t: TestContext) => {
    const unit = kube();
    const quadlet = [process.env["BRICS_ENV_QUADLET"], "/usr/libexec/podman/quadlet", "/usr/lib/podman/quadlet"].find((p) => p !== undefined && p !== "" && existsSync(p));
    if (quadlet === undefined) {
      const note =
        "no quadlet binary on this machine (podman < 4.4; set BRICS_ENV_QUADLET to one): the .kube file's structure was " +
        "checked above, the service Quadlet would make from it was NOT generated or verified here";
      t.diagnostic(note);
      return;
    }
    const units = mkdtempSync(join(scratch, "quadlet-in-"));
    const generated = mkdtempSync(join(scratch, "quadlet-out-"));
    writeFileSync(join(units, unit.fileName), unit.text);
    const r = spawnSync(quadlet, ["-no-kmsg-log", generated], { encoding: "utf8", env: { ...process.env, QUADLET_UNIT_DIRS: units } });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    const service = join(generated, unit.serviceName);
    assert.ok(existsSync(service), `${quadlet} made no ${unit.serviceName}: ${r.stderr}`);
    const text = readFileSync(service, "utf8");
    assert.match(text, /^ExecStart=.*podman.* kube play .*--configmap \/srv\/brics\/deploy\/prod\/deploy-configmap.yaml .*\/srv\/brics\/deploy\/prod\/combined.yaml$/m);
    t.diagnostic(`verified the service ${quadlet} made`);
    verify(service);
  });
});

describe("values that cannot go into a unit", () => {
  it("are refused, naming what is wrong", () => {
    assert.throws(() => renderUnit(base({ deployDir: "/srv/my deploy" })), (e: unknown) => e instanceof UnitInputError && /the deploy directory "\/srv\/my deploy"/.test(e.message));
    assert.throws(() => renderUnit(base({ deployDir: "deploy/prod" })), /must be an absolute path/);
    assert.throws(() => renderUnit(base({ variables: { JUPYTERUSER: "a%b" } })), /JUPYTERUSER "a%b"/);
    assert.throws(() => renderUnit(base({ publish: ["1.2.3.4:80:8000;x"] })), /--publish/);
  });
});
