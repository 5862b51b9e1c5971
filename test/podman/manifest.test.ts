/**
 * The manifests of every environment, built by the plan layer, played by real podman with small
 * local images standing in for the real ones. Names, images and host ports are rewritten to
 * unique test values so a real deployment (or the stack tier running alongside) is never touched.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { stringify } from "yaml";
import { ENVIRONMENTS, type Environment } from "../../src/plan/environments.js";
import { renderInitConfigMap } from "../../src/plan/initTemplate.js";
import { buildManifest, type KeyMaterial, type ManifestObject } from "../../src/plan/manifest.js";
import { volumesOf } from "../../src/plan/volumes.js";
import { run } from "../../src/effects/exec.js";
import { healthUrl, waitForHealth } from "../../src/effects/hubHealth.js";
import { buildImage, kubeDown, kubePlay, podInspect, volumeCreate, volumeImport } from "../../src/effects/podman.js";
import { ensureKeyPair } from "../../src/effects/sshKeys.js";
import { trackedVolumeFiles, volumeTarStream } from "../../src/effects/volumeArchive.js";
import { repoRoot } from "../../src/paths.js";
import { busyboxMissingReason, leftovers, makeBusyboxImage, removeImage, uniqueId } from "./helpers.js";

const id = uniqueId("bricsenvtestman");
const base = `localhost/brics-env-test-busybox:${id}`;
const hubImage = `localhost/brics-env-test-hub:${id}`;
const sleeperImage = `localhost/brics-env-test-sleeper:${id}`;
let work: string;

const CONTAINERFILE = `ARG BASE_IMAGE
FROM \${BASE_IMAGE} AS stage-base
RUN mkdir -p /www/hub && echo ok > /www/hub/health
FROM stage-base AS hub
CMD ["httpd", "-f", "-p", "8000", "-h", "/www"]
FROM stage-base AS sleeper
CMD ["sleep", "100000"]
`;

interface Isolated {
  readonly text: string;
  readonly pod: string;
  readonly secrets: string[];
  readonly volumes: Array<{ planName: string; testName: string }>;
  readonly proxyPort: number | undefined;
}

let nextPort = 20000 + (process.pid % 5000) * 2;

/** Unique names, test images and free host ports, everything else as the plan made it. */
function isolate(env: Environment, objects: ManifestObject[]): Isolated {
  const docs = structuredClone(objects) as Array<Record<string, any>>;
  const suffix = `-${id}`;
  const secrets: string[] = [];
  const volumes: Array<{ planName: string; testName: string }> = [];
  let pod = "";
  let proxyPort: number | undefined;
  for (const d of docs) {
    if (d["kind"] === "Secret") {
      d["metadata"].name += suffix;
      secrets.push(d["metadata"].name);
    } else if (d["kind"] === "Pod") {
      pod = `${id}-${env.name.replaceAll("_", "-")}`;
      d["metadata"].name = pod;
      for (const v of d["spec"].volumes) {
        if (v.secret) v.secret.secretName += suffix;
        if (v.persistentVolumeClaim) {
          const testName = `${v.persistentVolumeClaim.claimName}_${id}`;
          volumes.push({ planName: v.persistentVolumeClaim.claimName, testName });
          v.persistentVolumeClaim.claimName = testName;
        }
      }
      for (const c of d["spec"].containers) {
        c.image = c.name === "jupyterhub" ? hubImage : sleeperImage;
        // The sleeper has none of the real images' programs (zenith-client connect): it keeps its own CMD.
        if (c.image === sleeperImage) {
          delete c.command;
          delete c.args;
        }
        for (const p of c.ports ?? []) {
          const hostPort = nextPort++;
          if (p.containerPort === 8000) proxyPort = hostPort;
          p.hostPort = hostPort;
          p.hostIP = "127.0.0.1";
        }
      }
    }
  }
  return { text: docs.map((d) => stringify(d)).join("---\n"), pod, secrets, volumes, proxyPort };
}

async function keysFor(env: Environment, dir: string): Promise<KeyMaterial> {
  const pair = async (name: string) => {
    const p = join(dir, name);
    await ensureKeyPair(p, `${p}.pub`, `${name} test`);
    return { private: await readFile(p, "utf8"), public: await readFile(`${p}.pub`, "utf8") };
  };
  const host = await pair("ssh_host_key");
  return {
    clientKey: await pair("ssh_client_key"),
    ...(env.slurm === "pod" ? { hostKey: host } : { knownHosts: `slurm.example.org ${host.public}` }),
    ...(env.ingress === "zenith" ? { zenithKey: await pair("ssh_zenith_client_key"), zenithConfig: "serverAddress: zenith.example.org\n" } : {}),
  };
}

async function exec(container: string, ...cmd: string[]): Promise<string> {
  return (await run("podman", ["exec", container, ...cmd])).stdout;
}

describe("every environment's manifest plays on real podman", { skip: busyboxMissingReason() }, () => {
  before(async () => {
    work = await mkdtemp(join(tmpdir(), "brics-env-test-manifest-"));
    await makeBusyboxImage(base);
    await writeFile(join(work, "Containerfile"), CONTAINERFILE);
    for (const [target, tag] of [["hub", hubImage], ["sleeper", sleeperImage]] as const) {
      await buildImage({ containerfile: join(work, "Containerfile"), context: work, tag, target, buildArgs: { BASE_IMAGE: base } });
    }
  });
  after(async () => {
    for (const img of [hubImage, sleeperImage, base]) await removeImage(img);
    await rm(work, { recursive: true, force: true });
    assert.deepEqual(await leftovers(id), []);
  });

  for (const env of ENVIRONMENTS) {
    test(env.name, async () => {
      const dir = join(work, env.name);
      await mkdir(dir);
      const keys = await keysFor(env, dir);
      const objects = buildManifest(env, {
        keys,
        ...(env.slurm === "external" ? { hubConnectUrl: `http://127.0.0.1:${nextPort++}` } : {}),
      });
      const iso = isolate(env, objects);
      const manifestFile = join(dir, "combined.yaml");
      await writeFile(manifestFile, iso.text, { mode: 0o600 });
      const plans = volumesOf(env);
      try {
        for (const v of iso.volumes) {
          const plan = plans.find((p) => p.name === v.planName)!;
          await volumeCreate(v.testName);
          const files = await trackedVolumeFiles(repoRoot(), plan);
          await volumeImport(v.testName, volumeTarStream(join(repoRoot(), plan.sourceDir), { uid: plan.owner.uid, gid: plan.owner.gid }, files));
        }
        const configMap = join(dir, "deploy-configmap.yaml");
        await writeFile(configMap, renderInitConfigMap(env, { dummyAuthPassword: "test-password" }));
        await kubePlay(manifestFile, { workDir: join(dir, ".podman-play"), configmaps: [configMap] });
        const state = await podInspect(iso.pod);
        assert.equal(state?.state, "Running", JSON.stringify(state));

        const hub = `${iso.pod}-jupyterhub`;
        assert.equal(await exec(hub, "cat", "/srv/jupyterhub/ssh_key"), keys.clientKey.private);
        assert.match(await exec(hub, "stat", "-c", "%a", "/srv/jupyterhub/ssh_key"), /^600\n$/);
        assert.match(await exec(hub, "ls", "/etc/jupyterhub"), /jupyterhub_config\.py/);
        const knownHosts = await exec(hub, "cat", "/etc/ssh/ssh_known_hosts");
        if (env.slurm === "pod") assert.match(knownHosts, /^localhost,127\.0\.0\.1,::1 ssh-ed25519 /);
        else assert.equal(knownHosts, keys.knownHosts);
        // /etc/jupyterhub is read-only; /var/log/jupyterhub is writable and lands in the volume.
        await assert.rejects(exec(hub, "sh", "-c", "echo x > /etc/jupyterhub/probe"));
        await exec(hub, "sh", "-c", "echo written > /var/log/jupyterhub/probe.log");

        if (env.slurm === "pod") {
          const slurm = `${iso.pod}-slurm`;
          assert.equal(await exec(slurm, "cat", "/etc/ssh/ssh_host_ed25519_key"), keys.hostKey!.private);
          assert.match(await exec(slurm, "cat", "/home/jupyterspawner/.ssh/authorized_keys"), /^from="localhost,127\.0\.0\.1,::1" ssh-ed25519 /);
          assert.match(await exec(slurm, "stat", "-c", "%F %u", "/var/log/sshd.log", "/var/spool/slurmd"), /regular (empty )?file 64030\ndirectory 64030\n/);
        }
        if (env.ingress === "zenith") {
          const zenith = `${iso.pod}-zenith-client`;
          assert.equal(await exec(zenith, "cat", "/etc/zenith/client.yaml"), keys.zenithConfig);
          assert.equal(await exec(zenith, "cat", "/etc/zenith/ssh_key"), keys.zenithKey!.private);
        }
        if (iso.proxyPort !== undefined) {
          const health = await waitForHealth(healthUrl("/", iso.proxyPort), { timeoutMs: 20_000, intervalMs: 200 });
          assert.equal(health.ok, true, JSON.stringify(health));
        } else {
          assert.equal(env.ingress, "zenith");
        }
      } finally {
        const down = await kubeDown({
          force: true,
          podName: iso.pod,
          volumes: [...iso.volumes.map((v) => v.testName), ...iso.secrets],
          secrets: iso.secrets,
          workDir: join(dir, ".podman-play"),
        });
        assert.equal(down.podRemoved, true);
      }
      assert.deepEqual(await leftovers(id), []);
    });
  }
});
