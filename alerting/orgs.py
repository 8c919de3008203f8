"""The org tree events have named: each org code's path (``00/44/4403``), kept in the store.

The worker learns paths from the events it reads; the API, in another process perhaps, asks the
store again when it meets a code it does not know yet.
"""

from __future__ import annotations

from collections.abc import Iterable

from monitor.store import Store
from streams.slices import ALL, OTHER_ORG, org_code, path_depth


class OrgTree:
    def __init__(self, store: Store) -> None:
        self.store = store
        #: org code -> its path
        self.paths = store.org_paths()
        self._unknown: set[str] = set()

    def learn(self, paths: Iterable[str]) -> None:
        new = [p for p in paths if self.paths.get(org_code(p)) != p]
        if new:
            self.store.add_orgs(new)
            self.paths.update((org_code(p), p) for p in new)
            self._unknown.clear()

    def path(self, org: str) -> str:
        """The org's path; the code itself for ``*`` and codes no event has named."""
        if org == "*":
            return "*"
        if org not in self.paths and org not in self._unknown:
            self.refresh()
            if org not in self.paths:
                self._unknown.add(org)  # e.g. the "_other" fold: ask once
        return self.paths.get(org, org)

    def knows(self, org: str) -> bool:
        """Whether ``org`` is in the org tree events have named (``*`` and the fold of orgs past
        ``QUALMON_MAX_ORGS`` are too)."""
        if org in (ALL, OTHER_ORG) or org in self.paths:
            return True
        self.refresh()
        return org in self.paths

    def refresh(self) -> None:
        # Another process (the worker) may have learnt orgs since this one started.
        self.paths.update(self.store.org_paths())

    def depth(self, org: str) -> int:
        return path_depth(self.path(org))
