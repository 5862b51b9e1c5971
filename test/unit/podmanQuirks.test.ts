/** The podman version table and the manifest rewrite for old podman: pure, no podman needed. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ENVIRONMENTS } from "../../src/plan/environments.js";
import { buildManifest, type ManifestObject, type Pod, type Secret } from "../../src/plan/manifest.js";
import { adaptManifest, describeQuirks, needsAdaptation, parseVersion, playsSecrets, quirksFor } from "../../src/plan/podmanQuirks.js";

describe("podman versions", () => {
  test("parses client/server version strings", () => {
    assert.deepEqual(parseVersion("4.3.1"), { major: 4, minor: 3, patch: 1, raw: "4.3.1" });
    assert.equal(parseVersion("5.6.0-dev").minor, 6);
    assert.equal(parseVersion("v4.9").patch, 0);
    assert.throws(() => parseVersion("banana"));
  });
  test("4.3.1 needs every workaround, 5.6 none", () => {
    const old = quirksFor(parseVersion("4.3.1"));
    assert.equal(needsAdaptation(old), true);
    assert.ok(Object.values(old).every((v) => v === false));
    const mid = quirksFor(parseVersion("4.4.4"));
    assert.equal(needsAdaptation(mid), false);
    assert.equal(mid.kubeDownForceRemovesVolumes, false);
    assert.equal(quirksFor(parseVersion("4.6.0")).kubeDownForceRemovesVolumes, true);
    assert.equal(quirksFor(parseVersion("4.3.9")).quadletKube, false);
    assert.equal(mid.quadletKube, true, "Quadlet reads .kube files from 4.4");
    const now = quirksFor(parseVersion("5.6.1"));
    assert.ok(Object.values(now).every((v) => v === true));
  });
  test("doctor's description names the workarounds of old podman", () => {
    const lines = describeQuirks(quirksFor(parseVersion("4.3.1")), true);
    assert.ok(lines.some((l) => /^workaround: Secret volumes are broken/.test(l)));
    assert.ok(lines.some((l) => /podman machine ssh/.test(l)));
    assert.ok(lines.includes("workaround: no Quadlet; brics-env service writes a unit that runs brics-env up/down"));
    assert.ok(describeQuirks(quirksFor(parseVersion("5.6.1")), false).every((l) => l.startsWith("ok: ")));
  });
});

describe("adaptManifest for podman < 4.4", () => {
  const quirks = quirksFor(parseVersion("4.3.1"));
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const secret: Secret = { apiVersion: "v1", kind: "Secret", metadata: { name: "s" }, type: "Opaque", data: { k: b64("private\n"), "k.pub": b64("pub\n") } };
  const pod: Pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "p" },
    spec: {
      hostname: "p",
      restartPolicy: "Always",
      containers: [
        {
          name: "jupyterhub",
          image: "i",
          env: [],
          volumeMounts: [
            { name: "sec", mountPath: "/keys", readOnly: true },
            { name: "sec", mountPath: "/srv/key", subPath: "k", readOnly: false },
            { name: "data", mountPath: "/etc/app", subPath: "etc/app", readOnly: true },
            { name: "data", mountPath: "/whole", readOnly: false },
          ],
        },
      ],
      volumes: [
        { name: "sec", secret: { secretName: "s", defaultMode: 0o600, optional: false } },
        { name: "data", persistentVolumeClaim: { claimName: "vol" } },
      ],
    },
  };
  const objects: ManifestObject[] = [secret, pod];
  const snapshot = structuredClone(objects);
  const adapted = adaptManifest(objects, {
    quirks,
    secretDir: "/d/.podman-play/secrets",
    volumeMountpoint: (n) => (n === "vol" ? "/var/lib/containers/storage/volumes/vol/_data" : undefined),
    pathExists: (p) => p.endsWith("etc/app"),
  });

  test("Secrets become decoded files with defaultMode; the Secret objects are dropped", () => {
    assert.deepEqual(adapted.replacedSecrets, ["s"]);
    assert.deepEqual(
      adapted.files.map((f) => [f.path, f.content.toString(), f.mode]),
      [
        ["/d/.podman-play/secrets/s--sec/k", "private\n", 0o600],
        ["/d/.podman-play/secrets/s--sec/k.pub", "pub\n", 0o600],
      ],
    );
    assert.ok(!adapted.objects.some((o) => o.kind === "Secret"));
  });

  test("subPath mounts become hostPath mounts; whole-volume mounts stay", () => {
    const played = adapted.objects.find((o): o is Pod => o.kind === "Pod")!;
    const mounts = played.spec.containers[0]!.volumeMounts;
    const vols = new Map(played.spec.volumes.map((v) => [v.name, v]));
    const volumeOf = (mountPath: string) => vols.get(mounts.find((m) => m.mountPath === mountPath)!.name)!;
    assert.deepEqual(volumeOf("/keys").hostPath, { path: "/d/.podman-play/secrets/s--sec", type: "Directory" });
    assert.deepEqual(volumeOf("/srv/key").hostPath, { path: "/d/.podman-play/secrets/s--sec/k", type: "File" });
    assert.deepEqual(volumeOf("/etc/app").hostPath, { path: "/var/lib/containers/storage/volumes/vol/_data/etc/app" });
    assert.equal(volumeOf("/whole").persistentVolumeClaim?.claimName, "vol");
    assert.equal(volumeOf("/keys").secret, undefined);
    assert.ok(mounts.every((m) => m.subPath === undefined));
    assert.equal(mounts.find((m) => m.mountPath === "/etc/app")!.readOnly, true);
    assert.equal(new Set(played.spec.volumes.map((v) => v.name)).size, played.spec.volumes.length, "volume names stay unique");
  });

  test("a path missing in the volume is created as a directory", () => {
    const r = adaptManifest([pod], { quirks, secretDir: "/s", volumeMountpoint: () => "/m", pathExists: () => false });
    const played = r.objects[0] as Pod;
    assert.ok(played.spec.volumes.some((v) => v.hostPath?.path === "/m/etc/app" && v.hostPath.type === "DirectoryOrCreate"));
  });

  test("the input objects are not modified", () => {
    assert.deepEqual(objects, snapshot);
  });

  test("a subPath into a volume that does not exist yet is refused with advice", () => {
    assert.throws(
      () => adaptManifest([pod], { quirks, secretDir: "/s", volumeMountpoint: () => undefined, pathExists: () => false }),
      /must exist before kube play.*brics-env resources/,
    );
  });

  test("newer podman gets the manifest unchanged", () => {
    const r = adaptManifest(objects, { quirks: quirksFor(parseVersion("5.2.0")), secretDir: "/s", volumeMountpoint: () => "/m", pathExists: () => true });
    assert.deepEqual(r.objects, objects);
    assert.deepEqual(r.files, []);
  });
});

describe("every environment's manifest, adapted for podman 4.3", () => {
  const quirks = quirksFor(parseVersion("4.3.1"));
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const pair = (name: string) => ({ private: `-----BEGIN OPENSSH PRIVATE KEY-----\n${name}\n-----END OPENSSH PRIVATE KEY-----\n`, public: `ssh-ed25519 ${b64(name)} ${name}` });
  for (const env of ENVIRONMENTS) {
    test(env.name, () => {
      const objects = buildManifest(env, {
        keys: {
          clientKey: pair("client"),
          ...(env.slurm === "pod" ? { hostKey: pair("host") } : { knownHosts: "slurm.example.org ssh-ed25519 AAAA\n" }),
          ...(env.ingress === "zenith" ? { zenithKey: pair("zenith"), zenithConfig: "serverAddress: z.example.org\n" } : {}),
        },
        hubConnectUrl: env.slurm === "pod" ? "http://127.0.0.1:8081" : "http://10.0.0.5:8081",
      });
      const secrets = objects.filter((o): o is Secret => o.kind === "Secret");
      const adapted = adaptManifest(objects, { quirks, secretDir: "/d/s", volumeMountpoint: (n) => `/v/${n}`, pathExists: () => true });
      assert.deepEqual(adapted.objects.map((o) => o.kind), ["Pod"]);
      assert.deepEqual(adapted.replacedSecrets, secrets.map((s) => s.metadata.name));
      // So `up` need not ask podman for Secrets an earlier play left: this play creates none.
      assert.equal(playsSecrets(quirks), false);
      assert.equal(playsSecrets(quirksFor(parseVersion("4.4.0"))), true);
      const pod = adapted.objects[0] as Pod;
      const volumes = new Map(pod.spec.volumes.map((v) => [v.name, v]));
      assert.equal(volumes.size, pod.spec.volumes.length, "volume names are unique");
      for (const c of pod.spec.containers) {
        for (const m of c.volumeMounts) {
          assert.equal(m.subPath, undefined, `${c.name} ${m.mountPath} keeps no subPath`);
          const v = volumes.get(m.name);
          assert.ok(v?.hostPath !== undefined, `${c.name} ${m.mountPath} is a hostPath mount`);
          assert.equal(v.secret, undefined);
        }
      }
      // Every key of every Secret mounted by the pod lands in a file, decoded.
      for (const s of secrets) {
        for (const [key, value] of Object.entries(s.data)) {
          const file = adapted.files.find((f) => f.path.startsWith(`/d/s/${s.metadata.name}--`) && f.path.endsWith(`/${key}`));
          assert.equal(file?.content.toString("utf8"), Buffer.from(value, "base64").toString("utf8"), `${s.metadata.name} ${key}`);
        }
      }
      // Volume sub-paths point into the named volume.
      const hub = pod.spec.containers.find((c) => c.name === "jupyterhub")!;
      const etc = hub.volumeMounts.find((m) => m.mountPath === "/etc/jupyterhub")!;
      assert.equal(volumes.get(etc.name)?.hostPath?.path, `/v/jupyterhub_root_${env.name}/etc/jupyterhub`);
      assert.equal(etc.readOnly, true);
    });
  }
});
