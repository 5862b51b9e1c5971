/**
 * Text generated from the deploy-config schema: the commented deploy-configmap.yaml that
 * `brics-env init` writes, the example ConfigMaps under examples/, the Zenith client example and
 * the key reference in docs/deploy-config.md. One generator, so none of them can drift from the
 * schema (unit tests compare the committed files with the generator output).
 */
import { IN_POD_SLURM_VALUES, KEY_SPECS, type DeployConfigKey, type KeySpec, type KeyUsage } from "./deployConfig.js";
import { deployFilesFor } from "./deployFiles.js";
import { ENVIRONMENTS, type Environment } from "./environments.js";
import { DEPLOY_CONFIGMAP_FILE, DEPLOY_CONFIGMAP_NAME } from "./names.js";

const WIDTH = 96;

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter((w) => w !== "")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  if (line !== "") lines.push(line);
  return lines;
}

const comment = (text: string, indent = "  ") => wrap(text, WIDTH - indent.length - 2).map((l) => `${indent}# ${l}`);

/** A double-quoted YAML scalar (JSON's escapes are a subset of YAML's). */
const quoted = (value: string) => JSON.stringify(value);

interface TemplateValue {
  readonly value: string;
  /** Why this value, or what to do with it; printed under the description. */
  readonly note?: string;
}

/** Placeholders fail `check` (deployConfig rejects `<…>`), so an unedited file cannot be deployed. */
const PLACEHOLDERS: Partial<Record<DeployConfigKey, string>> = {
  sshHostname: "<host name of the Slurm login node>",
  hubConnectUrl: "<http://ADDRESS:8081 where compute nodes reach this host>",
  oidcServer: "<URL of the OIDC issuer (iss claim)>",
  bricsPlatform: "<BriCS platform name in the projects claim>",
  jwtAudience: "<audience of the identity tokens (aud claim)>",
};

const EXTERNAL_EXAMPLES: Partial<Record<DeployConfigKey, string>> = {
  sshHostname: "slurm.example.org",
  hubConnectUrl: "http://192.0.2.10:8081",
};

const DEV_USERS = "alice.proj1 alice.proj2 bob.proj1";

function fixedByPod(env: Environment, key: DeployConfigKey): string | undefined {
  return env.slurm === "pod" ? IN_POD_SLURM_VALUES[key] : undefined;
}

function initValue(env: Environment, spec: KeySpec, password: string): TemplateValue {
  const fixed = fixedByPod(env, spec.key);
  if (fixed !== undefined) return { value: fixed, note: "Fixed by the Slurm container in the pod: leave as it is." };
  switch (spec.key) {
    case "logLevel":
      return { value: "INFO" };
    case "baseUrl":
      return { value: "/" };
    case "devUsers":
      return { value: DEV_USERS, note: "Made-up users for development; change them as you like." };
    case "dummyAuthPassword":
      return { value: password, note: "Generated at random by brics-env init." };
    case "slurmSpawnerWrappersBin":
    case "condaPrefixDir":
    case "jupyterDataDir":
      return { value: IN_POD_SLURM_VALUES[spec.key]!, note: "Where brics_slurm installs it; check the path on your Slurm host." };
    default: {
      const placeholder = PLACEHOLDERS[spec.key];
      if (placeholder !== undefined) return { value: placeholder, note: "REPLACE this placeholder: check fails until you do." };
      return { value: spec.defaultValue ?? spec.example };
    }
  }
}

function exampleValue(env: Environment, spec: KeySpec): TemplateValue {
  const fixed = fixedByPod(env, spec.key);
  if (fixed !== undefined) return { value: fixed, note: "Fixed by the Slurm container in the pod." };
  if (spec.key === "devUsers") return { value: DEV_USERS };
  if (spec.key === "baseUrl") return { value: env.ingress === "zenith" ? spec.example : "/" };
  return { value: (env.slurm === "external" ? EXTERNAL_EXAMPLES[spec.key] : undefined) ?? spec.defaultValue ?? spec.example };
}

function renderConfigMap(env: Environment, header: string[], valueOf: (spec: KeySpec) => TemplateValue): string {
  // The first header line is prose and wrapped; the others are kept whole (they hold commands).
  const head = header.flatMap((h, i) => (i === 0 ? comment(h, "") : [`# ${h}`]));
  const out: string[] = [...head, "apiVersion: v1", "kind: ConfigMap", "metadata:", `  name: ${DEPLOY_CONFIGMAP_NAME}`, "data:"];
  const blocks: string[][] = [];
  for (const spec of KEY_SPECS) {
    const usage: KeyUsage = spec.usage(env);
    if (usage !== "required" && usage !== "optional") continue;
    const { value, note } = valueOf(spec);
    const block = [...comment(spec.description), ...comment(`Expected: ${spec.expected}.`)];
    if (note !== undefined) block.push(...comment(note));
    if (usage === "optional") {
      block.push(...comment(`Optional; defaults to ${spec.defaultValue === "" ? "empty (none)" : spec.defaultValue}. Uncomment to change.`));
      block.push(`  # ${spec.key}: ${quoted(value)}`);
    } else {
      block.push(`  ${spec.key}: ${quoted(value)}`);
    }
    blocks.push(block);
  }
  out.push(...blocks.flatMap((b, i) => (i === 0 ? b : ["", ...b])));
  return out.join("\n") + "\n";
}

/** The deploy-configmap.yaml `brics-env init <env>` writes. `dummyAuthPassword` is used by dummy-auth environments. */
export function renderInitConfigMap(env: Environment, opts: { dummyAuthPassword: string }): string {
  return renderConfigMap(
    env,
    [
      `Deploy ConfigMap for ${env.name}: ${env.summary}.`,
      `Written by \`brics-env init ${env.name}\`. Every value must be a quoted string.`,
      "Key reference: docs/deploy-config.md.",
      `Check it with: brics-env check ${env.name} <deploy_dir>`,
    ],
    (spec) => initValue(env, spec, opts.dummyAuthPassword),
  );
}

/** Keys that `init` leaves as placeholders for `env`: the user must set these. */
export function placeholderKeys(env: Environment): DeployConfigKey[] {
  return KEY_SPECS.filter((s) => s.usage(env) === "required" && fixedByPod(env, s.key) === undefined && PLACEHOLDERS[s.key] !== undefined).map(
    (s) => s.key,
  );
}

/**
 * What the user still has to do after `init`, one step a line: keys to edit and files to add,
 * each with the command that makes it. Empty when the environment works as written.
 */
export function initInstructions(env: Environment): string[] {
  const steps: string[] = [];
  for (const key of placeholderKeys(env)) {
    const spec = KEY_SPECS.find((s) => s.key === key)!;
    steps.push(`edit ${DEPLOY_CONFIGMAP_FILE}: set ${key} (${spec.expected}), replacing the <…> placeholder`);
  }
  if (env.slurm === "external") {
    steps.push(`edit ${DEPLOY_CONFIGMAP_FILE}: check slurmSpawnerWrappersBin, condaPrefixDir and jupyterDataDir against your Slurm host`);
  }
  for (const file of deployFilesFor(env)) {
    if (file.source !== "user") continue;
    if (file.kind === "ssh-public-key") continue; // made together with its private half
    const make = file.howToMake !== undefined ? `: ${file.howToMake}` : "";
    steps.push(`add ${file.name}${file.pairedWith ? ` and ${file.pairedWith}` : ""} (${file.purpose})${make}`);
  }
  return steps;
}

/** Content of examples/<env>/deploy-configmap.yaml. */
export function renderExampleConfigMap(env: Environment): string {
  return renderConfigMap(
    env,
    [
      `Example deploy ConfigMap for ${env.name}: ${env.summary}.`,
      "Generated from the deploy-config schema (src/plan/deployConfig.ts).",
      `For your own, start from: brics-env init ${env.name}`,
      `Deploy with: podman kube play --configmap <deploy_dir>/${DEPLOY_CONFIGMAP_FILE} <deploy_dir>/combined.yaml`,
    ],
    (spec) => exampleValue(env, spec),
  );
}

/** Content of examples/zenith_client_config.yaml. */
export function renderZenithClientConfigExample(): string {
  return [
    "# Example Zenith client configuration: copy it to <deploy_dir>/zenith_client_config.yaml and edit.",
    "# Used by dev_realauth_zenithclient and prod. Any setting of `zenith-client connect` may be given,",
    "# in camelCase (serverAddress) or snake_case (server_address), except those the manifest sets: the",
    "# tunnel forwards to JupyterHub's proxy (forwardToHost, forwardToPort) and the SSH key is",
    "# ssh_zenith_client_key (sshIdentityPath); `brics-env check` refuses them here.",
    "",
    "# SSHD host of the Zenith server that the tunnel connects to (required).",
    "serverAddress: zenith-sshd.example.org",
    "",
    "# OpenID Connect settings of the tunnel: users log in at this issuer, and the identity token",
    "# reaches JupyterHub in the X-Auth-Id-Token header. Set all three, or none.",
    "authOidcIssuer: https://keycloak.example.org/realms/brics",
    "authOidcClientId: jupyterhub",
    "authOidcClientSecret: replace-with-the-client-secret",
    "",
    "# Verbose logging of the Zenith client.",
    "debug: false",
    "",
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------
// docs/deploy-config.md

const USAGE_MARK: Record<KeyUsage, string> = { required: "required", optional: "optional", ignored: "ignored", unused: "–" };

/** Markdown-escapes prose (so `<USER>` is not taken for HTML, nor `_`/`*` for emphasis). */
const md = (s: string) => s.replace(/[\\*_<>|[\]`]/g, "\\$&").replaceAll("\n", " ");
/** A code span inside a table cell, where `|` still needs escaping. */
const code = (s: string) => `\`${s.replaceAll("|", "\\|")}\``;

/** Markdown table of the keys: env var, where used, rule. Embeddable in README.md. */
export function renderKeyTable(): string {
  const rows = [
    "| Key | Environment variable | Applies to | Expected value | Example |",
    "| --- | --- | --- | --- | --- |",
    ...KEY_SPECS.map(
      (s) => `| ${code(s.key)} | ${code(s.envVar)} | ${md(s.appliesTo)} | ${md(s.expected)} | ${code(s.example)} |`,
    ),
  ];
  return rows.join("\n") + "\n";
}

/** Markdown matrix: which environment requires, accepts or ignores which key. */
export function renderUsageMatrix(): string {
  const rows = [
    `| Key | ${ENVIRONMENTS.map((e) => `\`${e.name}\``).join(" | ")} |`,
    `| --- |${ENVIRONMENTS.map(() => " --- |").join("")}`,
    ...KEY_SPECS.map((s) => `| \`${s.key}\` | ${ENVIRONMENTS.map((e) => USAGE_MARK[s.usage(e)]).join(" | ")} |`),
  ];
  return rows.join("\n") + "\n";
}

/** The whole of docs/deploy-config.md. */
export function renderDeployConfigDoc(): string {
  const parts = [
    "# Deploy ConfigMap reference",
    "",
    "<!-- Generated from src/plan/deployConfig.ts by renderDeployConfigDoc(); a unit test keeps this file in step. -->",
    "",
    `Deployment-specific settings reach the containers through a Kubernetes ConfigMap named \`${DEPLOY_CONFIGMAP_NAME}\`, kept in`,
    `\`<deploy_dir>/${DEPLOY_CONFIGMAP_FILE}\` and passed to \`podman kube play --configmap\`. Each key becomes an`,
    "environment variable of the JupyterHub container (and `devUsers` also of the in-pod Slurm container).",
    "`brics-env init <env>` writes a commented starting point; `brics-env check <env> <deploy_dir>` validates it",
    "together with the other files of the deploy directory, and reports every problem at once.",
    "",
    "Every value must be a YAML string: quote numbers and words such as `yes`, which YAML would",
    "otherwise read as numbers or booleans. Values end up in shell commands run over SSH and in",
    "JupyterHub's Python configuration, so each key accepts only the characters its use needs.",
    "",
    "## Keys",
    "",
    renderKeyTable(),
    "## Which environment uses which key",
    "",
    "*required*: must be set; *optional*: may be left out (a default applies); *ignored*: accepted, but",
    "not passed to any container (`check` warns); *–*: not used (`check` warns when set).",
    "",
    renderUsageMatrix(),
    "## Descriptions",
    "",
    ...KEY_SPECS.flatMap((s) => [
      `### \`${s.key}\``,
      "",
      ...wrap(md(s.description), 100),
      "",
      `- Environment variable: \`${s.envVar}\``,
      `- Applies to: ${md(s.appliesTo)}`,
      `- Expected: ${md(s.expected)}`,
      `- Example: \`${s.example}\``,
      ...(s.defaultValue !== undefined ? [`- Default: ${s.defaultValue === "" ? "empty (none)" : `\`${s.defaultValue}\``}`] : []),
      "",
    ]),
  ];
  return parts.join("\n");
}
