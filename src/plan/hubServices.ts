/**
 * The JupyterHub services brics-env registers in every hub: each has a role with only the scopes
 * it needs and an API token that the hub module generates on first start (0600, in the hub's data
 * directory on the jupyterhub_root volume) and keeps across restarts. The hub learns them from
 * BRICS_ENV_SETTINGS (hubSettings.ts); `brics-env status` and `down` read its token inside the hub
 * container, so a token never appears on a command line or leaves the container by itself.
 */

export interface HubService {
  /** The service's (and its role's) name in JupyterHub. */
  readonly name: string;
  readonly scopes: readonly string[];
  /** Where the hub keeps the service's token, inside the hub container. */
  readonly tokenFile: string;
}

const SRV_DIR = "/srv/jupyterhub";

/**
 * What brics-env asks the Hub API and has it do: how many users, which servers run (`status`,
 * `down`), and stopping them (`down --stop-servers`, so that no Slurm job is left behind).
 */
export const BRICS_ENV_SERVICE: HubService = {
  name: "brics-env",
  scopes: ["list:users", "read:users", "read:servers", "servers"],
  tokenFile: `${SRV_DIR}/brics-env-service.token`,
};

/** For a Prometheus scraper: /hub/metrics and nothing else (docs/operations.md, "Metrics"). */
export const METRICS_SERVICE: HubService = {
  name: "prometheus",
  scopes: ["read:metrics"],
  tokenFile: `${SRV_DIR}/prometheus-service.token`,
};

export const HUB_SERVICES: readonly HubService[] = [BRICS_ENV_SERVICE, METRICS_SERVICE];
