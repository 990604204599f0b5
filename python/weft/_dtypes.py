"""The ten Weft dtypes and five reduction ops, and their NumPy and torch counterparts."""
import enum


class Dtype(enum.IntEnum):
    INT8 = 0
    UINT8 = 1
    INT32 = 2
    UINT32 = 3
    INT64 = 4
    UINT64 = 5
    FLOAT16 = 6
    BFLOAT16 = 7
    FLOAT32 = 8
    FLOAT64 = 9

    @property
    def itemsize(self):
        return _SIZES[self]


_SIZES = {Dtype.INT8: 1, Dtype.UINT8: 1, Dtype.INT32: 4, Dtype.UINT32: 4, Dtype.INT64: 8,
          Dtype.UINT64: 8, Dtype.FLOAT16: 2, Dtype.BFLOAT16: 2, Dtype.FLOAT32: 4,
          Dtype.FLOAT64: 8}


class Op(enum.IntEnum):
    SUM = 0
    PROD = 1
    MIN = 2
    MAX = 3
    AVG = 4


# struct/buffer-protocol format characters (memoryview.format) per dtype; 'e' is binary16.
# bfloat16 has no format character: pass dtype=weft.BFLOAT16 with a 2-byte buffer.
_FORMATS = {"b": Dtype.INT8, "B": Dtype.UINT8, "i": Dtype.INT32, "I": Dtype.UINT32,
            "e": Dtype.FLOAT16, "f": Dtype.FLOAT32, "d": Dtype.FLOAT64}


def from_format(fmt, itemsize):
    """The Dtype of a buffer format (memoryview.format), or None."""
    fmt = fmt.lstrip("@=<>!")  # native byte order only is ever produced here
    if fmt in ("l", "q"):
        return Dtype.INT64 if itemsize == 8 else Dtype.INT32
    if fmt in ("L", "Q"):
        return Dtype.UINT64 if itemsize == 8 else Dtype.UINT32
    if fmt == "c":
        return Dtype.INT8
    return _FORMATS.get(fmt)


_NUMPY_NAMES = {"int8": Dtype.INT8, "uint8": Dtype.UINT8, "int32": Dtype.INT32,
                "uint32": Dtype.UINT32, "int64": Dtype.INT64, "uint64": Dtype.UINT64,
                "float16": Dtype.FLOAT16, "bfloat16": Dtype.BFLOAT16, "float32": Dtype.FLOAT32,
                "float64": Dtype.FLOAT64}


def from_numpy(np_dtype):
    """The Dtype of a NumPy dtype (native byte order), or None."""
    if not np_dtype.isnative:
        return None
    return _NUMPY_NAMES.get(np_dtype.name)


def to_numpy(dtype):
    """The NumPy dtype of a Dtype (bfloat16 needs the ml_dtypes package; None without it)."""
    import numpy

    if dtype == Dtype.BFLOAT16:
        try:
            import ml_dtypes

            return numpy.dtype(ml_dtypes.bfloat16)
        except ImportError:
            return None
    return numpy.dtype(dtype.name.lower())


_TORCH = {}  # torch dtype -> Dtype, filled on first use (no torch import before that)


def torch_dtypes():
    """{torch dtype: Dtype} for every torch dtype Weft takes (a copy)."""
    from_torch(None)
    return dict(_TORCH)


def from_torch(torch_dtype):
    """The Dtype of a torch dtype, or None (bool, complex, int16, quantized: not in Weft)."""
    if not _TORCH:
        import torch

        _TORCH.update({torch.int8: Dtype.INT8, torch.uint8: Dtype.UINT8,
                       torch.int32: Dtype.INT32, torch.int64: Dtype.INT64,
                       torch.float16: Dtype.FLOAT16, torch.bfloat16: Dtype.BFLOAT16,
                       torch.float32: Dtype.FLOAT32, torch.float64: Dtype.FLOAT64})
        for name, d in (("uint32", Dtype.UINT32), ("uint64", Dtype.UINT64)):
            if hasattr(torch, name):
                _TORCH[getattr(torch, name)] = d
    return _TORCH.get(torch_dtype)


def to_torch(dtype):
    """The torch dtype of a Dtype, or None (torch 1.13 has no uint32/uint64)."""
    import torch

    return getattr(torch, dtype.name.lower(), None)
