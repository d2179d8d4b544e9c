"""A service is one unit of work: it commits when it returns and rolls back when it raises."""

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from portal.extensions import db

_DEPTH = "unit_of_work_depth"
P = ParamSpec("P")
R = TypeVar("R")


def atomic(service: Callable[P, R]) -> Callable[P, R]:
    """Run `service` as one transaction; a service called by another joins the caller's."""

    @functools.wraps(service)
    def unit_of_work(*args: P.args, **kwargs: P.kwargs) -> R:
        info = db.session.info
        depth = info.get(_DEPTH, 0)
        info[_DEPTH] = depth + 1
        try:
            result = service(*args, **kwargs)
        except BaseException:
            if depth == 0:
                db.session.rollback()
            raise
        finally:
            info[_DEPTH] = depth
        if depth == 0:
            db.session.commit()
        return result

    return unit_of_work
