"""Turns a caller's buffer into (address, element count, dtype, stream) for a Weft call.

Accepted: torch tensors (CPU, or CUDA on the current stream), NumPy arrays, and any object
with the buffer protocol (memoryview, bytearray, array.array, bytes for inputs). Buffers
must be C-contiguous; outputs must be writable. Nothing is copied.
"""
import ctypes

from . import _errors
from ._dtypes import Dtype, from_format, from_numpy, from_torch

_PyBUF_WRITABLE = 0x1
_PyBUF_FORMAT = 0x4
_PyBUF_C_CONTIGUOUS = 0x38


class _PyBuffer(ctypes.Structure):
    _fields_ = [("buf", ctypes.c_void_p), ("obj", ctypes.c_void_p), ("len", ctypes.c_ssize_t),
                ("itemsize", ctypes.c_ssize_t), ("readonly", ctypes.c_int),
                ("ndim", ctypes.c_int), ("format", ctypes.c_char_p),
                ("shape", ctypes.c_void_p), ("strides", ctypes.c_void_p),
                ("suboffsets", ctypes.c_void_p), ("internal", ctypes.c_void_p)]


# pythonapi is a PyDLL: these run with the GIL held, as the C API requires.
_get_buffer = ctypes.pythonapi.PyObject_GetBuffer
_get_buffer.argtypes = [ctypes.py_object, ctypes.POINTER(_PyBuffer), ctypes.c_int]
_get_buffer.restype = ctypes.c_int
_release_buffer = ctypes.pythonapi.PyBuffer_Release
_release_buffer.argtypes = [ctypes.POINTER(_PyBuffer)]
_release_buffer.restype = None

SUPPORTED = ("C-contiguous torch tensors (CPU, or CUDA on the current stream), NumPy arrays, "
             "or buffer-protocol objects (memoryview, bytearray, array.array) of int8, uint8, "
             "int32, uint32, int64, uint64, float16, bfloat16, float32 or float64")


def _bad(call, what):
    return _errors.InvalidArgError(1, what + "; Weft takes " + SUPPORTED, call)


class Buffer:
    """A view of a caller's memory, valid until release() (Py_buffer exports lock the object:
    a bytearray cannot be resized while a call uses it)."""

    __slots__ = ("ptr", "count", "dtype", "stream", "cuda", "_owner", "_view")

    def __init__(self, obj, call, writable, dtype=None):
        self._owner = obj
        self._view = None
        self.stream = None
        self.cuda = False
        mod = type(obj).__module__ or ""
        if mod.startswith("torch") and hasattr(obj, "data_ptr"):
            self._from_torch(obj, call)
        elif hasattr(obj, "__array_interface__") and hasattr(obj, "dtype"):
            self._from_numpy(obj, call, writable)
        else:
            self._from_buffer(obj, call, writable)
        if dtype is not None:
            dtype = Dtype(dtype)
            nbytes = self.count * (self.dtype.itemsize if self.dtype is not None else 1)
            if nbytes % dtype.itemsize:
                self.release()
                raise _bad(call, "a buffer of %d bytes is not a whole number of %s elements" %
                           (nbytes, dtype.name.lower()))
            self.count = nbytes // dtype.itemsize
            self.dtype = dtype
        elif self.dtype is None:
            self.release()
            raise _bad(call, "cannot tell the element type of this buffer: pass dtype=")

    def _from_torch(self, t, call):
        if t.is_sparse if hasattr(t, "is_sparse") else False:
            raise _bad(call, "a sparse tensor")
        if not t.is_contiguous():
            raise _bad(call, "a non-contiguous tensor (call .contiguous() first)")
        self.dtype = from_torch(t.dtype)
        if self.dtype is None:
            raise _bad(call, "a tensor of dtype %s" % t.dtype)
        if t.device.type == "cuda":
            import torch

            self.cuda = True
            self.stream = torch.cuda.current_stream(t.device).cuda_stream
        elif t.device.type != "cpu":
            raise _bad(call, "a tensor on device %s" % t.device)
        self.ptr = t.data_ptr()
        self.count = t.numel()

    def _from_numpy(self, a, call, writable):
        if not a.flags.c_contiguous:
            raise _bad(call, "a non-C-contiguous array (numpy.ascontiguousarray copies it)")
        if writable and not a.flags.writeable:
            raise _bad(call, "a read-only array as an output")
        self.dtype = from_numpy(a.dtype)
        if self.dtype is None and a.dtype.kind != "V":
            raise _bad(call, "an array of dtype %s" % a.dtype)
        self.ptr = a.__array_interface__["data"][0]
        self.count = a.size if self.dtype is not None else a.nbytes

    def _from_buffer(self, obj, call, writable):
        view = _PyBuffer()
        flags = _PyBUF_C_CONTIGUOUS | _PyBUF_FORMAT | (_PyBUF_WRITABLE if writable else 0)
        try:
            _get_buffer(obj, ctypes.byref(view), flags)
        except (BufferError, TypeError) as e:
            what = "a %s (%s)" % (type(obj).__name__, e)
            if writable and isinstance(obj, (bytes, memoryview)):
                what += ", and outputs must be writable"
            raise _bad(call, what) from None
        self._view = view
        fmt = view.format.decode() if view.format else "B"
        self.dtype = from_format(fmt, view.itemsize)
        self.ptr = view.buf or 0
        self.count = view.len // view.itemsize if self.dtype is not None else view.len
        if self.dtype is None:
            self.count = view.len  # bytes, for dtype= to divide

    def nbytes(self):
        return self.count * self.dtype.itemsize

    def release(self):
        if self._view is not None:
            _release_buffer(ctypes.byref(self._view))
            self._view = None
        self._owner = None
