/**
 * Operators migrating from the upstream scripts keep their deploy directories: upstream's five
 * example ConfigMaps (their keys and values, with upstream's `apiVersion: core/v1`,
 * `baseUrl: "/jupyter"`, `immutable: true` and OIDC keys in dummy-auth environments), with the
 * user files upstream documents, pass `check` and give the same manifest as ours.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { normaliseBaseUrl } from "../../src/plan/deployConfig.js";
import { getEnvironment, type EnvName } from "../../src/plan/environments.js";
import { buildManifest, ManifestInputError } from "../../src/plan/manifest.js";
import { hubApiAddressProblems, validateDeployDir } from "../../src/plan/validate.js";
import { KEY_A, KEY_B, KEY_C } from "./fixtureKeys.js";
import { goodFilesFor } from "./helpers.js";

const DUMMY_OIDC = {
  oidcServer: "https://keycloak.example/realms/isambard",
  bricsPlatform: "portal.dummy.platform.shared",
  jwtAudience: "dummy-audience",
};
const REAL_OIDC = { ...DUMMY_OIDC, oidcServer: "https://keycloak.example/realms/dummy" };
const IN_POD = {
  sshHostname: "localhost",
  slurmSpawnerWrappersBin: "/opt/jupyter/slurmspawner_wrappers/bin",
  condaPrefixDir: "/opt/jupyter/miniforge3",
  jupyterDataDir: "/opt/jupyter/jupyter_data",
  hubConnectUrl: "http://127.0.0.1:8081",
};
const EXTERNAL = {
  slurmSpawnerWrappersBin: "/path/to/slurmspawner_wrappers/bin",
  condaPrefixDir: "/path/to/conda",
  jupyterDataDir: "/path/to/jupyter/data",
  hubConnectUrl: "http://hub.example:8081",
};
const DEV_USERS = "testuser.project1 testuser.project2 otheruser.project1";
/** Upstream's dummy-auth examples also set devAdmins, a key nothing reads. */
const DEV_ADMINS = "test1-admin test2-admin";

/** Upstream's examples/<env>/deploy-configmap.yaml data, key by key. */
const UPSTREAM: Record<EnvName, Record<string, string>> = {
  dev_dummyauth: { logLevel: "DEBUG", baseUrl: "/jupyter", devUsers: DEV_USERS, devAdmins: DEV_ADMINS, dummyAuthPassword: "MyVerySecurePassword", ...IN_POD, ...DUMMY_OIDC },
  dev_dummyauth_extslurm: {
    logLevel: "DEBUG",
    baseUrl: "/jupyter",
    devUsers: DEV_USERS,
    devAdmins: DEV_ADMINS,
    dummyAuthPassword: "MyVerySecurePassword",
    sshHostname: "ssh.example",
    ...EXTERNAL,
    ...DUMMY_OIDC,
  },
  dev_realauth: { logLevel: "DEBUG", baseUrl: "/jupyter", devUsers: DEV_USERS, ...IN_POD, ...REAL_OIDC },
  dev_realauth_zenithclient: { baseUrl: "/jupyter", devUsers: DEV_USERS, ...IN_POD, ...REAL_OIDC },
  prod: { baseUrl: "/jupyter", sshHostname: "ssh.example.local", ...EXTERNAL, ...REAL_OIDC },
};

/** As upstream writes it: core/v1, values quoted, `immutable: true` after the data. */
function upstreamText(data: Record<string, string>): string {
  const lines = ["apiVersion: core/v1", "kind: ConfigMap", "metadata:", "  name: deploy-config", "data:"];
  for (const [k, v] of Object.entries(data)) lines.push(`  ${k}: ${JSON.stringify(v)}`);
  return [...lines, "", "immutable: true", ""].join("\n");
}

/** The files upstream's README asks for: the client key pair, and known_hosts made with printf + cat. */
function upstreamFiles(envName: EnvName, data: Record<string, string>): Record<string, string> {
  const env = getEnvironment(envName);
  const files = goodFilesFor(env);
  if (env.slurm === "external") {
    files["ssh_known_hosts"] = `${data["sshHostname"]} ${KEY_C.public.trim()} root@slurm\n`;
  }
  return files;
}

describe("upstream deploy directories", () => {
  for (const [envName, data] of Object.entries(UPSTREAM) as [EnvName, Record<string, string>][]) {
    it(`${envName}: upstream's ConfigMap passes check, with warnings only where useful`, () => {
      const env = getEnvironment(envName);
      const { problems } = validateDeployDir(env, { dir: "/deploy", configMapText: upstreamText(data), files: upstreamFiles(envName, data) });
      assert.deepEqual(
        problems.filter((p) => p.severity === "error"),
        [],
      );
      const warned = problems.map((p) => p.key);
      assert.ok(warned.includes("apiVersion"), "core/v1 is not valid Kubernetes: a warning says so");
      const ignored = env.auth === "dummy" ? ["oidcServer", "bricsPlatform", "jwtAudience", "devAdmins"] : [];
      for (const k of ignored) assert.ok(warned.includes(k), `${k} is ignored by ${envName}: a warning says so`);
      // Upstream's example password is public: worth a warning, as anyone who read the examples knows it.
      const publicPassword = env.auth === "dummy" ? ["dummyAuthPassword"] : [];
      for (const k of publicPassword) assert.ok(warned.includes(k), `${envName}: upstream's example password gets a warning`);
      // DEBUG puts tokens in the hub's log: worth saying, not worth refusing.
      const debug = data["logLevel"] === "DEBUG" ? 1 : 0;
      assert.equal(warned.includes("logLevel"), debug === 1, "a warning about DEBUG logging exactly where upstream sets it");
      assert.equal(problems.length, 1 + ignored.length + publicPassword.length + debug, JSON.stringify(problems, null, 1));
    });

    it(`${envName}: every key the manifest takes from the ConfigMap is in upstream's, or optional`, () => {
      // podman refuses to start a container whose non-optional configMapKeyRef names a missing key.
      const env = getEnvironment(envName);
      const keys = {
        clientKey: KEY_A,
        ...(env.slurm === "pod" ? { hostKey: KEY_B } : { knownHosts: upstreamFiles(envName, data)["ssh_known_hosts"]! }),
        ...(env.ingress === "zenith" ? { zenithKey: KEY_B, zenithConfig: "serverAddress: ssh.example\n" } : {}),
      };
      const values: Record<string, string> = validateDeployDir(env, { dir: "/deploy", configMapText: upstreamText(data), files: upstreamFiles(envName, data) }).config;
      // Upstream's external-Slurm examples name hub.example, which resolves nowhere: the manifest
      // refuses to guess where to publish the Hub API (test below); here it resolves.
      const address = env.slurm === "external" ? { hubConnectAddress: "192.0.2.10" } : {};
      const objects = buildManifest(env, { keys, ...(values["hubConnectUrl"] ? { hubConnectUrl: values["hubConnectUrl"] } : {}), ...address });
      const pod = objects.find((o) => o.kind === "Pod");
      assert.ok(pod !== undefined && pod.kind === "Pod");
      const refs = pod.spec.containers.flatMap((c) => c.env.flatMap((e) => (e.valueFrom ? [e.valueFrom.configMapKeyRef] : [])));
      assert.ok(refs.length > 0);
      for (const r of refs) assert.ok(r.optional || r.key in values, `${r.key} is required by the manifest but missing upstream`);
    });
  }

  for (const envName of ["dev_dummyauth_extslurm", "prod"] as const) {
    it(`${envName}: hubConnectUrl http://hub.example:8081 is a warning for check where it does not resolve, and the manifest refuses it`, () => {
      const env = getEnvironment(envName);
      const data = UPSTREAM[envName];
      const { problems } = validateDeployDir(env, { dir: "/deploy", configMapText: upstreamText(data), files: upstreamFiles(envName, data) });
      assert.deepEqual(problems.filter((p) => p.severity === "error"), []);
      // What check adds once it has looked hub.example up (here: nowhere).
      const [warning, ...more] = hubApiAddressProblems("/deploy/deploy-configmap.yaml", data["hubConnectUrl"]!, { addresses: [], local: ["127.0.0.1"] });
      assert.deepEqual(more, []);
      assert.equal(warning?.severity, "warning");
      assert.match(warning?.message ?? "", /names hub\.example, which does not resolve to an address here/);
      const keys = { clientKey: KEY_A, knownHosts: upstreamFiles(envName, data)["ssh_known_hosts"]!, zenithKey: KEY_B, zenithConfig: "serverAddress: ssh.example\n" };
      assert.throws(() => buildManifest(env, { keys, hubConnectUrl: data["hubConnectUrl"]! }), ManifestInputError);
    });
  }

  it("baseUrl is normalised as JupyterHub normalises base_url", () => {
    assert.equal(normaliseBaseUrl("/jupyter"), "/jupyter/");
    assert.equal(normaliseBaseUrl("jupyter"), "/jupyter/");
    assert.equal(normaliseBaseUrl("/jupyter/"), "/jupyter/");
    assert.equal(normaliseBaseUrl("/"), "/");
  });
});
