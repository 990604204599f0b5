"""weft: Python bindings of Weft, a collective communication runtime (libweft, over ctypes).

    import numpy, weft
    comm = weft.Comm()                      # ranks from weft-run, srun, mpirun, torchrun env
    x = numpy.ones(4, numpy.float32)
    comm.allreduce(x)                       # in place: every rank now holds comm.size * 1.0

`import weft.torch` registers the torch.distributed backend "weft". See docs/python.md.
"""
from . import _lib
from ._dtypes import Dtype, Op
from ._errors import (AbortedError, AuthError, Error, InternalError, InvalidArgError,
                      NoMemoryError, RemoteError, SystemError_, TimeoutError_,
                      UnsupportedError)
from .comm import Comm, get_unique_id, group, version

SystemError = SystemError_  # noqa: A001 (weft.SystemError, as the C name says)
TimeoutError = TimeoutError_  # noqa: A001
INT8, UINT8, INT32, UINT32, INT64, UINT64 = (Dtype.INT8, Dtype.UINT8, Dtype.INT32, Dtype.UINT32,
                                             Dtype.INT64, Dtype.UINT64)
FLOAT16, BFLOAT16, FLOAT32, FLOAT64 = Dtype.FLOAT16, Dtype.BFLOAT16, Dtype.FLOAT32, Dtype.FLOAT64
SUM, PROD, MIN, MAX, AVG = Op.SUM, Op.PROD, Op.MIN, Op.MAX, Op.AVG
library_path = _lib.path
__version__ = "0.1.0"

__all__ = ["Comm", "get_unique_id", "group", "version", "Dtype", "Op", "Error",
           "InvalidArgError", "SystemError", "RemoteError", "TimeoutError", "UnsupportedError",
           "AbortedError", "NoMemoryError", "AuthError", "InternalError", "library_path"]
