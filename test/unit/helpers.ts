/** Builders of deploy-directory contents shared by the unit tests. */
import { KEY_SPECS } from "../../src/plan/deployConfig.js";
import type { Environment } from "../../src/plan/environments.js";
import { KEY_A, KEY_B, KEY_C } from "./fixtureKeys.js";

/** Values that pass every check, per key. */
export const GOOD_VALUES: Record<string, string> = {
  logLevel: "INFO",
  baseUrl: "/",
  devUsers: "alice.proj1 alice.proj2 bob.proj1",
  // Random, and in no document: the documented example is refused.
  dummyAuthPassword: "hT4pX9vQ2mZr7LkB1sWc8dNy6EjF3uGa",
  sshHostname: "localhost",
  slurmSpawnerWrappersBin: "/opt/jupyter/slurmspawner_wrappers/bin",
  condaPrefixDir: "/opt/jupyter/miniforge3",
  jupyterDataDir: "/opt/jupyter/jupyter_data",
  hubConnectUrl: "http://127.0.0.1:8081",
  oidcServer: "https://keycloak.example.org/realms/brics",
  bricsPlatform: "brics.aip1.notebooks.shared",
  jwtAudience: "zenith-jupyter",
};

export const EXTERNAL_VALUES: Record<string, string> = {
  sshHostname: "slurm.example.org",
  hubConnectUrl: "http://10.1.2.3:8081",
};

/** The required keys of `env` with good values (external-Slurm values where Slurm is external; else the schema's example). */
export function goodValuesFor(env: Environment): Record<string, string> {
  const out: Record<string, string> = {};
  for (const spec of KEY_SPECS) {
    if (spec.usage(env) !== "required") continue;
    out[spec.key] = (env.slurm === "external" ? EXTERNAL_VALUES[spec.key] : undefined) ?? GOOD_VALUES[spec.key] ?? spec.example;
  }
  return out;
}

/** A deploy ConfigMap with every value double-quoted (JSON strings are valid YAML). */
export function configMapText(data: Record<string, string>, raw: Record<string, string> = {}): string {
  const lines = ["apiVersion: v1", "kind: ConfigMap", "metadata:", "  name: deploy-config", "data:"];
  for (const [k, v] of Object.entries(data)) lines.push(`  ${k}: ${JSON.stringify(v)}`);
  for (const [k, v] of Object.entries(raw)) lines.push(`  ${k}: ${v}`);
  return lines.join("\n") + "\n";
}

export const ZENITH_CONFIG = [
  "serverAddress: zenith-sshd.example.org",
  "authOidcIssuer: https://keycloak.example.org/realms/brics",
  "authOidcClientId: jupyter",
  "authOidcClientSecret: not-a-real-secret",
  "debug: false",
  "",
].join("\n");

/** Deploy-directory files (other than the ConfigMap) that make `env` valid. */
export function goodFilesFor(env: Environment): Record<string, string> {
  const files: Record<string, string> = {};
  if (env.slurm === "external") {
    files["ssh_client_key"] = KEY_A.private;
    files["ssh_client_key.pub"] = KEY_A.public;
    files["ssh_known_hosts"] = `slurm.example.org ${KEY_C.public}`;
  }
  if (env.ingress === "zenith") {
    files["ssh_zenith_client_key"] = KEY_B.private;
    files["ssh_zenith_client_key.pub"] = KEY_B.public;
    files["zenith_client_config.yaml"] = ZENITH_CONFIG;
  }
  return files;
}
