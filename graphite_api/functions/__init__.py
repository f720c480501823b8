"""Render functions, one module per family; importing this package registers them all."""
from . import registry  # noqa: F401
from . import special  # noqa: F401
from . import filters  # noqa: F401
from . import sorting  # noqa: F401
