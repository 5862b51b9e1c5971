/**
 * The files of a deploy directory, per environment, and who makes each one
 * (docs/ARCHITECTURE.md, "Deploy directory").
 */
import type { Environment } from "./environments.js";
import { COMBINED_MANIFEST_FILE, DEPLOY_CONFIGMAP_FILE } from "./names.js";

/** Lets files of the deploy directory be symbolic links to files outside it (`1`); refused otherwise. */
export const FOLLOW_OUTSIDE_LINKS_VARIABLE = "BRICS_ENV_FOLLOW_OUTSIDE_LINKS";

export type DeployFileName =
  | typeof DEPLOY_CONFIGMAP_FILE
  | "ssh_client_key"
  | "ssh_client_key.pub"
  | "ssh_host_key"
  | "ssh_host_key.pub"
  | "ssh_known_hosts"
  | "ssh_zenith_client_key"
  | "ssh_zenith_client_key.pub"
  | "zenith_client_config.yaml"
  | typeof COMBINED_MANIFEST_FILE;

/**
 * - user:      the user provides it; `check` fails without it;
 * - init:      `brics-env init` writes a starting point the user may edit;
 * - generated: `brics-env manifest` creates it when missing and keeps it afterwards;
 * - output:    `brics-env manifest` (re)writes it every time.
 */
export type FileSource = "user" | "init" | "generated" | "output";

export type FileKind =
  | "configmap"
  | "ssh-private-key"
  | "ssh-public-key"
  | "ssh-known-hosts"
  | "zenith-client-config"
  | "manifest";

export interface DeployFile {
  readonly name: DeployFileName;
  readonly source: FileSource;
  readonly kind: FileKind;
  /** For a key file: the other half of the pair. */
  readonly pairedWith?: DeployFileName;
  /** Private keys and anything holding secrets are written 0600. */
  readonly secret: boolean;
  /** What the file is for, in one or two sentences. */
  readonly purpose: string;
  /** How a user makes it, as shell commands to run in the deploy directory (user files only). */
  readonly howToMake?: string;
}

function keygen(file: string, comment: string): string {
  return `ssh-keygen -t ed25519 -f "${file}" -N "" -C "${comment}"`;
}

const CLIENT_KEY_PURPOSE =
  "Passwordless SSH key pair that JupyterHub uses to log in to the Slurm host as the jupyterspawner service account.";

/** The files of `env`'s deploy directory, the ConfigMap first and the manifest last. */
export function deployFilesFor(env: Environment): DeployFile[] {
  const files: DeployFile[] = [
    {
      name: "deploy-configmap.yaml",
      source: "init",
      kind: "configmap",
      secret: env.auth === "dummy",
      purpose:
        "The deploy ConfigMap: deployment-specific settings passed to the containers as environment variables.",
      howToMake: `brics-env init ${env.name}`,
    },
  ];

  if (env.slurm === "pod") {
    files.push(
      {
        name: "ssh_client_key",
        source: "generated",
        kind: "ssh-private-key",
        pairedWith: "ssh_client_key.pub",
        secret: true,
        purpose: `${CLIENT_KEY_PURPOSE} Its public half is authorised in the Slurm container.`,
      },
      {
        name: "ssh_client_key.pub",
        source: "generated",
        kind: "ssh-public-key",
        pairedWith: "ssh_client_key",
        secret: false,
        purpose: "Public half of ssh_client_key.",
      },
      {
        name: "ssh_host_key",
        source: "generated",
        kind: "ssh-private-key",
        pairedWith: "ssh_host_key.pub",
        secret: true,
        purpose: "SSH host key of the Slurm container's sshd (host keys are never baked into the image).",
      },
      {
        name: "ssh_host_key.pub",
        source: "generated",
        kind: "ssh-public-key",
        pairedWith: "ssh_host_key",
        secret: false,
        purpose: "Public half of ssh_host_key; JupyterHub trusts it for localhost.",
      },
    );
  } else {
    const make = keygen("ssh_client_key", "JupyterHub-Slurm client key");
    files.push(
      {
        name: "ssh_client_key",
        source: "user",
        kind: "ssh-private-key",
        pairedWith: "ssh_client_key.pub",
        secret: true,
        purpose:
          `${CLIENT_KEY_PURPOSE} Authorise its public half for jupyterspawner on the host named by sshHostname ` +
          "(for example in ~jupyterspawner/.ssh/authorized_keys there).",
        howToMake: make,
      },
      {
        name: "ssh_client_key.pub",
        source: "user",
        kind: "ssh-public-key",
        pairedWith: "ssh_client_key",
        secret: false,
        purpose: "Public half of ssh_client_key.",
        howToMake: make,
      },
      {
        name: "ssh_known_hosts",
        source: "user",
        kind: "ssh-known-hosts",
        secret: false,
        purpose:
          "Known-hosts file (sshd(8) format) with an entry for sshHostname and the SSH server's host public key, " +
          "so that JupyterHub verifies the Slurm host before running anything on it.",
        howToMake:
          "printf '%s ' \"<sshHostname>\" > ssh_known_hosts && cat /etc/ssh/ssh_host_ed25519_key.pub >> ssh_known_hosts" +
          "   # on the SSH server; or: ssh-keyscan -t ed25519 <sshHostname> > ssh_known_hosts, then verify the fingerprint",
      },
    );
  }

  if (env.ingress === "zenith") {
    const make = keygen("ssh_zenith_client_key", "JupyterHub Zenith client key");
    files.push(
      {
        name: "ssh_zenith_client_key",
        source: "user",
        kind: "ssh-private-key",
        pairedWith: "ssh_zenith_client_key.pub",
        secret: true,
        purpose:
          "Passwordless SSH key pair of the Zenith client, already associated with a subdomain on the Zenith " +
          "server (given when reserving the name, or registered with `zenith-client init`).",
        howToMake: make,
      },
      {
        name: "ssh_zenith_client_key.pub",
        source: "user",
        kind: "ssh-public-key",
        pairedWith: "ssh_zenith_client_key",
        secret: false,
        purpose: "Public half of ssh_zenith_client_key.",
        howToMake: make,
      },
      {
        name: "zenith_client_config.yaml",
        source: "user",
        kind: "zenith-client-config",
        secret: true,
        purpose: "Zenith client configuration: the Zenith server address and the OIDC settings of the tunnel.",
        howToMake: "cp examples/zenith_client_config.yaml zenith_client_config.yaml   # then edit the values",
      },
    );
  }

  files.push({
    name: COMBINED_MANIFEST_FILE,
    source: "output",
    kind: "manifest",
    secret: true,
    purpose: "The Kubernetes manifest (Secrets and the Pod) that podman kube play runs.",
    howToMake: `brics-env manifest ${env.name} <deploy_dir>`,
  });
  return files;
}

/** Key pairs `manifest` generates when missing, as [private, public] file names. */
export function generatedKeyPairs(env: Environment): Array<{ private: DeployFileName; public: DeployFileName }> {
  return deployFilesFor(env)
    .filter((f) => f.source === "generated" && f.kind === "ssh-private-key" && f.pairedWith !== undefined)
    .map((f) => ({ private: f.name, public: f.pairedWith as DeployFileName }));
}
