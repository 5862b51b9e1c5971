import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { parseDocument } from "yaml";
import { KEY_SPECS } from "../../src/plan/deployConfig.js";
import { ENVIRONMENTS, getEnvironment } from "../../src/plan/environments.js";
import {
  initInstructions,
  placeholderKeys,
  renderDeployConfigDoc,
  renderExampleConfigMap,
  renderInitConfigMap,
  renderZenithClientConfigExample,
} from "../../src/plan/initTemplate.js";
import { validateDeployDir } from "../../src/plan/validate.js";
import { repoRoot } from "../../src/paths.js";
import { goodFilesFor } from "./helpers.js";

const PASSWORD = "k9Jr2mXw8QpL5vTz3NbY7cHd";

/** Compares a committed generated file with the generator; UPDATE_GOLDEN=1 rewrites it. */
function assertCommitted(relative: string, text: string): void {
  const file = join(repoRoot(), relative);
  if (process.env.UPDATE_GOLDEN === "1") {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
  }
  assert.equal(readFileSync(file, "utf8"), text, `${relative} differs from the generator; run with UPDATE_GOLDEN=1 to regenerate`);
}

const validate = (envName: string, configMapText: string, files?: Record<string, string>) => {
  const env = getEnvironment(envName);
  return validateDeployDir(env, { dir: "/d", configMapText, files: files ?? goodFilesFor(env) }).problems;
};

describe("init template", () => {
  it("works as written for dev_dummyauth, without a single remark", () => {
    const text = renderInitConfigMap(getEnvironment("dev_dummyauth"), { dummyAuthPassword: PASSWORD });
    assert.deepEqual(validate("dev_dummyauth", text, {}), []);
    assert.deepEqual(initInstructions(getEnvironment("dev_dummyauth")), []);
    assert.match(text, /dummyAuthPassword: "k9Jr2mXw8QpL5vTz3NbY7cHd"/);
    assert.match(text, /devUsers: "alice.proj1 alice.proj2 bob.proj1"/);
    assert.match(text, /sshHostname: "localhost"/);
    assert.match(text, /hubConnectUrl: "http:\/\/127.0.0.1:8081"/);
  });

  for (const env of ENVIRONMENTS) {
    it(`${env.name}: fails check exactly on the placeholders, and says what to edit and add`, () => {
      const text = renderInitConfigMap(env, { dummyAuthPassword: PASSWORD });
      const doc = parseDocument(text);
      assert.deepEqual(doc.errors, []);
      const problems = validate(env.name, text);
      const errorKeys = problems.filter((p) => p.severity === "error").map((p) => p.key);
      assert.deepEqual(errorKeys, placeholderKeys(env));
      for (const p of problems.filter((x) => x.severity === "error")) assert.match(p.message, /placeholder/);
      assert.deepEqual(problems.filter((p) => p.severity === "warning"), []);
      const steps = initInstructions(env).join("\n");
      for (const key of placeholderKeys(env)) assert.match(steps, new RegExp(`set ${key} `));
      if (env.slurm === "external") assert.match(steps, /add ssh_client_key and ssh_client_key.pub .*ssh-keygen/);
      if (env.ingress === "zenith") assert.match(steps, /add zenith_client_config.yaml/);
      // every key the environment uses is there, with its description
      for (const spec of KEY_SPECS) {
        const usage = spec.usage(env);
        if (usage === "required") assert.match(text, new RegExp(`^  ${spec.key}: "`, "m"));
        if (usage === "optional") assert.match(text, new RegExp(`^  # ${spec.key}: "`, "m"));
        if (usage === "ignored" || usage === "unused") assert.doesNotMatch(text, new RegExp(`${spec.key}:`));
      }
    });
  }

  it("placeholders are needed where the user must supply values", () => {
    assert.deepEqual(placeholderKeys(getEnvironment("dev_dummyauth_extslurm")), ["sshHostname", "hubConnectUrl"]);
    assert.deepEqual(placeholderKeys(getEnvironment("dev_realauth")), ["oidcServer", "bricsPlatform", "jwtAudience"]);
    assert.deepEqual(placeholderKeys(getEnvironment("prod")), ["sshHostname", "hubConnectUrl", "oidcServer", "bricsPlatform", "jwtAudience"]);
  });
});

describe("committed generated files", () => {
  for (const env of ENVIRONMENTS) {
    it(`examples/${env.name}/deploy-configmap.yaml matches the generator and passes check`, () => {
      const text = renderExampleConfigMap(env);
      assertCommitted(`examples/${env.name}/deploy-configmap.yaml`, text);
      const problems = validate(env.name, text);
      if (env.auth === "dummy") {
        // The example password is public, so check refuses it: a copied example cannot be deployed as it is.
        assert.deepEqual(problems.map((p) => [p.severity, p.key]), [["error", "dummyAuthPassword"]], JSON.stringify(problems));
      } else {
        assert.deepEqual(problems, []);
      }
    });
  }

  it("examples/zenith_client_config.yaml matches the generator and passes check", () => {
    const text = renderZenithClientConfigExample();
    assertCommitted("examples/zenith_client_config.yaml", text);
    const env = getEnvironment("prod");
    assert.deepEqual(validate("prod", renderExampleConfigMap(env), { ...goodFilesFor(env), "zenith_client_config.yaml": text }), []);
  });

  it("docs/deploy-config.md matches the generator", () => {
    const text = renderDeployConfigDoc();
    assertCommitted("docs/deploy-config.md", text);
    for (const spec of KEY_SPECS) assert.ok(text.includes(`\`${spec.envVar}\``));
  });
});
