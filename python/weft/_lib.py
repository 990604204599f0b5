"""Finds and loads libweft, and declares the C functions of include/weft.h for ctypes.

Search order: WEFT_SO_PATH (the library file, or a directory holding it); the build tree this
package sits in or was installed from; pkg-config's libdir for weft (an installed prefix);
the system loader (ldconfig's cache, LD_LIBRARY_PATH). ctypes.CDLL releases the GIL for the
length of every foreign call, so a blocking collective lets other Python threads run.
"""
import ctypes
import ctypes.util
import os
import subprocess

_SONAMES = ("libweft.so.0", "libweft.so")
UNIQUE_ID_BYTES = 128


class UniqueIdStruct(ctypes.Structure):
    _fields_ = [("internal", ctypes.c_char * UNIQUE_ID_BYTES)]


def _candidates():
    """(path, how it was found) in search order."""
    env = os.environ.get("WEFT_SO_PATH")
    if env:
        if os.path.isdir(env):
            for name in _SONAMES:
                yield os.path.join(env, name), "WEFT_SO_PATH=" + env
        else:
            yield env, "WEFT_SO_PATH"
        return  # an explicit choice: nothing else is tried behind it
    here = os.path.dirname(os.path.abspath(__file__))
    dirs = [os.path.join(here, "..", "..", "build", "lib")]  # imported from python/ in the repo
    try:
        from . import _where  # written by setup.py at install time

        dirs += list(_where.BUILD_LIBDIRS)
    except ImportError:
        pass
    for d in dirs:
        for name in _SONAMES:
            yield os.path.normpath(os.path.join(d, name)), "build tree"
    try:
        libdir = subprocess.run(["pkg-config", "--variable=libdir", "weft"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        libdir = ""
    if libdir:
        for name in _SONAMES:
            yield os.path.join(libdir, name), "pkg-config weft"
    found = ctypes.util.find_library("weft")
    yield found or "libweft.so.0", "system loader"


def _load():
    tried = []
    for path, how in _candidates():
        if os.path.sep in path and not os.path.exists(path):
            tried.append("%s (%s: no such file)" % (path, how))
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append("%s (%s: %s)" % (path, how, e))
    raise ImportError("weft: cannot load libweft; build it (make) or install it (make install), "
                      "or set WEFT_SO_PATH to libweft.so. Tried: " + "; ".join(tried))


lib, path = _load()

_c = ctypes
_result = _c.c_int
_comm = _c.c_void_p
_size = _c.c_size_t
_protos = {
    "weft_strerror": (_c.c_char_p, [_result]),
    "weft_last_error": (_c.c_char_p, []),
    "weft_get_version": (_result, [_c.POINTER(_c.c_int)]),
    "weft_get_unique_id": (_result, [_c.POINTER(UniqueIdStruct)]),
    "weft_comm_init_rank": (_result, [_c.POINTER(_comm), _c.c_int, UniqueIdStruct, _c.c_int]),
    "weft_comm_init_env": (_result, [_c.POINTER(_comm)]),
    "weft_comm_split": (_result, [_comm, _c.c_int, _c.c_int, _c.POINTER(_comm)]),
    "weft_comm_destroy": (_result, [_comm]),
    "weft_comm_abort": (_result, [_comm]),
    "weft_comm_get_async_error": (_result, [_comm, _c.POINTER(_result)]),
    "weft_comm_rank": (_result, [_comm, _c.POINTER(_c.c_int)]),
    "weft_comm_size": (_result, [_comm, _c.POINTER(_c.c_int)]),
    "weft_comm_device": (_result, [_comm, _c.POINTER(_c.c_int)]),
    "weft_allreduce": (_result, [_c.c_void_p, _c.c_void_p, _size, _c.c_int, _c.c_int, _comm,
                                 _c.c_void_p]),
    "weft_broadcast": (_result, [_c.c_void_p, _c.c_void_p, _size, _c.c_int, _c.c_int, _comm,
                                 _c.c_void_p]),
    "weft_reduce": (_result, [_c.c_void_p, _c.c_void_p, _size, _c.c_int, _c.c_int, _c.c_int,
                              _comm, _c.c_void_p]),
    "weft_allgather": (_result, [_c.c_void_p, _c.c_void_p, _size, _c.c_int, _comm, _c.c_void_p]),
    "weft_reduce_scatter": (_result, [_c.c_void_p, _c.c_void_p, _size, _c.c_int, _c.c_int, _comm,
                                      _c.c_void_p]),
    "weft_alltoall": (_result, [_c.c_void_p, _c.c_void_p, _size, _c.c_int, _comm, _c.c_void_p]),
    "weft_send": (_result, [_c.c_void_p, _size, _c.c_int, _c.c_int, _comm, _c.c_void_p]),
    "weft_recv": (_result, [_c.c_void_p, _size, _c.c_int, _c.c_int, _comm, _c.c_void_p]),
    "weft_barrier": (_result, [_comm, _c.c_void_p]),
    "weft_group_start": (_result, []),
    "weft_group_end": (_result, []),
    "weft_dtype_size": (_size, [_c.c_int]),
}
for _name, (_res, _args) in _protos.items():
    _fn = getattr(lib, _name)
    _fn.restype = _res
    _fn.argtypes = _args
