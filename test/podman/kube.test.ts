/**
 * kube play / down through src/effects/podman.ts with a hand-written manifest that uses what the
 * real one uses: a Secret mounted whole and by subPath with defaultMode, a PVC mounted by subPath,
 * a port published through hostPort. On podman < 4.4 this exercises the manifest adaptation.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { stringify } from "yaml";
import {
  containerLogs,
  imageId,
  kubeDown,
  kubePlay,
  podExists,
  podInspect,
  podman,
  podmanAllowFailure,
  podmanInfo,
  readInspection,
  secretLs,
  volumeCreate,
  volumeExists,
  volumeImport,
  volumeMountpoints,
} from "../../src/effects/podman.js";
import { volumeTarStream } from "../../src/effects/volumeArchive.js";
import { busyboxMissingReason, leftovers, makeBusyboxImage, removeImage, uniqueId } from "./helpers.js";

const id = uniqueId("bricsenvtestkube");
const image = `localhost/brics-env-test-busybox:${id}`;
const pod = `${id}-pod`;
const volume = `${id}_root`;
const secret = `${id}-key`;
let work: string;

function manifest(keyText: string): string {
  const docs = [
    {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: secret },
      type: "Opaque",
      data: {
        ssh_key: Buffer.from(keyText).toString("base64"),
        "ssh_key.pub": Buffer.from("ssh-ed25519 AAAA test\n").toString("base64"),
      },
    },
    {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: pod },
      spec: {
        containers: [
          {
            name: "main",
            image,
            command: [
              "sh",
              "-c",
              "stat -c 'MODE %a %n' /keys/ssh_key /srv/ssh_key; echo CONTENT $(cat /srv/ssh_key); " +
                "echo CONF $(cat /etc/app/app.conf); echo hello > /var/log/app/out.log; ls /etc/app; sleep 3600",
            ],
            ports: [{ containerPort: 8000, hostPort: 18000 + (process.pid % 1000), hostIP: "127.0.0.1" }],
            volumeMounts: [
              { name: "key", mountPath: "/keys", readOnly: true },
              { name: "key", mountPath: "/srv/ssh_key", subPath: "ssh_key" },
              { name: "root", mountPath: "/etc/app", subPath: "etc/app", readOnly: true },
              { name: "root", mountPath: "/var/log/app", subPath: "var/log/app" },
            ],
          },
        ],
        volumes: [
          { name: "key", secret: { secretName: secret, defaultMode: 0o600, optional: false } },
          { name: "root", persistentVolumeClaim: { claimName: volume } },
        ],
      },
    },
  ];
  return docs.map((d) => stringify(d)).join("---\n");
}

async function waitForLog(container: string, pattern: RegExp): Promise<string> {
  let logs = "";
  for (let i = 0; i < 50; i++) {
    logs = await containerLogs(container).catch(() => "");
    if (pattern.test(logs)) return logs;
    await sleep(200);
  }
  return logs;
}

describe("kube play and down", { skip: busyboxMissingReason() }, () => {
  before(async () => {
    work = await mkdtemp(join(tmpdir(), "brics-env-test-kube-"));
    await makeBusyboxImage(image);
    const tree = join(work, "tree");
    await mkdir(join(tree, "etc", "app"), { recursive: true });
    await mkdir(join(tree, "var", "log", "app"), { recursive: true });
    await writeFile(join(tree, "etc", "app", "app.conf"), "from-volume\n");
    await volumeCreate(volume);
    await volumeImport(volume, volumeTarStream(tree, { uid: 0, gid: 0 }, ["etc/app/app.conf", "var/log/app"]));
  });
  after(async () => {
    await kubeDown({ force: true, podName: pod, volumes: [volume], secrets: [secret], workDir: join(work, "play") }).catch(() => undefined);
    await removeImage(image);
    await rm(work, { recursive: true, force: true });
  });

  test("play mounts Secret keys decoded, by subPath, with defaultMode, and PVC subPaths", async () => {
    const file = join(work, "combined.yaml");
    await writeFile(file, manifest("first-key"));
    const result = await kubePlay(file, { workDir: join(work, "play") });
    const info = await podmanInfo();
    if (!info.quirks.secretVolumesWork) assert.notEqual(result.playedFile, file, "old podman plays an adapted copy");
    const logs = await waitForLog(`${pod}-main`, /CONTENT/);
    assert.match(logs, /CONTENT first-key/);
    assert.match(logs, /CONF from-volume/);
    assert.match(logs, /MODE 600 \/srv\/ssh_key/);
    assert.match(logs, /MODE 600 \/keys\/ssh_key/);
    assert.equal((await podInspect(pod))?.state, "Running");
  });

  test("one podman inspect tells the pod, images and volumes apart as asking each kind does", async () => {
    const wanted = { pod, images: [image, `${image}-missing`], imageLabels: ["org.brics-env.none"], volumes: [volume, `${volume}_missing`] };
    for (const asked of [wanted, { ...wanted, pod: `${pod}-missing` }]) {
      const printed = await podmanAllowFailure(["inspect", asked.pod, ...asked.images, ...asked.volumes]);
      const found = readInspection(asked, printed);
      assert.ok(found, `podman ${(await podmanInfo()).version.raw}'s output is read:\n${printed.stderr}`);
      assert.deepEqual(found.pod, await podInspect(asked.pod));
      assert.deepEqual([...found.images], [[image, { id: await imageId(image), labels: {} }]]);
      assert.deepEqual([...found.volumes], [[volume, (await volumeMountpoints()).get(volume)]]);
    }
  });

  test("replaying after down (no force) picks up changed Secret content and keeps the volume", async () => {
    const down = await kubeDown({ force: false, podName: pod, volumes: [volume], secrets: [secret], workDir: join(work, "play") });
    assert.equal(down.podRemoved, true);
    assert.deepEqual(down.keptVolumes, [volume]);
    assert.equal(await podExists(pod), false);
    const file = join(work, "combined.yaml");
    await writeFile(file, manifest("second-key"));
    await kubePlay(file, { workDir: join(work, "play") });
    const logs = await waitForLog(`${pod}-main`, /CONTENT/);
    assert.match(logs, /CONTENT second-key/);
    // The log file written by the first run is still in the volume.
    assert.equal(await volumeExists(volume), true);
  });

  test("secretLs sees a Secret by name", async () => {
    const name = `${id}-plain`;
    // podman wants a real pipe or a file for the value; Node's stdio pipes are sockets.
    const valueFile = join(work, "secret-value");
    await writeFile(valueFile, "value");
    await podman(["secret", "create", name, valueFile]);
    assert.ok((await secretLs()).includes(name));
    await podman(["secret", "rm", name]);
    assert.ok(!(await secretLs()).includes(name));
  });

  test("down --force leaves no pod, container, volume or Secret", async () => {
    const down = await kubeDown({ force: true, podName: pod, volumes: [volume], secrets: [secret], workDir: join(work, "play") });
    assert.equal(down.podRemoved, true);
    assert.deepEqual(down.removedVolumes, [volume]);
    assert.equal((await secretLs()).includes(secret), false);
    assert.deepEqual(await leftovers(id), []);
  });
});
