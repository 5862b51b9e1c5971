import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  containerAction,
  containerChanges,
  createCommand,
  describeReasons,
  desiredContainers,
  onlyStopped,
  samePorts,
  type ChangeReason,
  type DesiredContainer,
  type RunningContainer,
} from "../../src/plan/containerSpec.js";
import { getEnvironment, type Environment } from "../../src/plan/environments.js";
import { buildManifest, specAnnotation, type ManifestOptions, type Pod } from "../../src/plan/manifest.js";
import { adaptManifest, HOST_PATH_QUIRKS } from "../../src/plan/podmanQuirks.js";
import type { ConfigValues } from "../../src/plan/validate.js";
import { KEY_A, KEY_B, KEY_C } from "./fixtureKeys.js";
import { ZENITH_CONFIG } from "./helpers.js";

const ENV = getEnvironment("dev_dummyauth");
const PASSWORD = "s3cret-Password-of-the-dummy-authenticator";
const CONFIG: ConfigValues = {
  devUsers: "alice.proj1 alice.proj2",
  dummyAuthPassword: PASSWORD,
  logLevel: "INFO",
  pollInterval: "5",
  sshHostname: "localhost",
  slurmSpawnerWrappersBin: "/opt/jupyter/slurmspawner_wrappers/bin",
  condaPrefixDir: "/opt/jupyter/miniforge3",
  jupyterDataDir: "/opt/jupyter/jupyter_data",
  hubConnectUrl: "http://127.0.0.1:8081",
  baseUrl: "/",
};

function pods(env: Environment = ENV, opts: Partial<ManifestOptions> = {}): { pod: Pod; adapted: Pod } {
  const objects = buildManifest(env, {
    keys: {
      clientKey: KEY_A,
      ...(env.slurm === "pod" ? { hostKey: KEY_C } : { knownHosts: `slurm.example.org ${KEY_C.public}` }),
      ...(env.ingress === "zenith" ? { zenithKey: KEY_B, zenithConfig: ZENITH_CONFIG } : {}),
    },
    hubConnectUrl: env.slurm === "external" ? "http://10.1.2.3:8081" : "http://127.0.0.1:8081",
    ...opts,
  });
  const adapted = adaptManifest(objects, {
    quirks: HOST_PATH_QUIRKS,
    secretDir: "/deploy/.podman-play/secrets",
    volumeMountpoint: (n) => `/var/lib/containers/storage/volumes/${n}/_data`,
    pathExists: () => true,
  });
  const podOf = (o: readonly { kind: string }[]) => o.find((x): x is Pod => x.kind === "Pod")!;
  return { pod: podOf(objects), adapted: podOf(adapted.objects) };
}

function desired(env: Environment = ENV, config: ConfigValues = CONFIG, opts: Partial<ManifestOptions> = {}): Map<string, DesiredContainer> {
  const { pod, adapted } = pods(env, opts);
  return new Map(desiredContainers(env, pod, adapted, config).map((d) => [d.container, d]));
}

/** The container as podman shows it once made from `d`: the image's variables too. */
function runningAs(d: DesiredContainer, overrides: Partial<RunningContainer> = {}): RunningContainer {
  return {
    state: "running",
    imageId: "sha-1",
    env: ["PATH=/usr/bin", "HOSTNAME=jupyterhub-slurm-dev-dummyauth", ...d.env.map(([k, v]) => `${k}=${v}`)],
    annotations: { [specAnnotation(d.container)]: d.specHash, "io.kubernetes.cri-o.ContainerType": "container" },
    ...overrides,
  };
}

describe("recreating one container of a running pod", () => {
  it("mounts everything as host paths: the volumes' sub-paths and the Secrets' files", () => {
    const slurm = desired().get("slurm")!;
    const home = slurm.binds.find((b) => b.destination === "/home");
    assert.deepEqual(home, { source: "/var/lib/containers/storage/volumes/slurm_home_dev_dummyauth/_data/home", destination: "/home", readOnly: false, createDirectory: false });
    const keys = slurm.binds.find((b) => b.destination === "/home/jupyterspawner/.ssh/authorized_keys");
    assert.match(keys?.source ?? "", /^\/deploy\/\.podman-play\/secrets\/jupyterhub-slurm-ssh-client-key-dev_dummyauth--ssh-client-key\/localhost_authorized_keys$/);
    assert.equal(desired().get("jupyterhub")!.binds.find((b) => b.destination === "/etc/jupyterhub")?.readOnly, true);
  });

  it("resolves the ConfigMap's values and leaves out optional keys it does not set", () => {
    const hub = desired().get("jupyterhub")!;
    const env = new Map(hub.env);
    assert.equal(env.get("DEPLOY_CONFIG_POLL_INTERVAL"), "5");
    assert.equal(env.get("DEPLOY_CONFIG_DUMMYAUTH_PASSWORD"), PASSWORD);
    assert.equal(env.has("DEPLOY_CONFIG_ANNOUNCEMENT"), false);
    assert.ok(env.get("BRICS_ENV_SETTINGS")?.startsWith("{"), "literal values too");
    assert.equal(hub.fromConfigMap.get("DEPLOY_CONFIG_LOG_LEVEL"), "logLevel");
    assert.throws(() => desired(ENV, { ...CONFIG, devUsers: undefined }), /the deploy ConfigMap has no value for devUsers, which (jupyterhub|slurm) requires/);
  });

  it("passes every value through podman's environment, never on its command line", () => {
    const hub = desired().get("jupyterhub")!;
    const { args, env } = createCommand(ENV, hub);
    assert.ok(!args.some((a) => a.includes(PASSWORD)), "the password is not an argument");
    assert.ok(args.includes("DEPLOY_CONFIG_DUMMYAUTH_PASSWORD"));
    assert.equal(env["DEPLOY_CONFIG_DUMMYAUTH_PASSWORD"], PASSWORD);
    assert.deepEqual(args.slice(0, 7), ["create", "--pod", "jupyterhub-slurm-dev_dummyauth", "--name", "jupyterhub-slurm-dev_dummyauth-jupyterhub", "--restart", "always"]);
    assert.ok(args.includes(`${specAnnotation("jupyterhub")}=${hub.specHash}`));
    assert.equal(args.at(-1), "localhost/brics_jupyterhub:dev-latest");
  });

  it("gives the capabilities and arguments of the manifest", () => {
    const slurm = desired(ENV, CONFIG, { grantSlurmSysAdmin: true }).get("slurm")!;
    assert.deepEqual(slurm.capAdd, ["SYS_ADMIN"]);
    assert.ok(createCommand(ENV, slurm).args.includes("--cap-add"));
    const zenithEnv = getEnvironment("dev_realauth_zenithclient");
    const zenith = desired(zenithEnv, { ...CONFIG, oidcServer: "https://issuer.example.org", bricsPlatform: "brics", jwtAudience: "aud" }).get("zenith-client")!;
    const { args } = createCommand(zenithEnv, zenith);
    assert.deepEqual(args.slice(args.indexOf(zenith.image) + 1), ["zenith-client", "connect"]);
  });
});

describe("what differs from the running container", () => {
  it("nothing, for the container made from the same manifest and ConfigMap", () => {
    for (const d of desired().values()) assert.deepEqual(containerChanges(d, runningAs(d), "sha-1"), []);
  });

  it("names the ConfigMap keys whose values changed, never the values", () => {
    const before = desired();
    const after = desired(ENV, { ...CONFIG, logLevel: "DEBUG", pollInterval: "7", dummyAuthPassword: `${PASSWORD}-new` });
    const hub = after.get("jupyterhub")!;
    const reasons = containerChanges(hub, runningAs(before.get("jupyterhub")!), "sha-1");
    assert.deepEqual(reasons, [{ kind: "config", keys: ["dummyAuthPassword", "logLevel", "pollInterval"] }]);
    assert.ok(!describeReasons(reasons).includes(PASSWORD));
    // The Slurm container does not read those keys: it is left alone.
    assert.deepEqual(containerChanges(after.get("slurm")!, runningAs(before.get("slurm")!), "sha-1"), []);
  });

  it("sees an optional key added or removed", () => {
    const before = desired();
    const after = desired(ENV, { ...CONFIG, announcement: "Maintenance on Friday" });
    assert.deepEqual(containerChanges(after.get("jupyterhub")!, runningAs(before.get("jupyterhub")!), "sha-1"), [{ kind: "config", keys: ["announcement"] }]);
    assert.deepEqual(containerChanges(before.get("jupyterhub")!, runningAs(after.get("jupyterhub")!), "sha-1"), [{ kind: "config", keys: ["announcement"] }]);
  });

  it("a key both containers read concerns both", () => {
    const before = desired();
    const after = desired(ENV, { ...CONFIG, devUsers: "alice.proj1 bob.proj1" });
    for (const c of ["jupyterhub", "slurm"]) {
      assert.deepEqual(containerChanges(after.get(c)!, runningAs(before.get(c)!), "sha-1"), [{ kind: "config", keys: ["devUsers"] }], c);
    }
  });

  it("a new image, a changed definition, a stopped or missing container", () => {
    const hub = desired().get("jupyterhub")!;
    assert.deepEqual(containerChanges(hub, runningAs(hub), "sha-2"), [{ kind: "image", image: hub.image }]);
    assert.deepEqual(containerChanges(hub, runningAs(hub, { annotations: {} }), "sha-1"), [{ kind: "definition" }]);
    const stopped = containerChanges(hub, runningAs(hub, { state: "exited" }), "sha-1");
    assert.deepEqual(stopped, [{ kind: "not-running", state: "exited" }]);
    assert.equal(onlyStopped(stopped), true);
    assert.equal(onlyStopped([...stopped, { kind: "definition" }]), false);
    assert.deepEqual(containerChanges(hub, undefined, "sha-1"), [{ kind: "absent" }]);
  });

  it("what up does to each container: a hub alone in its pod is made anew where another would be restarted", () => {
    const stopped: ChangeReason[] = [{ kind: "not-running", state: "exited" }];
    const files = ["etc/jupyterhub/jupyterhub_config.py"];
    assert.equal(containerAction("jupyterhub", [], [], false), "keep");
    assert.equal(containerAction("jupyterhub", [], files, false), "restart");
    assert.equal(containerAction("jupyterhub", [], files, true), "recreate");
    assert.equal(containerAction("slurm", [], files, false), "keep", "only the hub has configuration files on its volume");
    assert.equal(containerAction("jupyterhub", stopped, [], true), "start");
    assert.equal(containerAction("jupyterhub", stopped, files, false), "start");
    assert.equal(containerAction("zenith-client", [...stopped, { kind: "definition" }], [], false), "recreate");
  });

  it("the definition's hash follows what shapes each container, and only that", () => {
    const base = desired();
    // A capability for Slurm changes Slurm's definition only.
    const sysAdmin = desired(ENV, CONFIG, { grantSlurmSysAdmin: true });
    assert.notEqual(sysAdmin.get("slurm")!.specHash, base.get("slurm")!.specHash);
    assert.equal(sysAdmin.get("jupyterhub")!.specHash, base.get("jupyterhub")!.specHash);
    // Another client key: the hub uses it, Slurm authorises it.
    const { pod, adapted } = pods(ENV, { keys: { clientKey: KEY_B, hostKey: KEY_C } });
    const rekeyed = new Map(desiredContainers(ENV, pod, adapted, CONFIG).map((d) => [d.container, d]));
    assert.notEqual(rekeyed.get("jupyterhub")!.specHash, base.get("jupyterhub")!.specHash);
    assert.notEqual(rekeyed.get("slurm")!.specHash, base.get("slurm")!.specHash);
    // Another published port belongs to the pod: no container's definition changes for it.
    const published = desired(ENV, CONFIG, { publish: ["127.0.0.1:8001:8000"] });
    assert.notEqual(published.get("jupyterhub")!.specHash, base.get("jupyterhub")!.specHash, "the hub container declares its ports");
    assert.equal(published.get("slurm")!.specHash, base.get("slurm")!.specHash);
  });

  it("compares published ports as sets", () => {
    const a = [
      { hostIP: "127.0.0.1", hostPort: 8000, containerPort: 8000 },
      { hostIP: "10.0.0.5", hostPort: 8081, containerPort: 8081 },
    ];
    assert.equal(samePorts(a, [...a].reverse()), true);
    assert.equal(samePorts(a, a.slice(0, 1)), false);
    assert.equal(samePorts(a.slice(0, 1), [{ hostIP: "0.0.0.0", hostPort: 8000, containerPort: 8000 }]), false);
  });
});
