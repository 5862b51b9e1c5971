import assert from "node:assert/strict";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { keysUsedBy } from "../../src/plan/deployConfig.js";
import { containersOf, ENVIRONMENTS, getEnvironment, type Environment } from "../../src/plan/environments.js";
import { hubSettingsJson } from "../../src/plan/hubSettings.js";
import {
  buildManifest,
  hubApiPublishFromUrl,
  ManifestInputError,
  parsePublish,
  renderManifest,
  type KeyMaterial,
  type Pod,
  type Secret,
} from "../../src/plan/manifest.js";
import { secretName } from "../../src/plan/names.js";
import { podmanObjectsOf } from "../../src/plan/podmanObjects.js";
import { repoRoot } from "../../src/paths.js";
import { KEY_A, KEY_B, KEY_C } from "./fixtureKeys.js";
import { ZENITH_CONFIG } from "./helpers.js";

/** Fixed inputs of the golden manifests. */
function keysFor(env: Environment): KeyMaterial {
  return {
    clientKey: KEY_A,
    ...(env.slurm === "pod" ? { hostKey: KEY_C } : { knownHosts: `slurm.example.org ${KEY_C.public}` }),
    ...(env.ingress === "zenith" ? { zenithKey: KEY_B, zenithConfig: ZENITH_CONFIG } : {}),
  };
}

const HUB_URL = "http://10.1.2.3:8081";

function manifestOf(env: Environment) {
  return buildManifest(env, { keys: keysFor(env), hubConnectUrl: env.slurm === "external" ? HUB_URL : "http://127.0.0.1:8081" });
}

const podOf = (env: Environment) => manifestOf(env).find((o): o is Pod => o.kind === "Pod")!;
const secretsOf = (env: Environment) => manifestOf(env).filter((o): o is Secret => o.kind === "Secret");
const hub = (pod: Pod) => pod.spec.containers.find((c) => c.name === "jupyterhub")!;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const decode = (s: string) => Buffer.from(s, "base64").toString("utf8");

describe("golden manifests", () => {
  for (const env of ENVIRONMENTS) {
    it(`${env.name} renders as test/golden/${env.name}.yaml`, () => {
      const text = renderManifest(manifestOf(env));
      const file = join(repoRoot(), "test", "golden", `${env.name}.yaml`);
      if (process.env.UPDATE_GOLDEN === "1") {
        mkdirSync(join(repoRoot(), "test", "golden"), { recursive: true });
        writeFileSync(file, text);
      }
      assert.equal(text, readFileSync(file, "utf8"), "run with UPDATE_GOLDEN=1 to accept the change");
    });
  }
});

describe("buildManifest", () => {
  for (const env of ENVIRONMENTS) {
    describe(env.name, () => {
      const objects = manifestOf(env);
      const pod = podOf(env);
      const rendered = renderManifest(objects);

      it("is valid Kubernetes: apiVersion v1, DNS-1123 names where Kubernetes wants them", () => {
        for (const o of objects) assert.equal(o.apiVersion, "v1");
        assert.ok(!rendered.includes("core/v1"));
        for (const v of pod.spec.volumes) assert.match(v.name, DNS1123_LABEL);
        for (const c of pod.spec.containers) assert.match(c.name, DNS1123_LABEL);
        assert.match(pod.spec.hostname, DNS1123_LABEL);
        for (const s of secretsOf(env)) for (const k of Object.keys(s.data)) assert.match(k, /^[-._a-zA-Z0-9]+$/);
      });

      it("parses back to the same objects", () => {
        const docs = parseAllDocuments(rendered);
        assert.ok(Array.isArray(docs));
        assert.deepEqual(docs.map((d) => d.toJS()), JSON.parse(JSON.stringify(objects)));
      });

      it("holds the environment's containers, in order", () => {
        assert.deepEqual(pod.spec.containers.map((c) => c.name), containersOf(env));
        assert.equal(pod.metadata.name, `jupyterhub-slurm-${env.name}`);
      });

      it("mounts only volumes the pod declares, secrets only the Secrets the manifest holds", () => {
        const declared = new Set(pod.spec.volumes.map((v) => v.name));
        assert.equal(declared.size, pod.spec.volumes.length);
        for (const c of pod.spec.containers) for (const m of c.volumeMounts) assert.ok(declared.has(m.name), `${c.name}: ${m.name}`);
        const secretNames = new Set(secretsOf(env).map((s) => s.metadata.name));
        for (const v of pod.spec.volumes) if (v.secret) assert.ok(secretNames.has(v.secret.secretName));
        // podman 4.3.1 segfaults in kube play on a secret volume without an explicit `optional`.
        for (const v of pod.spec.volumes) if (v.secret) assert.equal(v.secret.optional, false, `${v.name}: optional: false`);
        for (const v of pod.spec.volumes) if (v.persistentVolumeClaim) assert.match(v.persistentVolumeClaim.claimName, new RegExp(`_${env.name}$`));
        for (const c of pod.spec.containers) {
          for (const m of c.volumeMounts) {
            assert.ok(m.subPath === undefined || !m.subPath.startsWith("/"), "subPath is relative");
            const sec = pod.spec.volumes.find((v) => v.name === m.name)?.secret;
            if (sec && m.subPath) {
              const s = secretsOf(env).find((x) => x.metadata.name === sec.secretName)!;
              assert.ok(m.subPath in s.data, `${m.subPath} in ${sec.secretName}`);
            }
          }
        }
      });

      it("passes every used deploy-config key to the hub, optional ones as optional", () => {
        const refs = hub(pod).env.filter((e) => e.valueFrom).map((e) => e.valueFrom!.configMapKeyRef);
        assert.deepEqual(refs.map((r) => r.key), keysUsedBy(env).map((s) => s.key));
        for (const r of refs) {
          assert.equal(r.name, "deploy-config");
          assert.equal(r.optional, keysUsedBy(env).find((s) => s.key === r.key)!.usage(env) === "optional");
        }
        const fixed = Object.fromEntries(hub(pod).env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
        assert.deepEqual(fixed, {
          BRICS_ENV_SETTINGS: hubSettingsJson(env),
          NODE_OPTIONS: "--max-http-header-size=32768",
        });
      });

      it("publishes 8000 only without Zenith, and 8081 only for external Slurm", () => {
        const ports = Object.fromEntries((hub(pod).ports ?? []).map((p) => [p.containerPort, p]));
        if (env.ingress === "published-port") assert.deepEqual(ports[8000], { containerPort: 8000, hostIP: "127.0.0.1", hostPort: 8000, protocol: "TCP" });
        else assert.equal(ports[8000], undefined);
        if (env.slurm === "external") assert.deepEqual(ports[8081], { containerPort: 8081, hostIP: "10.1.2.3", hostPort: 8081, protocol: "TCP" });
        else assert.equal(ports[8081], undefined);
        for (const c of pod.spec.containers) if (c.name !== "jupyterhub") assert.equal(c.ports, undefined);
      });

      it("carries the key material unchanged in the Secrets", () => {
        const byName = Object.fromEntries(secretsOf(env).map((s) => [s.metadata.name, s.data]));
        const client = byName[secretName("ssh-client-key", env.name)]!;
        assert.equal(decode(client.ssh_key!), KEY_A.private);
        assert.equal(decode(client["ssh_key.pub"]!), KEY_A.public);
        assert.equal(decode(client.localhost_known_hosts!), `localhost,127.0.0.1,::1 ${KEY_A.public}`);
        assert.equal(decode(client.localhost_authorized_keys!), `from="localhost,127.0.0.1,::1" ${KEY_A.public}`);
        if (env.slurm === "pod") {
          assert.equal(decode(byName[secretName("ssh-host-key", env.name)]!.ssh_key!), KEY_C.private);
        } else {
          assert.equal(decode(byName[secretName("ssh-known-hosts", env.name)]!.ssh_known_hosts!), `slurm.example.org ${KEY_C.public}`);
        }
        if (env.ingress === "zenith") {
          assert.equal(decode(byName[secretName("ssh-zenith-client-key", env.name)]!.ssh_key!), KEY_B.private);
          assert.equal(decode(byName[secretName("zenith-client-config", env.name)]!["client.yaml"]!), ZENITH_CONFIG);
        }
      });

      it("renders byte-identically from the same input", () => {
        assert.equal(renderManifest(manifestOf(env)), rendered);
      });

      it("lists every podman object it creates", () => {
        const objs = podmanObjectsOf(env);
        assert.equal(objs.pod, pod.metadata.name);
        assert.deepEqual(objs.containers, pod.spec.containers.map((c) => `${pod.metadata.name}-${c.name}`));
        assert.deepEqual(objs.secrets, secretsOf(env).map((s) => s.metadata.name));
        const claims = pod.spec.volumes.flatMap((v) => (v.persistentVolumeClaim ? [v.persistentVolumeClaim.claimName] : []));
        assert.deepEqual(objs.volumes, [...claims, ...objs.secrets]);
      });
    });
  }

  it("gives the Slurm container the dev users and its host key", () => {
    const slurm = podOf(getEnvironment("dev_dummyauth")).spec.containers.find((c) => c.name === "slurm")!;
    assert.deepEqual(slurm.env.map((e) => e.name), ["DEPLOY_CONFIG_DEV_USERS"]);
    assert.ok(slurm.volumeMounts.some((m) => m.mountPath === "/etc/ssh/ssh_host_ed25519_key" && m.subPath === "ssh_key"));
    assert.ok(slurm.volumeMounts.some((m) => m.mountPath === "/home/jupyterspawner/.ssh/authorized_keys" && m.subPath === "localhost_authorized_keys"));
  });

  it("publishes the Hub API on hubConnectUrl's address only", () => {
    assert.deepEqual(hubApiPublishFromUrl("http://10.0.0.5:9000"), { hostIP: "10.0.0.5", hostPort: 9000, containerPort: 8081 });
    assert.deepEqual(hubApiPublishFromUrl("http://[fd00::1]:8081"), { hostIP: "fd00::1", hostPort: 8081, containerPort: 8081 });
    // A host name: on the address it resolves to (the manifest command looks it up)...
    assert.deepEqual(hubApiPublishFromUrl("http://hub.example.org", "10.0.0.7"), { hostIP: "10.0.0.7", hostPort: 80, containerPort: 8081 });
    assert.deepEqual(hubApiPublishFromUrl("https://hub.example.org", "10.0.0.7"), { hostIP: "10.0.0.7", hostPort: 443, containerPort: 8081 });
    // ...and never on every address because it does not resolve.
    assert.throws(() => hubApiPublishFromUrl("http://hub.example:8081"), (e: Error) => {
      assert.ok(e instanceof ManifestInputError);
      assert.match(e.message, /^hubConnectUrl "http:\/\/hub\.example:8081": hub\.example does not resolve to an address on this host/);
      assert.match(e.message, /Write that IP address in hubConnectUrl \(e\.g\. http:\/\/10\.0\.0\.5:8081\), add hub\.example to \/etc\/hosts, or publish it yourself with --publish <ip>:8081:8081/);
      return true;
    });
    const env = getEnvironment("dev_dummyauth_extslurm");
    const ports = (opts: object) => hub(buildManifest(env, { keys: keysFor(env), hubConnectUrl: "http://hub.example:8081", ...opts }).find((o): o is Pod => o.kind === "Pod")!).ports;
    assert.throws(() => ports({}), /does not resolve/);
    assert.deepEqual(ports({ hubConnectAddress: "10.0.0.7" })?.find((p) => p.containerPort === 8081)?.hostIP, "10.0.0.7");
    // Every address only when the user says so.
    assert.deepEqual(ports({ publish: ["0.0.0.0:8081:8081"] })?.find((p) => p.containerPort === 8081)?.hostIP, "0.0.0.0");
  });

  it("lets publish entries replace or add ports", () => {
    const env = getEnvironment("dev_dummyauth_extslurm");
    const pod = buildManifest(env, { keys: keysFor(env), publish: ["192.168.0.2:18081:8081", "9000:8000"] }).find((o): o is Pod => o.kind === "Pod")!;
    assert.deepEqual(hub(pod).ports, [
      { containerPort: 8000, hostIP: "0.0.0.0", hostPort: 9000, protocol: "TCP" },
      { containerPort: 8081, hostIP: "192.168.0.2", hostPort: 18081, protocol: "TCP" },
    ]);
    assert.deepEqual(parsePublish("[::1]:8081:8081"), { hostIP: "::1", hostPort: 8081, containerPort: 8081 });
    for (const bad of ["8081", "a:1:2", "1.2.3.4:0:8081", "1.2.3.4:8081:70000", "host:1:2"]) {
      assert.throws(() => parsePublish(bad), ManifestInputError, bad);
    }
  });

  it("says which key material is missing", () => {
    const prod = getEnvironment("prod");
    assert.throws(() => buildManifest(prod, { keys: { clientKey: KEY_A }, hubConnectUrl: HUB_URL }), /ssh_known_hosts/);
    assert.throws(() => buildManifest(prod, { keys: { clientKey: KEY_A, knownHosts: "x" }, hubConnectUrl: HUB_URL }), /Zenith client SSH key/);
    assert.throws(() => buildManifest(getEnvironment("dev_dummyauth"), { keys: { clientKey: KEY_A } }), /host key/);
    assert.throws(() => buildManifest(getEnvironment("dev_dummyauth_extslurm"), { keys: { clientKey: KEY_A, knownHosts: "x" } }), /hubConnectUrl/);
  });

  it("takes the Zenith client image and restart policy from the caller", () => {
    const env = getEnvironment("prod");
    const pod = buildManifest(env, { keys: keysFor(env), hubConnectUrl: HUB_URL, zenithClientImage: "mirror.local/zenith-client:1", restartPolicy: "Never" }).find((o): o is Pod => o.kind === "Pod")!;
    const client = pod.spec.containers.find((c) => c.name === "zenith-client")!;
    assert.equal(client.image, "mirror.local/zenith-client:1");
    // The tunnel command is given, not left to the image's default (older images only print help).
    assert.deepEqual(client.args, ["zenith-client", "connect"]);
    assert.equal(pod.spec.restartPolicy, "Never");
  });
});
