"""The spawner the hub uses: the installed BricsSlurmSpawner, plus what the deployment needs of it."""

from batchspawner import JobStatus

from .failures import SpawnFailed, bad_account, bad_choice, job_ended, no_job_id, submit_failure, submit_timed_out
from .form import offered_choices, refusal
from .slurm import JOB_ID, argv_variables, job_gone, quoted_for_both_shells

# What batchspawner (1.3) raises from start() when the job left the queue before the server was up.
_JOB_ENDED_MESSAGES = ("The Jupyter batch job has disappeared", "The Jupyter batch job started but died")


def hub_spawner_class(base, account_rule):
    """`base` is BricsSlurmSpawner (a batchspawner.SlurmSpawner); `account_rule` says which Unix
    account names a job may run as (settings.AccountRule, from KEY_SPECS' devUsers rule).

    Reconnecting after a hub restart: `base` learns the job's Unix account from auth_state, which
    JupyterHub hands it through auth_state_hook only when the user spawns. After a restart JupyterHub
    polls the servers it restored before that: the spawner cannot name the account, the poll fails,
    and the hub forgets a job that is still running (what cleanup_servers = False is meant to keep).
    So the hook runs from the persisted auth_state before the first poll or stop.

    Readable failures: a failed submission or a job that ends before its server starts becomes a
    SpawnFailed, one sentence for the user; the detail is logged.

    No job is orphaned by a failed poll: only a definite answer (Slurm does not know the job, or it
    has ended) drops a server; anything else (ssh, sudo or a wrapper failing, the controller not
    answering, a suspended or requeued job) keeps it and asks again, with a warning in the log. A
    stop never runs scancel without a job id.

    Nothing untrusted reaches a shell: the command templates (slurm.py) get the job's account and
    job id from get_req_subvars, validated (the account comes from the identity token's projects
    claim) and quoted for both shells they cross. A spawn asks only for what its form offers.
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

        def _checked_account(self, account):
            if not account_rule.allows(account):
                failure = bad_account(account, account_rule)
                self.log.error("Refusing to run anything as %r (user %s): %s", account, self.user.name if self.user else "?", failure.jupyterhub_message)
                raise failure
            return account

        def get_req_subvars(self):
            subvars = super().get_req_subvars()
            account = self._checked_account(subvars["username"])
            if self.job_id and not JOB_ID.fullmatch(self.job_id):
                raise RuntimeError(f"not a Slurm job id: {self.job_id!r}")
            passed, dropped = argv_variables(subvars.get("keepvars", ""))
            if dropped:
                self.log.warning("Not passing %s to the Slurm job: not a variable name, or a secret that must not go on a command line", ", ".join(dropped))
            subvars["brics_argv_vars"] = passed
            subvars["brics_account"] = quoted_for_both_shells(account)
            subvars["brics_job_id"] = quoted_for_both_shells(self.job_id)
            return subvars

        def _account(self):
            """The job's account for a log line; never fails (the project may not be known yet)."""
            try:
                return self.req_username
            except Exception:
                return "(account not known)"

        def state_isunknown(self):
            # batchspawner asks this after state_isrunning and state_ispending: what is not a
            # definite "gone" is not knowing.
            return not job_gone(self.job_status or "")

        async def query_job_status(self):
            if self.job_id and not JOB_ID.fullmatch(self.job_id):
                # No Slurm job can have this id; nothing is run with it.
                self.log.error("Slurm job id %r of %s is not a job id: treating the job as gone", self.job_id, self._account())
                self.job_status = ""
                return JobStatus.NOTFOUND
            status = await super().query_job_status()
            if status == JobStatus.UNKNOWN:
                self.log.warning(
                    "Slurm job %s of %s: state unknown, keeping the server and asking again: %s",
                    self.job_id,
                    self._account(),
                    self.job_status or "(no output)",
                )
            return status

        async def cancel_batch_job(self):
            if not JOB_ID.fullmatch(self.job_id or ""):
                if self.job_id:
                    self.log.error("Not cancelling Slurm job %r of %s: not a job id", self.job_id, self._account())
                else:
                    self.log.info("No Slurm job to cancel for %s", self._account())
                return
            try:
                await super().cancel_batch_job()
            except RuntimeError as e:
                self.log.error(
                    "Cancelling Slurm job %s of %s failed; it runs on until its time limit unless it is cancelled on the "
                    "Slurm host (scancel %s): %s",
                    self.job_id,
                    self._account(),
                    self.job_id,
                    e,
                )
                raise

        def _choices(self):
            form = self.options_form
            return offered_choices(form(self) if callable(form) else form)

        def run_options_from_form(self, form_data):
            """The form's answer, refused (on the form, in one sentence) when it asks for what the form
            does not offer or the chosen project's account is not a valid account name."""
            why = refusal({k: v[0] for k, v in form_data.items() if v}, self._choices())
            if why:
                raise bad_choice(why)
            options = super().run_options_from_form(form_data)
            project = self.brics_projects.get(options.get("brics_project"), {})
            self._checked_account(project.get("username", ""))
            return options

        async def poll(self):
            await self._restore_auth_state()
            return await super().poll()

        async def stop(self, now=False):
            await self._restore_auth_state()
            return await super().stop(now=now)

        async def submit_batch_script(self):
            # The REST API hands user_options over without the form.
            why = refusal(dict(self.user_options or {}), self._choices())
            if why:
                raise bad_choice(why)
            try:
                job_id = await super().submit_batch_script()
            except RuntimeError as e:
                failure = submit_failure(str(e), self.req_username)
                self.log.error("Submitting the Slurm job as %s failed: %s\n%s", self.req_username, failure.jupyterhub_message, e)
                if submit_timed_out(str(e)):
                    self.log.error(
                        "The job may have been submitted all the same: on the Slurm host, squeue -u %s -n spawner-jupyterhub",
                        self.req_username,
                    )
                raise failure from e
            if not JOB_ID.fullmatch(job_id or ""):
                if job_id:
                    self.log.error("Submitting the Slurm job as %s: %r is not a job id", self.req_username, job_id)
                    self.job_id = ""
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
