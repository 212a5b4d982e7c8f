"""hqexp — an experiment bench for hybrid quantum-classical neural networks."""

import time as _time

__version__ = "0.1.0"
#: when this process started hqexp (perf_counter): the zero of the ``time/startup_s`` phase timer
STARTED = _time.perf_counter()
