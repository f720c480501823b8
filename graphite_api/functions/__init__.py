"""Render functions, one module per family; importing this package registers them all."""
from . import registry  # noqa: F401
from . import special  # noqa: F401
from . import filters  # noqa: F401
from . import sorting  # noqa: F401
from . import combine  # noqa: F401
from . import grouping  # noqa: F401
from . import calculate  # noqa: F401
from . import holtwinters  # noqa: F401
from . import alias, graph  # noqa: F401,E401
from . import transform, timefns  # noqa: F401,E401
