/** The podman version table and the manifest rewrite for old podman, without podman. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { adaptManifest, needsAdaptation, parseVersion, quirksFor } from "../../src/effects/podmanQuirks.js";

describe("podman versions", () => {
  test("parses client/server version strings", () => {
    assert.deepEqual(parseVersion("4.3.1"), { major: 4, minor: 3, patch: 1, raw: "4.3.1" });
    assert.equal(parseVersion("5.6.0-dev").minor, 6);
    assert.throws(() => parseVersion("banana"));
  });
  test("4.3.1 needs every workaround, 5.6 none", () => {
    const old = quirksFor(parseVersion("4.3.1"));
    assert.equal(needsAdaptation(old), true);
    assert.equal(old.kubePlayPublish, false);
    assert.equal(old.kubeDownRemovesSecrets, false);
    const mid = quirksFor(parseVersion("4.4.4"));
    assert.equal(needsAdaptation(mid), false);
    assert.equal(mid.kubeDownForceRemovesVolumes, false);
    assert.equal(quirksFor(parseVersion("4.6.0")).kubeDownForceRemovesVolumes, true);
    const now = quirksFor(parseVersion("5.6.1"));
    assert.ok(Object.values(now).every((v) => v === true));
  });
});

describe("adaptManifest for podman < 4.4", () => {
  const quirks = quirksFor(parseVersion("4.3.1"));
  const docs = [
    { apiVersion: "v1", kind: "Secret", metadata: { name: "s" }, data: { k: Buffer.from("private\n").toString("base64"), "k.pub": Buffer.from("pub\n").toString("base64") } },
    { apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: { name: "vol" } },
    {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "p" },
      spec: {
        containers: [
          {
            name: "c",
            volumeMounts: [
              { name: "sec", mountPath: "/keys" },
              { name: "sec", mountPath: "/srv/key", subPath: "k" },
              { name: "data", mountPath: "/etc/app", subPath: "etc/app", readOnly: true },
              { name: "data", mountPath: "/whole" },
            ],
          },
        ],
        volumes: [
          { name: "sec", secret: { secretName: "s", defaultMode: 0o600, optional: false } },
          { name: "data", persistentVolumeClaim: { claimName: "vol" } },
        ],
      },
    },
  ];
  const adapted = adaptManifest(docs, {
    quirks,
    secretDir: "/d/.podman-play/secrets",
    volumeMountpoint: (n) => (n === "vol" ? "/var/lib/containers/storage/volumes/vol/_data" : undefined),
    pathExists: (p) => p.endsWith("etc/app"),
  });

  test("Secrets become decoded files with defaultMode; their documents are dropped", () => {
    assert.deepEqual(adapted.replacedSecrets, ["s"]);
    assert.deepEqual(
      adapted.files.map((f) => [f.path, f.content.toString(), f.mode]),
      [
        ["/d/.podman-play/secrets/s--sec/k", "private\n", 0o600],
        ["/d/.podman-play/secrets/s--sec/k.pub", "pub\n", 0o600],
      ],
    );
    assert.ok(!adapted.docs.some((d) => d["kind"] === "Secret"));
  });

  test("PVC documents for existing volumes are dropped", () => {
    assert.deepEqual(adapted.droppedClaims, ["vol"]);
    assert.ok(!adapted.docs.some((d) => d["kind"] === "PersistentVolumeClaim"));
  });

  test("subPath mounts become hostPath mounts; whole-volume mounts stay", () => {
    const pod = adapted.docs.find((d) => d["kind"] === "Pod") as any;
    const mounts = pod.spec.containers[0].volumeMounts;
    const vols = new Map<string, any>(pod.spec.volumes.map((v: any) => [v.name, v]));
    const hostPathOf = (mountPath: string) => vols.get(mounts.find((m: any) => m.mountPath === mountPath).name).hostPath;
    assert.deepEqual(hostPathOf("/keys"), { path: "/d/.podman-play/secrets/s--sec", type: "Directory" });
    assert.deepEqual(hostPathOf("/srv/key"), { path: "/d/.podman-play/secrets/s--sec/k", type: "File" });
    assert.deepEqual(hostPathOf("/etc/app"), { path: "/var/lib/containers/storage/volumes/vol/_data/etc/app" });
    assert.equal(vols.get(mounts.find((m: any) => m.mountPath === "/whole").name).persistentVolumeClaim.claimName, "vol");
    assert.ok(mounts.every((m: any) => m.subPath === undefined));
    assert.equal(mounts.find((m: any) => m.mountPath === "/etc/app").readOnly, true);
    // The input is not modified.
    assert.equal((docs[2] as any).spec.containers[0].volumeMounts[1].subPath, "k");
  });

  test("items select and rename keys", () => {
    const r = adaptManifest(
      [
        docs[0],
        { kind: "Pod", metadata: { name: "p" }, spec: { containers: [{ name: "c", volumeMounts: [{ name: "x", mountPath: "/x" }] }], volumes: [{ name: "x", secret: { secretName: "s", items: [{ key: "k.pub", path: "id.pub", mode: 0o644 }] } }] } },
      ],
      { quirks, secretDir: "/s", volumeMountpoint: () => undefined, pathExists: () => false },
    );
    assert.deepEqual(r.files.map((f) => [f.path, f.mode]), [["/s/s--x/id.pub", 0o644]]);
  });

  test("a subPath into a volume that does not exist yet is refused with advice", () => {
    assert.throws(
      () => adaptManifest([docs[2]], { quirks, secretDir: "/s", volumeMountpoint: () => undefined, pathExists: () => false }),
      /must exist before kube play.*brics-env resources/,
    );
  });

  test("newer podman gets the manifest unchanged", () => {
    const r = adaptManifest(docs, { quirks: quirksFor(parseVersion("5.2.0")), secretDir: "/s", volumeMountpoint: () => "/m", pathExists: () => true });
    assert.deepEqual(r.docs, docs);
    assert.deepEqual(r.files, []);
  });
});
