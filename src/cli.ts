#!/usr/bin/env node
/**
 * brics-env: deploys the BriCS JupyterHub + Slurm environments with podman kube play.
 * Exit codes: 0 success, 1 failure (including validation errors), 2 usage errors.
 */
import { resolve } from "node:path";
import { ArgumentError, parseCommandLine, type CommandSpec, type OptionValues, type ProgramSpec } from "./cliArgs.js";
import { ENV_NAMES, UnknownEnvironmentError } from "./plan/environments.js";
import { packageVersion } from "./paths.js";
import { parsePositiveInt, ReportedFailure, resolveDeployDir, resolveEnv, UsageError } from "./commands/common.js";

// Each command's module is imported only when that command runs: a process pays at start-up
// only for what it uses (`list` never loads the YAML parser, `check` never loads podman's code).

const ENVS = ENV_NAMES.join(", ");

const IMAGE_VARS = `  BRICS_ENV_JUPYTERHUB_BASE_IMAGE   base of the hub image (a mirror, or a locally built equivalent)
  BRICS_ENV_SLURM_BASE_IMAGE        base of the Slurm image
  BRICS_ENV_ZENITH_CLIENT_IMAGE     Zenith client image (Zenith environments)
  BRICS_ENV_PIP_INDEX_URL           Python package index mirror used in image builds (a user name
                                    and password in it reach pip as a build secret, never a build
                                    argument, a command line or the image)
  BRICS_ENV_PYTHON_PACKAGES         directory of Python packages (git clones at a tag, wheels,
                                    sdists, source trees) installed offline instead of from the index
  BRICS_ENV_BRICSAUTHENTICATOR_GIT_URL, BRICS_ENV_SLURMSPAWNER_WRAPPERS_GIT_URL
                                    where dev clones come from (a local path works)
  BRICS_ENV_BRICSAUTHENTICATOR_REF, BRICS_ENV_SLURMSPAWNER_WRAPPERS_REF
                                    tag, branch or commit to build instead of the pin in argfile.conf
                                    (dev clone and index requirement)
  SETUPTOOLS_SCM_PRETEND_VERSION_FOR_<NAME>
                                    the version of a package that takes it from git, when its source
                                    is neither a clone nor an sdist
  BRICS_ENV_JUPYTER_USER_ENV        Jupyter user environment of the Slurm image: miniforge (default,
                                    conda-forge) or debian (JupyterLab from Debian 13 packages)
  BRICS_ENV_MINIFORGE_DOWNLOAD_URL  mirror of Miniforge's release downloads
  JUPYTERUSER, JUPYTERUSER_UID, JUPYTERGROUP, JUPYTERGROUP_GID
                                    owner of jupyterhub_root_<env> (default root 0:0)
  SLURMUSER, SLURMUSER_UID, SLURMGROUP, SLURMGROUP_GID
                                    owner of slurm_root_<env> (default slurm 64030:64030)`;

const DEPLOY_DIR_VARS = `  BRICS_ENV_FOLLOW_OUTSIDE_LINKS=1  let deploy-directory files be symbolic links to files outside it`;

const PODMAN_VARS = `  BRICS_ENV_PODMAN                  podman executable (default: podman on PATH)
  CONTAINERS_CONF                   podman's containers.conf; replaces every other one (brics-env
                                    does not need it once doctor's drop-in is installed)`;

/** Rejects a malformed --publish before anything runs (a usage error, exit 2). */
async function checkPublish(entries: readonly string[] | undefined): Promise<void> {
  if (entries === undefined || entries.length === 0) return;
  const { ManifestInputError, parsePublish } = await import("./plan/manifest.js");
  for (const e of entries) {
    try {
      parsePublish(e);
    } catch (err) {
      if (err instanceof ManifestInputError) throw new UsageError(`--publish: ${err.message}`);
      throw err;
    }
  }
}

const str = (opts: OptionValues, name: string): string | undefined => {
  const v = opts[name];
  return typeof v === "string" ? v : undefined;
};
const list = (opts: OptionValues, name: string): string[] | undefined => {
  const v = opts[name];
  return Array.isArray(v) ? v : undefined;
};
const flag = (opts: OptionValues, name: string): boolean => opts[name] === true;

const ENV_ARG = { name: "env", required: true, description: `environment (${ENVS})` } as const;
const DEPLOY_DIR_ARG = { name: "deploy_dir", required: true, description: "deploy directory" } as const;
const DEFAULT_DEPLOY_DIR_ARG = { name: "deploy_dir", required: false, description: "deploy directory (default: deploy/<env> in the repository)" } as const;

const COMMANDS: readonly CommandSpec[] = [
  {
    name: "list",
    description: "List the environments: what each runs and which files you provide.",
    options: [{ name: "json", description: "print JSON (name, summary, stage, slurm, auth, ingress, pod, containers, images, volumes, userFiles)" }],
    after: "\nReads nothing; writes nothing.\n\nExamples:\n  brics-env list\n  brics-env list --json | jq -r '.[].name'",
    run: async (_, opts) => (await import("./commands/list.js")).listCommand({ json: flag(opts, "json") }),
  },
  {
    name: "init",
    description: "Create a deploy directory with a commented deploy-configmap.yaml. Never overwrites a file.",
    args: [ENV_ARG, DEFAULT_DEPLOY_DIR_ARG],
    after: `
Writes <deploy_dir>/deploy-configmap.yaml (0600 for dummy-auth environments: it holds
dummyAuthPassword, a random 48-character base64 password). An existing file is kept.
Then prints what you must still add: placeholder values to edit and, for environments
with external Slurm or Zenith, files such as ssh_client_key, ssh_known_hosts,
ssh_zenith_client_key and zenith_client_config.yaml.

Examples:
  brics-env init dev_dummyauth
  brics-env init prod /srv/brics/deploy`,
    run: async ([envName, dir]) => {
      const env = resolveEnv(envName!);
      const { initCommand } = await import("./commands/init.js");
      await initCommand(env, resolveDeployDir(env, dir));
    },
  },
  {
    name: "check",
    description: "Validate a deploy directory for an environment; report every problem at once.",
    args: [ENV_ARG, DEPLOY_DIR_ARG],
    after: `
Reads deploy-configmap.yaml and the files the environment needs (SSH keys, ssh_known_hosts,
zenith_client_config.yaml), and checks that key pairs match (running ssh-keygen -y on PEM keys,
which do not carry their public half). zenith_client_config.yaml is read as the Zenith client
reads it (camelCase or snake_case keys); the settings the manifest makes (forwardToHost,
forwardToPort, sshIdentityPath) are errors there. Only regular files of UTF-8 text up to 1 MiB
(what Kubernetes takes in a ConfigMap or Secret) are read; a symbolic link out of the directory
only when BRICS_ENV_FOLLOW_OUTSIDE_LINKS=1. Writes nothing; never calls podman. Each problem
names the file, line, key, what is wrong and what is expected. Warnings are printed but do not
fail. Exit 1 when there is an error.

Environment:
${DEPLOY_DIR_VARS}
${IMAGE_VARS.split("\n").filter((l) => /USER|GROUP/.test(l)).join("\n")}

Examples:
  brics-env check dev_dummyauth deploy/dev_dummyauth`,
    run: async ([envName, dir]) => {
      const env = resolveEnv(envName!);
      const { checkDeployDir } = await import("./commands/check.js");
      await checkDeployDir(env, resolveDeployDir(env, dir));
    },
  },
  {
    name: "resources",
    description: "Clone dev repositories, build the images and create the volumes an environment needs.",
    args: [ENV_ARG],
    options: [{ name: "no-build", description: "skip image builds and dev clones (volumes only)" }],
    after: `
First checks the base images (and the Zenith client image) and pulls any that is absent, so an
offline machine fails at once, saying what to do (mirror, brics-env bootstrap-bases, overrides).
Dev stage: clones bricsauthenticator into brics_jupyterhub/_dev_build_data/ and
slurmspawner_wrappers into brics_slurm/_dev_build_data/ at the pinned ref (or the one the
*_REF variables name) unless a clone is already there (your local changes are then built in;
a clone at another ref is said so). Copies BRICS_ENV_PYTHON_PACKAGES into
<image>/_build_data/python_packages/ (created empty otherwise) and build_helpers/ into
<image>/_build_helpers/. Works out the version of each package that takes it from git
(setuptools-scm) from its clone with git describe (on tag vX.Y.Z: X.Y.Z; past it:
X.Y.(Z+1).devN+g<commit>; uncommitted changes add .d<date>) and hands it to the build; refuses
such a package that is neither a clone nor an sdist, naming it. Says which package, version and
ref each image is built from, and labels the image with them (org.brics-env.package.*; see
brics-env status --json). Builds localhost/brics_jupyterhub and localhost/brics_slurm
(:dev-latest for dev, :latest for prod) with pins from <image>/argfile.conf, concurrently,
showing build progress on stderr; a build whose inputs (Containerfile, build context, build
args, target, base image) are unchanged since the image was built is skipped (the image carries
their hash as a label). Each build checks what it installed (versions, imports, console
scripts, the brics entry points) and stops, naming the package, when something is broken. Creates the volumes
jupyterhub_root_<env> (and slurm_root_<env>, slurm_home_<env>) from volumes/<kind>/, owned as configured;
an existing volume is kept, never refilled.

Environment:
${IMAGE_VARS}
${PODMAN_VARS}

Examples:
  brics-env resources dev_dummyauth
  BRICS_ENV_BRICSAUTHENTICATOR_REF=v0.7.0 brics-env resources dev_realauth
  BRICS_ENV_JUPYTERHUB_BASE_IMAGE=mirror.example.org/jupyterhub/jupyterhub:5.4.2 brics-env resources prod`,
    run: async ([envName], opts) => {
      const env = resolveEnv(envName!);
      const { resourcesCommand } = await import("./commands/resources.js");
      await resourcesCommand(env, { build: !flag(opts, "no-build") });
    },
  },
  {
    name: "manifest",
    description: "Write <deploy_dir>/combined.yaml (Secrets + Pod) for podman kube play.",
    args: [ENV_ARG, DEPLOY_DIR_ARG],
    options: [
      {
        name: "publish",
        value: "<ip:hostPort:containerPort>",
        multiple: true,
        description: "publish a hub container port (repeatable); replaces the default for that container port",
      },
      {
        name: "slurm-sys-admin",
        description: "give the in-pod Slurm container CAP_SYS_ADMIN (Slurm 24.11 and later need it for the hub's jobs; up decides this itself)",
      },
    ],
    after: `
Validates the deploy directory first (as check; nothing is written on error). Generates the
key pairs the environment makes itself when both halves are missing (ssh_client_key and
ssh_host_key for in-pod Slurm; 0600), keeps existing ones, never replacing a key file. Writes
combined.yaml (0600; it holds private keys) atomically, when its content changes. Runs on one
deploy directory take turns (lock file <deploy_dir>/.brics-env.lock). Ports are published through the manifest
(hostPort), which works on every podman version: 127.0.0.1:8000 for the proxy where there is no
Zenith client, and, where Slurm is external, the Hub API (8081) on the address and port of
hubConnectUrl only (a host name is looked up, and refused when it does not resolve; --publish
0.0.0.0:8081:8081 publishes it on every address). Works on files only (never calls podman). On
podman < 4.4, start the result with 'brics-env up', which plays an adapted copy, rather than with
podman kube play directly.

The Slurm container of in-pod environments gets CAP_SYS_ADMIN only with --slurm-sys-admin: Slurm
24.11 and later (Debian 13's, which bootstrap-bases uses) clone a namespace for the hub's jobs and
fail without it. 'up' reads the Slurm version recorded on the image and decides by itself.

Environment:
  BRICS_ENV_ZENITH_CLIENT_IMAGE     Zenith client image (Zenith environments)

Examples:
  brics-env manifest dev_dummyauth deploy/dev_dummyauth
  brics-env manifest prod /srv/brics/deploy --publish 10.0.0.5:8081:8081
  podman kube play --configmap deploy/dev_dummyauth/deploy-configmap.yaml deploy/dev_dummyauth/combined.yaml`,
    run: async ([envName, dir], opts) => {
      const env = resolveEnv(envName!);
      const publish = list(opts, "publish");
      await checkPublish(publish);
      const { manifestCommand } = await import("./commands/manifest.js");
      await manifestCommand(env, resolveDeployDir(env, dir), { ...(publish !== undefined ? { publish } : {}), slurmSysAdmin: flag(opts, "slurm-sys-admin") });
    },
  },
  {
    name: "up",
    description: "Bring an environment up: init (if needed), check, resources, manifest, kube play, wait for the hub.",
    args: [ENV_ARG, DEFAULT_DEPLOY_DIR_ARG],
    options: [
      { name: "timeout", value: "<seconds>", defaultValue: "300", description: "how long to wait for the hub's health endpoint" },
      { name: "publish", value: "<ip:hostPort:containerPort>", multiple: true, description: "as for manifest (repeatable)" },
      { name: "no-build", description: "do not rebuild images (they must exist)" },
    ],
    after: `
Runs init when <deploy_dir> has no deploy-configmap.yaml (environments needing your own files
then stop at check, listing them). Plays <deploy_dir>/combined.yaml with
--configmap <deploy_dir>/deploy-configmap.yaml, then polls
http://127.0.0.1:8000<baseUrl>hub/health (every 0.05 s) and, meanwhile (in-pod Slurm), the Slurm
container until its sshd and slurmctld answer, and prints the login URL (and, for dummy
authentication, the user and where the password is). Zenith environments are not polled on a
local port; instead the zenith-client container is watched for 15 s and a restart (a failed
tunnel) is a warning with its last log lines. On timeout prints the last log lines of
each container and exits 1, leaving the pod for inspection. Volumes and keys are always kept.

Before the play, brings the volume's /etc/jupyterhub (jupyterhub_config.py, the brics_hub module)
in line with this package, naming the files it changed (the hub's state beside them is not
touched), and, when the hub image's JupyterHub is not the one that wrote the database, backs it up
(<deploy_dir>/backups/) and runs the image's 'jupyterhub upgrade-db', saying so; a failed upgrade
names the backup. On a running (or degraded) pod, applies what changed in place instead: compares
each container with the manifest (its definition's hash), the ConfigMap's values, its image and
the hub's configuration files; recreates only the containers a change concerns (podman create
--pod, values passed through podman's environment), restarts the hub when only its files
changed, starts a stopped one, and leaves the others running (an in-pod Slurm container, whose
slurmd runs the users' jobs, when the change is the hub's); says what it did and why, or that
nothing changed. Refuses other published ports (they are the pod's: down, then up) and
recreating the Slurm container while user servers run in it. Gives the in-pod Slurm container
CAP_SYS_ADMIN only when the image's Slurm needs it (24.11 and later; the version is recorded on
the image by resources), and says so; under rootful podman, says what that means for published
ports and the capability.

Environment: as for resources and manifest.
${PODMAN_VARS}

Examples:
  brics-env up dev_dummyauth
  brics-env up dev_realauth ~/brics/deploy --timeout 600
  brics-env up prod /srv/brics/deploy --no-build     # apply an edited deploy-configmap.yaml to the running pod`,
    run: async ([envName, dir], opts) => {
      const env = resolveEnv(envName!);
      const publish = list(opts, "publish");
      await checkPublish(publish);
      const timeoutSeconds = parsePositiveInt(str(opts, "timeout") ?? "", "--timeout");
      const { upCommand } = await import("./commands/up.js");
      await upCommand(env, resolveDeployDir(env, dir), {
        timeoutSeconds,
        build: !flag(opts, "no-build"),
        ...(publish !== undefined ? { publish } : {}),
      });
    },
  },
  {
    name: "down",
    description: "Remove the environment's pod; with --force also its volumes and Secrets.",
    args: [ENV_ARG, DEFAULT_DEPLOY_DIR_ARG],
    options: [
      {
        name: "force",
        description: "also remove the volumes (jupyterhub_root_<env>, slurm_root_<env>, slurm_home_<env>) and Secrets: state is lost",
      },
      { name: "stop-servers", description: "first stop every user server through the hub, cancelling its Slurm job" },
      { name: "ignore-servers", description: "do not ask the hub about user servers: --force removes everything even while they run" },
    ],
    after: `
First asks the running hub (with its brics-env service's token, inside the hub container) how
many user servers are running or starting. Without --force it says so and what becomes of their
jobs: with Slurm in the pod they end with the pod's Slurm container; with external Slurm they keep
running and the next 'up' finds them again (the hub's database keeps their records). --force
refuses while any run, or when the hub does not answer, removing nothing: --stop-servers stops
them through the hub first (each spawner cancels its job; up to 180 s) and, with Slurm in the pod,
waits until no user server's job (spawner-jupyterhub) is left in the queue; --ignore-servers goes
ahead without asking. When the hub is not running there is nothing to ask: with external Slurm,
--force says that jobs may still run on the Slurm host.

Removes pod jupyterhub-slurm-<env> and its containers by name (combined.yaml is not needed).
Without --force the volumes (the hub's database, logs, Slurm state, users' homes) and the Secrets
stay, and the next 'up' reuses them. With --force they are removed by name on every podman version
(older podman's 'kube down --force' leaves some behind). Files in <deploy_dir> are never touched,
except its .podman-play/ scratch directory. Says how long podman's own 'pod rm' took (it stops
the containers first; on podman 4.3 that is most of the time).

Examples:
  brics-env down dev_dummyauth
  brics-env down dev_dummyauth --force --stop-servers
  brics-env backup prod && brics-env down prod --force --ignore-servers   # moving to another host`,
    run: async ([envName, dir], opts) => {
      const env = resolveEnv(envName!);
      const { downCommand } = await import("./commands/down.js");
      await downCommand(env, resolveDeployDir(env, dir), {
        force: flag(opts, "force"),
        stopServers: flag(opts, "stop-servers"),
        ignoreServers: flag(opts, "ignore-servers"),
      });
    },
  },
  {
    name: "backup",
    description: "Write one archive of an environment's state: the hub's database and secrets, the deploy ConfigMap and keys.",
    args: [ENV_ARG, { name: "file", required: false, description: "the archive to write (default: <deploy_dir>/backups/<env>-<UTC time>.tar.gz)" }],
    options: [{ name: "deploy-dir", value: "<dir>", description: "the environment's deploy directory (default: deploy/<env> in the repository)" }],
    after: `
Copies the hub's database with SQLite's online backup API (consistent while the hub runs and
writes; in the hub container, or, when the hub is not running, in a throw-away container of the
hub image with jupyterhub_root_<env> mounted), with the cookie secret, the crypt key (without
which users' stored auth state cannot be read), the services' tokens, the JupyterHub version that
wrote the database, and from the deploy directory deploy-configmap.yaml and the key files
(combined.yaml is made again by up). Writes a gzipped tar with brics-env-backup.json inside (format
version, environment, each file's size and sha256), 0600, in a 0700 directory when it makes one;
an existing file is never overwritten. Secrets pass through pipes only, never a command line or a
temporary file. Refuses when the deploy directory has no deploy-configmap.yaml. Says how long it
took. Users' homes (slurm_home_<env>) and logs are not in it.

Examples:
  brics-env backup prod --deploy-dir /srv/brics/deploy
  brics-env backup dev_dummyauth /var/backups/brics/dev_dummyauth.tar.gz`,
    run: async ([envName, file], opts) => {
      const env = resolveEnv(envName!);
      const { backupCommand } = await import("./commands/backup.js");
      await backupCommand(env, resolveDeployDir(env, str(opts, "deploy-dir")), file === undefined ? undefined : resolve(file));
    },
  },
  {
    name: "restore",
    description: "Bring an environment's state back from a backup archive (then run up).",
    args: [ENV_ARG, { name: "file", required: true, description: "an archive written by brics-env backup" }, DEFAULT_DEPLOY_DIR_ARG],
    options: [{ name: "overwrite", description: "replace a live environment's state and differing deploy files (backing them up first)" }],
    after: `
Checks the archive completely first (format, environment, every file's checksum, nothing missing
or extra) and changes nothing when anything is wrong. Refuses, changing nothing, when the
environment is live: its hub runs, jupyterhub_root_<env> holds a database, or the deploy directory
has different files; with --overwrite it backs that up first (<deploy_dir>/backups/
<env>-<time>-before-restore.tar.gz), stops only the hub container, and replaces it. Creates
jupyterhub_root_<env> (as resources does) when it is not there, writes the hub's database,
cookie secret, crypt key and tokens into it (0600, with a throw-away container of the hub image,
which must exist: brics-env resources <env>), and the archive's deploy files into <deploy_dir>
(private keys 0600; a file it replaces is kept in that backup, or, without hub state to back up,
copied into <deploy_dir>/backups/<env>-<time>-replaced-deploy-files/). Says how many users and servers recorded as running it brought back. Starts
nothing: run 'brics-env up <env> <deploy_dir>' next; the hub then asks Slurm about each recorded
server (a job still running is reachable again) and users' sessions stay valid.

Examples:
  brics-env restore prod /var/backups/brics/prod-20261126T102030Z.tar.gz /srv/brics/deploy
  brics-env restore dev_dummyauth deploy/dev_dummyauth/backups/dev_dummyauth-20261126T102030Z.tar.gz --overwrite`,
    run: async ([envName, file, dir], opts) => {
      const env = resolveEnv(envName!);
      const { restoreCommand } = await import("./commands/restore.js");
      await restoreCommand(env, resolve(file!), resolveDeployDir(env, dir), { overwrite: flag(opts, "overwrite") });
    },
  },
  {
    name: "service",
    description: "Write (--install: install) a systemd unit that plays the environment at boot and stops it at shutdown.",
    args: [ENV_ARG, DEFAULT_DEPLOY_DIR_ARG],
    options: [
      { name: "install", description: "write it where systemd (or Quadlet) reads it instead of into <deploy_dir>" },
      { name: "force", description: "replace a unit that differs from the one brics-env would write now" },
      { name: "plain", description: "a unit running brics-env up/down even where podman has Quadlet" },
      { name: "publish", value: "<ip:hostPort:containerPort>", multiple: true, description: "as for manifest (repeatable)" },
    ],
    after: `
Checks the deploy directory and writes combined.yaml (as manifest), then the unit
jupyterhub-slurm-<env>.kube (podman >= 4.4: Quadlet runs 'podman kube play' of combined.yaml with
the deploy ConfigMap at boot and 'podman kube down' at shutdown) or jupyterhub-slurm-<env>.service
(older podman, or --plain: 'brics-env up <env> <deploy_dir> --no-build' at boot, 'brics-env down'
at shutdown, by the absolute paths of node and this CLI). Volumes and Secrets are kept at shutdown.
The unit holds paths and commands only, no secret; BRICS_ENV_PODMAN, CONTAINERS_CONF,
BRICS_ENV_ZENITH_CLIENT_IMAGE and the volume owner variables are carried into it when set.
Without --install it goes into <deploy_dir>; with --install into /etc/containers/systemd/ or
/etc/systemd/system/ (not root: ~/.config/containers/systemd/ or ~/.config/systemd/user/).
An existing unit that differs is kept (the new one is written beside it as .new) unless --force.
Says how to enable it, and warns when images or volumes the unit needs at boot are missing
(run 'brics-env up' once first). Installs nothing else and runs no systemctl.

Examples:
  brics-env service prod /srv/brics/deploy --install
  brics-env service dev_dummyauth --plain`,
    run: async ([envName, dir], opts) => {
      const env = resolveEnv(envName!);
      const publish = list(opts, "publish");
      await checkPublish(publish);
      const { serviceCommand } = await import("./commands/service.js");
      await serviceCommand(env, resolveDeployDir(env, dir), {
        install: flag(opts, "install"),
        force: flag(opts, "force"),
        plain: flag(opts, "plain"),
        ...(publish !== undefined ? { publish } : {}),
      });
    },
  },
  {
    name: "status",
    description: "Show the pod, containers, volumes, Secrets and images of one or every environment.",
    args: [{ name: "env", required: false, description: `environment (${ENVS}); all when omitted` }],
    options: [
      {
        name: "json",
        description:
          "print JSON (images: each image's Python packages, with the version and ref it was built from; hub: {version, users, servers: {running, pending}}, {error} or null)",
      },
    ],
    after: `
Reads podman state. Where the hub container runs, also asks the hub for its JupyterHub version,
number of users and servers running (or starting), inside the container with the token of the
hub's brics-env service (never on a command line; its role may read users and servers and stop
servers, for down --stop-servers); "hub: not answering (...)" says why when it cannot.

Examples:
  brics-env status
  brics-env status dev_dummyauth --json`,
    run: async ([envName], opts) => {
      const env = envName === undefined ? undefined : resolveEnv(envName);
      const { statusCommand } = await import("./commands/status.js");
      await statusCommand(env, { json: flag(opts, "json") });
    },
  },
  {
    name: "logs",
    description: "Print a container's log (default container: jupyterhub).",
    args: [ENV_ARG, { name: "container", required: false, description: "jupyterhub, slurm or zenith-client (those the environment has)" }],
    options: [
      { name: "tail", value: "<n>", description: "only the last n lines" },
      { name: "follow", short: "f", description: "keep printing new lines" },
    ],
    after:
      "\nThe container is jupyterhub-slurm-<env>-<container> (podman logs). The hub also logs to\n/var/log/jupyterhub in the jupyterhub_root_<env> volume.\n\nExamples:\n  brics-env logs dev_dummyauth --tail 50\n  brics-env logs dev_dummyauth slurm -f",
    run: async ([envName, container], opts) => {
      const env = resolveEnv(envName!);
      const tailText = str(opts, "tail");
      const tail = tailText !== undefined ? { tail: parsePositiveInt(tailText, "--tail") } : {};
      const { logsCommand } = await import("./commands/logs.js");
      await logsCommand(env, container, { ...tail, follow: flag(opts, "follow") });
    },
  },
  {
    name: "bootstrap-bases",
    description: "build the JupyterHub and Slurm base images from Debian packages (mmdebstrap), for sites without registry access",
    options: [
      { name: "only", value: "<bases>", description: "comma-separated subset: jupyterhub,slurm" },
      { name: "force", description: "rebuild even when an image with the same inputs exists" },
      { name: "sources", value: "<file>", description: "apt deb822 sources file whose first stanza names the mirror" },
      { name: "json", description: "print the results as JSON" },
    ],
    run: async (_, opts) => {
      const { bootstrapBasesCommand } = await import("./commands/bootstrap.js");
      const { parseBaseKinds } = await import("./plan/bootstrapBases.js");
      const only = str(opts, "only");
      const sources = str(opts, "sources");
      process.exitCode = await bootstrapBasesCommand({
        ...(only !== undefined ? { only: parseBaseKinds(only) } : {}),
        force: flag(opts, "force"),
        json: flag(opts, "json"),
        ...(sources !== undefined ? { sourcesFile: sources } : {}),
      });
    },
  },
  {
    name: "doctor",
    description: "Check this machine: podman and its version quirks, a working runtime, ssh-keygen, git.",
    after: `
Runs a throwaway container from a local image when there is one (else asks podman info),
lists which podman version workarounds brics-env applies, and names the fix when containers
cannot start (crun on cgroups v1/hybrid hosts, refused ulimits): the podman settings shipped in
podman/50-brics-env.conf, installed in /etc/containers/containers.conf.d/.
Exit 1 when something needed is missing or broken.

Environment:
${PODMAN_VARS}`,
    run: async () => (await import("./commands/doctor.js")).doctorCommand(),
  },
];

const PROGRAM: ProgramSpec = {
  name: "brics-env",
  description: `Build and run the BriCS JupyterHub + Slurm environments as a podman pod (podman kube play).\nEnvironments: ${ENVS}.`,
  version: packageVersion,
  after: `
Typical use:
  brics-env up dev_dummyauth              # init, check, resources, manifest, kube play, wait for the hub
  brics-env up dev_dummyauth              # again, after a change: applied to the running pod
  brics-env backup dev_dummyauth          # the hub's state and the deploy files, in one archive
  brics-env down dev_dummyauth            # stop; volumes kept
  brics-env down dev_dummyauth --force --stop-servers   # also remove volumes and Secrets

Step by step (as the original scripts):
  brics-env init <env> <deploy_dir>       # then edit <deploy_dir>/deploy-configmap.yaml
  brics-env check <env> <deploy_dir>
  brics-env resources <env>
  brics-env manifest <env> <deploy_dir>
  podman kube play --configmap <deploy_dir>/deploy-configmap.yaml <deploy_dir>/combined.yaml

Exit codes: 0 success, 1 failure, 2 usage error. More: docs/commands.md.`,
  commands: COMMANDS,
};

async function main(argv: readonly string[]): Promise<number> {
  try {
    const parsed = parseCommandLine(PROGRAM, argv);
    if (parsed.kind !== "run") {
      process.stdout.write(parsed.text);
      return 0;
    }
    await parsed.command.run(parsed.args, parsed.opts);
    // A command may have set an exit code without throwing.
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof ArgumentError) {
      process.stderr.write(`error: ${err.message}\n(run with --help for usage)\n`);
      return 2;
    }
    const code = err instanceof UsageError || err instanceof UnknownEnvironmentError ? 2 : 1;
    if (err instanceof ReportedFailure) {
      process.stderr.write(`error: ${err.message}\n`);
      return code;
    }
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`error: ${message}\n`);
    if (process.env["BRICS_ENV_DEBUG"] && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return code;
  }
}

// `brics-env list | head` closes the pipe early; that is not an error.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(0);
  throw err;
});

// No top-level await: the bundle of this file is CommonJS (src/launcher.ts).
void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
