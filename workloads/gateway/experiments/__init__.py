"""Gateway runners by idea: weighted routing and canaries (routing.py), rate limiting (rate_limit.py)."""

from typing import Annotated

from pydantic import Field, Strict

Int = Annotated[int, Strict()]
Num = Annotated[float, Strict()]
Weight = Annotated[int, Strict(), Field(ge=0, le=256)]  # HAProxy server weight
