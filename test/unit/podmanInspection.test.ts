import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { readInspection, type ObjectsWanted } from "../../src/effects/podman.js";

const WANTED: ObjectsWanted = {
  pod: "jupyterhub-slurm-dev_dummyauth",
  images: ["localhost/brics_jupyterhub:dev-latest", "localhost/brics_slurm:dev-latest"],
  imageLabels: ["org.brics-env.build-key"],
  volumes: ["jupyterhub_root_dev_dummyauth", "slurm_root_dev_dummyauth"],
};

// Shaped as podman 4.3.1 prints them (fields cut down to those read, plus one that is not).
const POD = {
  Id: "0e32",
  Name: WANTED.pod,
  State: "Running",
  InfraContainerID: "9f32",
  Containers: [{ Id: "9f32", Name: "0e32-infra", State: "running" }],
  InfraConfig: { PortBindings: { "8000/tcp": [{ HostIp: "127.0.0.1", HostPort: "8000" }] } },
};
const image = (id: string, labels: Record<string, string> | null) => ({ Id: id, RepoTags: [], Labels: labels, Size: 1 });
const volume = (name: string) => ({ Name: name, Driver: "local", Mountpoint: `/var/lib/containers/storage/volumes/${name}/_data` });
const missing = (...names: string[]) => names.map((n) => `Error: inspecting object: no such object: "${n}"`).join("\n") + "\n";

describe("one podman inspect of a pod, images and volumes", () => {
  it("reads each object by the name it was asked under, the missing ones named on stderr", () => {
    const stdout = JSON.stringify([image("aaa", { "org.brics-env.build-key": "k1", other: "x" }), image("bbb", null), volume(WANTED.volumes[1]!)]);
    const found = readInspection(WANTED, { exitCode: 125, stdout, stderr: missing(WANTED.pod, WANTED.volumes[0]!) });
    assert.ok(found);
    assert.equal(found.pod, undefined);
    assert.deepEqual([...found.images], [
      ["localhost/brics_jupyterhub:dev-latest", { id: "aaa", labels: { "org.brics-env.build-key": "k1" } }],
      ["localhost/brics_slurm:dev-latest", { id: "bbb", labels: {} }],
    ]);
    assert.deepEqual([...found.volumes], [["slurm_root_dev_dummyauth", "/var/lib/containers/storage/volumes/slurm_root_dev_dummyauth/_data"]]);
  });

  it("reads a pod as pod inspect does", () => {
    const stdout = JSON.stringify([POD, image("aaa", {}), image("bbb", {}), volume(WANTED.volumes[0]!), volume(WANTED.volumes[1]!)]);
    const found = readInspection(WANTED, { exitCode: 0, stdout, stderr: "" });
    assert.deepEqual(found?.pod, {
      name: WANTED.pod,
      state: "Running",
      containers: [{ name: "0e32-infra", state: "running" }],
      ports: [{ hostIP: "127.0.0.1", hostPort: 8000, containerPort: 8000 }],
    });
    assert.equal(found?.volumes.size, 2);
  });

  it("nothing there at all", () => {
    const all = [WANTED.pod, ...WANTED.images, ...WANTED.volumes];
    const found = readInspection(WANTED, { exitCode: 125, stdout: "[]", stderr: missing(...all) });
    assert.deepEqual(found, { pod: undefined, images: new Map(), volumes: new Map() });
  });

  it("gives up (the caller asks each kind apart) where the output cannot be told apart for certain", () => {
    const five = [POD, image("aaa", {}), image("bbb", {}), volume(WANTED.volumes[0]!), volume(WANTED.volumes[1]!)];
    const cases: Array<[string, { exitCode: number; stdout: string; stderr: string }]> = [
      ["another error", { exitCode: 125, stdout: JSON.stringify(five.slice(1)), stderr: missing(WANTED.pod) + "Error: database is locked\n" }],
      ["an object fewer than found", { exitCode: 0, stdout: JSON.stringify(five.slice(1)), stderr: "" }],
      ["a failure naming nothing missing", { exitCode: 125, stdout: JSON.stringify(five), stderr: "" }],
      ["a missing name never asked", { exitCode: 125, stdout: JSON.stringify(five.slice(1)), stderr: missing("something-else") }],
      ["a container where a volume was asked", { exitCode: 0, stdout: JSON.stringify([...five.slice(0, 4), { Id: "c1", Name: WANTED.volumes[1], State: { Status: "running" } }]), stderr: "" }],
      ["an image where the pod was asked", { exitCode: 0, stdout: JSON.stringify([image("ccc", {}), ...five.slice(1)]), stderr: "" }],
      ["not JSON", { exitCode: 0, stdout: "[{", stderr: "" }],
    ];
    for (const [what, printed] of cases) assert.equal(readInspection(WANTED, printed), undefined, what);
  });
});
