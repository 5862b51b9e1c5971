import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { parseDocument } from "yaml";
import { ACCOUNT_NAME, checkValue, KEY_SPECS, keysUsedBy } from "../../src/plan/deployConfig.js";
import { ENVIRONMENTS, getEnvironment, type Environment } from "../../src/plan/environments.js";
import { HUB_SETTINGS_VAR, hubSettingsData, hubSettingsJson } from "../../src/plan/hubSettings.js";
import { BRICS_ENV_SERVICE, HUB_SERVICES, METRICS_SERVICE } from "../../src/plan/hubServices.js";
import { volumesOf } from "../../src/plan/volumes.js";
import { renderExampleConfigMap } from "../../src/plan/initTemplate.js";
import { buildManifest, type Container, type Pod } from "../../src/plan/manifest.js";
import { repoRoot } from "../../src/paths.js";
import { KEY_A, KEY_B, KEY_C } from "./fixtureKeys.js";
import { ZENITH_CONFIG } from "./helpers.js";

function hubContainer(env: Environment): Container {
  const keys = {
    clientKey: KEY_A,
    ...(env.slurm === "pod" ? { hostKey: KEY_C } : { knownHosts: `slurm.example.org ${KEY_C.public}` }),
    ...(env.ingress === "zenith" ? { zenithKey: KEY_B, zenithConfig: ZENITH_CONFIG } : {}),
  };
  const pod = buildManifest(env, { keys, hubConnectUrl: "http://10.1.2.3:8081" }).find((o): o is Pod => o.kind === "Pod")!;
  return pod.spec.containers.find((c) => c.name === "jupyterhub")!;
}

/**
 * The hub container's environment as podman gives it when the committed example ConfigMap is
 * played with the environment's manifest: fixed values as they are, ConfigMap references
 * resolved (optional keys the example leaves out stay unset).
 */
function hubEnvironmentWithExample(env: Environment): Record<string, string> {
  // The generator's text, which initTemplate.test.ts keeps equal to examples/<env>/deploy-configmap.yaml.
  const example = parseDocument(renderExampleConfigMap(env)).toJS() as { data: Record<string, string> };
  const out: Record<string, string> = {};
  for (const e of hubContainer(env).env) {
    if (e.value !== undefined) out[e.name] = e.value;
    const ref = e.valueFrom?.configMapKeyRef;
    if (ref !== undefined && ref.key in example.data) out[e.name] = example.data[ref.key]!;
  }
  return out;
}

describe("the hub's settings data (BRICS_ENV_SETTINGS)", () => {
  for (const env of ENVIRONMENTS) {
    it(`${env.name}: names the environment and every key the hub container is given, from KEY_SPECS`, () => {
      const data = hubSettingsData(env);
      assert.deepEqual([data.environment, data.auth, data.slurm], [env.name, env.auth, env.slurm]);
      assert.deepEqual(
        data.keys.map((k) => [k.key, k.env, k.required, k.default]),
        keysUsedBy(env).map((s) => [s.key, s.envVar, s.usage(env) === "required", s.defaultValue]),
      );
      const container = hubContainer(env);
      const fromConfigMap = container.env.filter((e) => e.valueFrom !== undefined).map((e) => e.name);
      assert.deepEqual(fromConfigMap, data.keys.map((k) => k.env), "the manifest passes exactly the keys the data describes");
      assert.equal(container.env.find((e) => e.name === HUB_SETTINGS_VAR)?.value, hubSettingsJson(env));
      assert.deepEqual(JSON.parse(hubSettingsJson(env)), JSON.parse(JSON.stringify(data)));
    });
  }

  it("gives the hub devUsers' rule for account names, as a pattern Python reads the same way", () => {
    for (const env of ENVIRONMENTS) {
      const rule = hubSettingsData(env).accountName;
      assert.equal(rule.maxLength, ACCOUNT_NAME.maxLength);
      const re = new RegExp(rule.pattern);
      // The same verdicts as devUsers' check, name by name.
      for (const good of ["alice.proj1", "a.b", "bob_x-1.p-2_3"]) {
        assert.ok(re.test(good), good);
        assert.deepEqual(checkValue("devUsers", good), [], good);
      }
      for (const bad of ["Alice.proj1", "alice", "1a.b", "a.b.c", "$(id).x", "a;b.c"]) {
        assert.ok(!re.test(bad), bad);
        assert.equal(checkValue("devUsers", bad)[0]?.severity, "error", bad);
      }
      assert.ok(!re.test("alice.proj1 true; touch /tmp/x; echo"));
    }
  });

  it("gives every optional key a default and tells the hub how to convert each value", () => {
    for (const s of KEY_SPECS) {
      for (const env of ENVIRONMENTS) if (s.usage(env) === "optional") assert.ok(s.defaultValue !== undefined, `${s.key} is optional without a default`);
    }
    const types = Object.fromEntries(hubSettingsData(ENVIRONMENTS[0]!).keys.map((k) => [k.key, k.type]));
    assert.equal(types["devUsers"], "words");
    assert.equal(types["pollInterval"], "seconds");
    assert.equal(types["logLevel"], "text");
  });

  it("names the services to register, each with its scopes and a token file on the hub's data volume", () => {
    for (const env of ENVIRONMENTS) {
      const { services } = hubSettingsData(env);
      assert.deepEqual(services, HUB_SERVICES.map((s) => ({ name: s.name, scopes: [...s.scopes], tokenFile: s.tokenFile })));
    }
    const hubVolume = volumesOf(getEnvironment("prod")).find((v) => v.kind === "jupyterhub_root")!;
    const dataDir = hubVolume.mounts.find((m) => m.mountPath === "/srv/jupyterhub" && !m.readOnly);
    assert.ok(dataDir, "/srv/jupyterhub is a writable mount of jupyterhub_root");
    for (const s of HUB_SERVICES) assert.equal(dirname(s.tokenFile), dataDir.mountPath, `${s.name}'s token survives a new container`);
    assert.deepEqual(METRICS_SERVICE.scopes, ["read:metrics"], "the scraper's token reads metrics and nothing else");
    // status reads; down --stop-servers stops servers; nothing else (no admin, no tokens, no users' files).
    assert.deepEqual(BRICS_ENV_SERVICE.scopes.filter((s) => !/^(list|read):/.test(s)), ["servers"], "brics-env reads, and may only stop servers");
  });

  // test/python reads this file to run the hub module in each environment as the pod would.
  it("test/golden/hub_environment.json holds each environment's hub container environment with its example ConfigMap", () => {
    const text = `${JSON.stringify(Object.fromEntries(ENVIRONMENTS.map((env) => [env.name, hubEnvironmentWithExample(env)])), null, 2)}\n`;
    const file = join(repoRoot(), "test", "golden", "hub_environment.json");
    if (process.env.UPDATE_GOLDEN === "1") writeFileSync(file, text);
    assert.equal(readFileSync(file, "utf8"), text, "run with UPDATE_GOLDEN=1 to accept the change");
  });
});
