"""Which slices an event counts in.

A slice is ``(org, product_line, channel)`` where ``"*"`` means "all". An event counts in the
total, in its org and every org above it along ``org_path`` (roll-up), in its product line, in its
channel, and in each configured combination of its leaf org with product line and/or channel.
Orgs past the configured limit fold into ``_other`` so that label cardinality stays bounded.

>>> slicer = Slicer(combinations=(("org", "product_line"),), max_orgs=10)
>>> slicer.slices("00/44/4403", "life", "BANCA")  # doctest: +NORMALIZE_WHITESPACE
(('*', '*', '*'), ('00', '*', '*'), ('44', '*', '*'), ('4403', '*', '*'),
 ('*', 'life', '*'), ('*', '*', 'BANCA'), ('4403', 'life', '*'))
>>> slicer.depth["4403"]
3
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL = "*"
OTHER_ORG = "_other"
SliceKey = tuple[str, str, str]
TOTAL: SliceKey = (ALL, ALL, ALL)


def org_code(path: str) -> str:
    """The org an org path ends at: ``00/44/4403`` -> ``4403`` (``*`` stays ``*``)."""
    return path.rsplit("/", 1)[-1]


def path_depth(path: str) -> int:
    """An org path's depth in the org tree: the head office 1, the company (``*``) 0.

    >>> org_code("00/44/4403"), path_depth("00/44/4403"), path_depth("*")
    ('4403', 3, 0)
    """
    return 0 if path == ALL else path.count("/") + 1


@dataclass
class Slicer:
    combinations: tuple[tuple[str, ...], ...]
    max_orgs: int
    #: org code -> depth in the org tree (1 = head office); also the set of known orgs.
    depth: dict[str, int] = field(default_factory=dict)
    #: org code -> its org_path, for every org seen (alerting routes along it).
    paths: dict[str, str] = field(default_factory=dict)
    _cache: dict[tuple[str, str, str], tuple[SliceKey, ...]] = field(default_factory=dict)

    def slices(self, org_path: str, product_line: str, channel: str) -> tuple[SliceKey, ...]:
        """Every slice the event counts in; memoised because the same few triples repeat."""
        key = (org_path, product_line, channel)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self._compute(org_path, product_line, channel)
        return hit

    def __setstate__(self, state: dict) -> None:
        # Checkpoints written before ``paths`` existed lack it.
        self.__dict__.update({"paths": {}, **state})

    def leaves(self) -> dict[str, str]:
        """Every selling org seen (and tracked, not folded into ``_other``) -> its org path."""
        out = {}
        for path, _, _ in self._cache:
            code = org_code(path)
            if code in self.depth:
                out[code] = path
        return out

    def _org(self, code: str, depth: int) -> str:
        if code not in self.depth:
            if len(self.depth) >= self.max_orgs:
                return OTHER_ORG
            self.depth[code] = depth
        return code

    def _compute(self, org_path: str, product_line: str, channel: str) -> tuple[SliceKey, ...]:
        parts = org_path.split("/")
        codes = [self._org(c, i + 1) for i, c in enumerate(parts)]
        for i, code in enumerate(codes):
            if code != OTHER_ORG:
                self.paths.setdefault(code, "/".join(parts[: i + 1]))
        leaf = codes[-1]
        out: list[SliceKey] = [TOTAL]
        out += [(c, ALL, ALL) for c in dict.fromkeys(codes)]
        out += [(ALL, product_line, ALL), (ALL, ALL, channel)]
        for combo in self.combinations:
            out.append(
                (
                    leaf if "org" in combo else ALL,
                    product_line if "product_line" in combo else ALL,
                    channel if "channel" in combo else ALL,
                )
            )
        return tuple(dict.fromkeys(out))
