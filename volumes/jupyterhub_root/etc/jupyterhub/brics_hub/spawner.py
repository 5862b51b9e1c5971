"""The spawner the hub uses: the installed BricsSlurmSpawner, plus what the deployment needs of it."""


def hub_spawner_class(base):
    """`base` is BricsSlurmSpawner (a batchspawner.SlurmSpawner).

    Reconnecting after a hub restart: `base` learns the job's Unix account from auth_state, which
    JupyterHub hands it through auth_state_hook only when the user spawns. After a restart JupyterHub
    polls the servers it restored before that: the spawner cannot name the account, the poll fails,
    and the hub forgets a job that is still running (what cleanup_servers = False is meant to keep).
    So the hook runs from the persisted auth_state before the first poll or stop.
    """

    class HubBricsSlurmSpawner(base):
        _auth_state_hook_ran = False

        async def run_auth_state_hook(self, auth_state):
            await super().run_auth_state_hook(auth_state)
            self._auth_state_hook_ran = True

        async def _restore_auth_state(self):
            if not self._auth_state_hook_ran:
                await self.run_auth_state_hook(await self.user.get_auth_state())

        async def poll(self):
            await self._restore_auth_state()
            return await super().poll()

        async def stop(self, now=False):
            await self._restore_auth_state()
            return await super().stop(now=now)

    return HubBricsSlurmSpawner
