"""The org tree on a real store: learnt paths, what another process learnt, unknown codes."""

from __future__ import annotations

from alerting.orgs import OrgTree
from monitor.store import Store


def test_paths_learnt_by_one_process_are_found_by_another(store: Store) -> None:
    worker, api = OrgTree(store), OrgTree(store)
    assert api.path("4403") == "4403" and not api.knows("4403")  # no event named it yet
    worker.learn(["00", "00/44", "00/44/4403"])
    # The API asks the store again for a code it has not met.
    assert api.knows("4403")
    assert api.path("4403") == "00/44/4403"
    assert (api.depth("*"), api.depth("44"), api.depth("4403")) == (0, 2, 3)
    assert api.knows("*") and api.knows("_other")


def test_a_path_learnt_again_is_not_written_again(store: Store) -> None:
    tree = OrgTree(store)
    tree.learn(["00", "00/31", "00/31/3101"])
    tree.learn(["00/31/3101"])
    assert store.org_paths() == {"00": "00", "31": "00/31", "3101": "00/31/3101"}
