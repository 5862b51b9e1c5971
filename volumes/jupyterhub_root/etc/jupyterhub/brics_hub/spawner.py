"""The spawner the hub uses: the installed BricsSlurmSpawner, plus what the deployment needs of it."""

from .failures import SpawnFailed, job_ended, no_job_id, submit_failure
from .slurm import argv_variables

# What batchspawner (1.3) raises from start() when the job left the queue before the server was up.
_JOB_ENDED_MESSAGES = ("The Jupyter batch job has disappeared", "The Jupyter batch job started but died")


def hub_spawner_class(base):
    """`base` is BricsSlurmSpawner (a batchspawner.SlurmSpawner); the subclass adds two things.

    Reconnecting after a hub restart: `base` learns the job's Unix account from auth_state, which
    JupyterHub hands it through auth_state_hook only when the user spawns. After a restart JupyterHub
    polls the servers it restored before that: the spawner cannot name the account, the poll fails,
    and the hub forgets a job that is still running (what cleanup_servers = False is meant to keep).
    So the hook runs from the persisted auth_state before the first poll or stop.

    Readable failures: a failed submission or a job that ends before its server starts becomes a
    SpawnFailed, one sentence for the user; the detail is logged.

    The command templates (slurm.py) get what they need of each spawn from get_req_subvars.
    """

    class HubBricsSlurmSpawner(base):
        _auth_state_hook_ran = False
        # The job id and home directory of the last submission: batchspawner forgets the job id
        # before it reports that the job ended.
        _submitted = ("", "")

        async def run_auth_state_hook(self, auth_state):
            await super().run_auth_state_hook(auth_state)
            self._auth_state_hook_ran = True

        async def _restore_auth_state(self):
            if not self._auth_state_hook_ran:
                await self.run_auth_state_hook(await self.user.get_auth_state())

        def get_req_subvars(self):
            subvars = super().get_req_subvars()
            passed, dropped = argv_variables(subvars.get("keepvars", ""))
            if dropped:
                self.log.warning("Not passing %s to the Slurm job: not a variable name, or a secret that must not go on a command line", ", ".join(dropped))
            subvars["brics_argv_vars"] = passed
            return subvars

        async def poll(self):
            await self._restore_auth_state()
            return await super().poll()

        async def stop(self, now=False):
            await self._restore_auth_state()
            return await super().stop(now=now)

        async def submit_batch_script(self):
            try:
                job_id = await super().submit_batch_script()
            except RuntimeError as e:
                failure = submit_failure(str(e), self.req_username)
                self.log.error("Submitting the Slurm job as %s failed: %s\n%s", self.req_username, failure.jupyterhub_message, e)
                raise failure from e
            if not job_id:
                failure = no_job_id()
                self.log.error("Submitting the Slurm job as %s: %s (see the submit command's output above)", self.req_username, failure.jupyterhub_message)
                raise failure
            self._submitted = (job_id, self.req_homedir)
            return job_id

        async def start(self):
            try:
                return await super().start()
            except SpawnFailed:
                raise
            except RuntimeError as e:
                if not str(e).startswith(_JOB_ENDED_MESSAGES):
                    raise
                failure = job_ended(*self._submitted)
                self.log.error("Slurm job %s of %s ended early: %s", self._submitted[0], self.req_username, e)
                raise failure from e

    return HubBricsSlurmSpawner
